"""Markup layers for scribbled edits: what a member drew on a copy of an image, as a transparent PNG.

A member replies to a picture with a copy they drew arrows, circles or notes on. ``derive_markup_sync``
compares the two (the copy scaled to the original's size): the pixels that changed by more than
``THRESHOLD`` become the layer's opaque marks in the colours drawn, everything else transparent. A copy that
differs almost nowhere, or almost everywhere, is not a drawn-on copy (another photo, a crop): then it is
``None`` and the reply is an ordinary edit with several images. ``prepare_markup_sync`` takes a layer a
member already has (``/edit markup:``). Blocking Pillow work: the coroutines run it off the event loop.
"""

from __future__ import annotations

import asyncio
import io

from PIL import Image, ImageChops, ImageFilter

from bot.images_api.types import InputImage
from bot.imaging.inputs import InputRejected, _open

THE_MARKUP = "The markup"  # an input's name, as bot/messages/ translates it
__all__ = ["THRESHOLD", "derive_markup", "derive_markup_sync", "prepare_markup", "prepare_markup_sync"]

THRESHOLD = 48  # 0-255 on the most changed channel: above JPEG noise and resampling, below any pen stroke
MIN_CHANGED = 0.0002  # of the pixels: fewer changed and nothing was drawn
MAX_CHANGED = 0.35  # more changed and it is another picture, not marks on this one
MAX_ASPECT_DRIFT = 0.03  # a copy keeps the original's proportions (a screenshot may be scaled)


def _png(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "PNG", optimize=False)
    return buf.getvalue()


def derive_markup_sync(original: bytes, drawn: bytes) -> bytes | None:
    """The transparent markup layer (the original's size) of ``drawn`` over ``original``, or None."""
    with Image.open(io.BytesIO(original)) as a, Image.open(io.BytesIO(drawn)) as b:
        base = a.convert("RGB")
        copy = b.convert("RGB")
    if abs(copy.width / copy.height - base.width / base.height) > MAX_ASPECT_DRIFT * base.width / base.height:
        return None
    if copy.size != base.size:
        copy = copy.resize(base.size, Image.Resampling.LANCZOS)
    diff = ImageChops.difference(base, copy)
    r, g, b_ = diff.split()
    strongest = ImageChops.lighter(ImageChops.lighter(r, g), b_)
    marks = strongest.point(lambda v: 255 if v > THRESHOLD else 0)
    changed = marks.histogram()[255] / (base.width * base.height)
    if not MIN_CHANGED <= changed <= MAX_CHANGED:
        return None
    marks = marks.filter(ImageFilter.MaxFilter(3))  # keep the anti-aliased rim of each stroke
    layer = copy.convert("RGBA")
    layer.putalpha(marks)
    return _png(layer)


def prepare_markup_sync(
    data: bytes, size: tuple[int, int], filename: str = "markup.png", *, max_pixels: int = 50_000_000
) -> InputImage:
    """A member's own markup layer, scaled to the (prepared) first image: it must have transparency."""
    im = _open(data, filename, THE_MARKUP, max_pixels)  # bombs and unreadable files refused unopened
    try:
        with im:
            layer = im.convert("RGBA")
    except Exception:
        raise InputRejected("damaged", what=THE_MARKUP, name=filename) from None
    alpha = layer.getchannel("A")
    lo, hi = alpha.getextrema()
    if lo == 255:
        raise InputRejected("markup_opaque", name=filename)
    if hi == 0:
        raise InputRejected("markup_empty", name=filename)
    if layer.size != size:
        layer = layer.resize(size, Image.Resampling.LANCZOS)
    return InputImage("markup.png", _png(layer), "image/png")


async def derive_markup(original: bytes, drawn: bytes) -> bytes | None:
    return await asyncio.to_thread(derive_markup_sync, original, drawn)


async def prepare_markup(
    data: bytes, size: tuple[int, int], filename: str = "markup.png", *, max_pixels: int = 50_000_000
) -> InputImage:
    return await asyncio.to_thread(lambda: prepare_markup_sync(data, size, filename, max_pixels=max_pixels))
