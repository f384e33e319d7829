"""Pillow work, always off the event loop.

Two executors keep priorities apart: previews run on a small pool of their own, so a burst of partial
frames can never delay the final image (which uses ``run_blocking``, the default pool) or the event loop.
Every public coroutine here does its CPU work in a thread; the plain ``*_sync`` functions are what runs
there and are unit-testable.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

from PIL import Image, ImageOps

T = TypeVar("T")

# Previews are best effort: two threads at most, so on a 2-core machine they never starve the rest.
_PREVIEW_POOL = ThreadPoolExecutor(max_workers=2, thread_name_prefix="preview")

EXTENSIONS = {"png": "png", "jpeg": "jpg", "webp": "webp"}


async def run_blocking(func: Callable[..., T], *args: object) -> T:
    """Run CPU-bound work (decode, encode, base64, big JSON) in the default thread pool."""
    return await asyncio.to_thread(func, *args)


async def run_preview(func: Callable[..., T], *args: object) -> T:
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_PREVIEW_POOL, partial(func, *args))


# --- previews -------------------------------------------------------------------------------------


def make_preview_sync(data: bytes, max_side: int = 512, quality: int = 70) -> bytes:
    """A small JPEG of an image: what the progress message shows for a partial frame."""
    with Image.open(io.BytesIO(data)) as im:
        if im.format == "JPEG":
            im.draft("RGB", (max_side, max_side))  # decode at reduced scale: much cheaper
        im.thumbnail((max_side, max_side), Image.Resampling.BILINEAR, reducing_gap=2.0)
        rgb = _flatten(im)
    out = io.BytesIO()
    rgb.save(out, "JPEG", quality=quality, optimize=False)
    return out.getvalue()


async def make_preview(data: bytes, max_side: int = 512) -> bytes:
    return await run_preview(make_preview_sync, data, max_side)


def _flatten(im: Image.Image) -> Image.Image:
    """RGB for JPEG; transparent areas over a neutral checker-free grey."""
    if im.mode in ("RGBA", "LA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        bg = Image.new("RGB", rgba.size, (54, 57, 63))  # Discord's dark background
        bg.paste(rgba, mask=rgba.getchannel("A"))
        return bg
    return im.convert("RGB")


# --- fitting results into Discord's upload limit ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class Upload:
    data: bytes
    extension: str  # png | jpg | webp
    reencoded: bool = False


def fit_upload_sync(data: bytes, output_format: str, limit: int) -> Upload:
    """Return the API's bytes untouched when they fit; otherwise re-encode (then downscale) to fit.

    Transparent images stay WebP (keeps alpha); opaque ones become JPEG.
    """
    ext = EXTENSIONS.get(output_format, "png")
    if len(data) <= limit:
        return Upload(data, ext)
    with Image.open(io.BytesIO(data)) as opened:
        im = ImageOps.exif_transpose(opened) or opened
        im.load()
    has_alpha = im.mode in ("RGBA", "LA") or (im.mode == "P" and "transparency" in im.info)
    scale = 1.0
    for _ in range(8):
        candidate = (
            im
            if scale == 1.0
            else im.resize((max(1, int(im.width * scale)), max(1, int(im.height * scale))), Image.Resampling.LANCZOS)
        )
        for quality in (92, 85, 75):
            out = io.BytesIO()
            if has_alpha:
                candidate.save(out, "WEBP", quality=quality, method=4)
                fmt = "webp"
            else:
                candidate.convert("RGB").save(out, "JPEG", quality=quality, optimize=True)
                fmt = "jpg"
            if out.tell() <= limit:
                return Upload(out.getvalue(), fmt, reencoded=True)
        scale *= 0.75
    raise ValueError("image cannot be made to fit the upload limit")


async def fit_upload(data: bytes, output_format: str, limit: int) -> Upload:
    if len(data) <= limit:  # the common case needs no thread hop
        return Upload(data, EXTENSIONS.get(output_format, "png"))
    return await run_blocking(fit_upload_sync, data, output_format, limit)


def pack_uploads(sizes: list[int], limit: int, per_message: int = 10) -> list[list[int]]:
    """Group upload indexes into messages: each group's total ≤ ``limit`` and ≤ ``per_message`` files.

    Keeps the original order (image 1 stays first). Every single size must already be ≤ limit.
    """
    groups: list[list[int]] = []
    current: list[int] = []
    total = 0
    for i, size in enumerate(sizes):
        if current and (total + size > limit or len(current) >= per_message):
            groups.append(current)
            current, total = [], 0
        current.append(i)
        total += size
    if current:
        groups.append(current)
    return groups
