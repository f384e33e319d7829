"""Pillow work, always off the event loop.

Two executors keep priorities apart. PreviewRenderer run on a pool of their own (``PreviewRenderer``, a service built at
start: one thread fed from a priority queue, a job that shows nothing yet first), so a burst of partial
frames never occupies the threads the final image uses (``run_blocking``, the default pool). A preview nobody awaits
any more (a newer frame superseded it, or the result arrived) is dropped from the queue undecoded.

(Running the preview threads at a lower OS priority, nice +10, was measured and made every figure
worse: a low-priority thread preempted while it holds the GIL stalls the event loop with it.)

PNG frames are decoded in one piece (``open_image``): Pillow otherwise re-takes the GIL once per IDAT
chunk (every 8-64 KB), and with other threads busy in base64 or JSON each re-take can wait milliseconds:
a 35 ms decode was measured at 1.3 s that way, 0.12 s in one piece.

Every public coroutine here does its CPU work in a thread; the plain ``*_sync`` functions are what runs
there and are unit-testable.
"""

from __future__ import annotations

import asyncio
import heapq
import io
import itertools
import logging
import threading
import zlib
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, cast

from PIL import Image, ImageOps

T = TypeVar("T")

log = logging.getLogger(__name__)

EXTENSIONS = {"png": "png", "jpeg": "jpg", "webp": "webp", "gif": "gif", "svg": "svg"}

# Priorities of preview work (lower runs first): a job that shows nothing yet before a job's next frame.
URGENT = 0
ROUTINE = 1


class PreviewPool:
    """A few daemon threads serving a priority queue (FIFO within a priority).

    Work whose future was cancelled before a thread picked it up never runs. Threads start on first use.
    """

    def __init__(self, workers: int = 2, name: str = "preview") -> None:
        self.workers = workers
        self.name = name
        self._queue: list[tuple[int, int, Future[Any], list[Any]]] = []
        self._seq = itertools.count()
        self._cv = threading.Condition()
        self._threads: list[threading.Thread] = []

    def submit(self, priority: int, func: Callable[..., T], *args: Any) -> Future[T]:
        fut: Future[T] = Future()
        work: list[Any] = [func, args]
        # Cancelled while queued: drop the frame's megabytes now, not when a thread gets to the entry.
        fut.add_done_callback(lambda f: work.clear() if f.cancelled() else None)
        with self._cv:
            heapq.heappush(self._queue, (priority, next(self._seq), fut, work))
            if len(self._threads) < self.workers:
                t = threading.Thread(target=self._work, name=f"{self.name}_{len(self._threads)}", daemon=True)
                self._threads.append(t)
                t.start()
            self._cv.notify()
        return fut

    @property
    def queued(self) -> int:
        return len(self._queue)

    def _work(self) -> None:
        while True:
            with self._cv:
                while not self._queue:
                    self._cv.wait()
                _, _, fut, work = heapq.heappop(self._queue)
            if not fut.set_running_or_notify_cancel():
                continue  # cancelled while queued: superseded, never decoded
            func, args = work
            work.clear()
            try:
                fut.set_result(func(*args))
            except BaseException as exc:
                fut.set_exception(exc)
            del fut, func, args, work  # drop the frame's bytes before waiting for the next one


async def run_blocking(func: Callable[..., T], *args: object) -> T:
    """Run CPU-bound work (decode, encode, base64, big JSON) in the default thread pool."""
    return await asyncio.to_thread(func, *args)


class PreviewRenderer:
    """The preview renderer, built once at start (``bot/__main__.py``) and handed to whoever shows
    progress: one preview thread (with two on two cores, preview decodes took both cores in a rush and
    results queued behind them: docs/development/performance-history.md), and a hook counting the partial
    frames it decoded (the bot's ``/metrics``; the benchmark checks decodes against previews sent)."""

    def __init__(self, max_side: int = 512, *, workers: int = 1, on_decode: Callable[[], None] | None = None) -> None:
        self.max_side = max_side
        self.pool = PreviewPool(workers=workers)
        self._on_decode = on_decode

    async def render(self, frame: bytes | EncodedFrame, urgent: bool = False, max_side: int | None = None) -> bytes:
        """The preview JPEG of a frame (``urgent``: jump the queue, for a job that shows nothing yet).
        Cancelling the await drops the work if the thread has not started it: the frame is never decoded."""
        side = max_side or self.max_side
        return await asyncio.wrap_future(self.pool.submit(URGENT if urgent else ROUTINE, self._job, frame, side))

    def _job(self, frame: bytes | EncodedFrame, max_side: int) -> bytes:
        if not isinstance(frame, bytes | bytearray | memoryview):
            frame = frame.decode()
            if self._on_decode is not None:
                self._on_decode()
        return make_preview_sync(frame, max_side)


# --- decoding -------------------------------------------------------------------------------------

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_in_one_piece(data: bytes) -> tuple[bytes, int] | None:
    """The same PNG with its IDAT chunks merged into one, and that chunk's size; None if not applicable."""
    if not data.startswith(PNG_SIGNATURE):
        return None
    pos, end = 8, len(data)
    first = last = -1
    parts: list[memoryview] = []
    view = memoryview(data)
    while pos + 12 <= end:
        length = int.from_bytes(data[pos : pos + 4], "big")
        kind = data[pos + 4 : pos + 8]
        nxt = pos + 12 + length
        if nxt > end:
            return None  # truncated: let Pillow report it
        if kind == b"IDAT":
            if last not in (-1, pos):
                return None  # IDAT chunks must be consecutive
            first = pos if first < 0 else first
            parts.append(view[pos + 8 : pos + 8 + length])
            last = nxt
        elif kind in (b"acTL", b"fdAT"):
            return None  # animated PNG: not ours to rewrite
        elif kind == b"IEND":
            break
        pos = nxt
    if len(parts) < 2:
        return (data, len(parts[0])) if parts else None
    body = b"".join(parts)
    crc = zlib.crc32(body, zlib.crc32(b"IDAT"))
    merged = b"".join((view[:first], len(body).to_bytes(4, "big"), b"IDAT", body, crc.to_bytes(4, "big"), view[last:]))
    return merged, len(body)


def open_image(data: bytes) -> Image.Image:
    """``Image.open`` whose ``load()`` decodes a PNG in one call to the decoder (the GIL released once)."""
    merged = _png_in_one_piece(data)
    if merged is None:
        return Image.open(io.BytesIO(data))
    png, idat_size = merged
    im = Image.open(io.BytesIO(png))
    im.decodermaxblock = max(im.decodermaxblock, idat_size)
    return im


# --- any mode to 8-bit RGB(A) ----------------------------------------------------------------------

_WIDE_GREY = frozenset({"I;16", "I;16L", "I;16B", "I;16N"})


def to_rgb(im: Image.Image) -> Image.Image:
    """The image as 8-bit RGB, or RGBA when it has transparency, every mode's values scaled to 0..255.

    Plain ``convert("RGB")`` clips wide values: a 16-bit grey PNG comes out almost white. Here:

    - I;16 (16-bit grey, any byte order): value / 257, so 65535 -> 255 (within 1 of ``>> 8``).
    - I (32-bit int): as is when every value is within 0..255; as 16-bit when within 0..65535 (how
      16-bit grey reaches Pillow from some files); anything wider is stretched from its own min..max.
    - F (float): within 0..1 it is read as 0..1 (x 255); within 0..255 as is; only values above 255 (or
      below 0) make it stretched from its own min..max, since nothing else says what they mean.
    - La / RGBa (premultiplied alpha): un-premultiplied. P, PA, LA, and L/RGB with a transparent colour
      (tRNS): RGBA. CMYK: RGB (Pillow already undoes the inverted CMYK of Adobe JPEGs while decoding).
    - 1 (bilevel): 0 and 255.

    Not kept: the transparent grey value (tRNS) of a 16-bit grey PNG; such an image comes out opaque.
    """
    mode = im.mode
    if mode in ("RGB", "RGBA"):
        return im
    if mode in _WIDE_GREY or mode in ("I", "F"):
        return _grey_to_l(im).convert("RGB")
    if mode == "La":
        grey, alpha = im.split()
        return Image.merge("RGBa", (grey, grey, grey, alpha)).convert("RGBA")
    if mode in ("LA", "PA", "RGBa") or "transparency" in im.info:
        return im.convert("RGBA")
    return im.convert("RGB")


def _grey_to_l(im: Image.Image) -> Image.Image:
    if im.mode in _WIDE_GREY:
        return _linear(im.convert("I"), 0, 65535)
    lo, hi = cast(tuple[float, float], im.getextrema())  # one band
    if im.mode == "F" and lo >= 0 and hi <= 1:
        return _linear(im, 0, 1)
    if lo >= 0 and hi <= 255:
        return _linear(im, 0, 255)
    if im.mode == "I" and lo >= 0 and hi <= 65535:
        return _linear(im, 0, 65535)
    return _linear(im, lo, hi)


def _linear(im: Image.Image, lo: float, hi: float) -> Image.Image:
    """L from an I or F image: ``lo`` -> 0, ``hi`` -> 255, rounded to nearest (F -> L truncates)."""
    if hi <= lo:
        return Image.new("L", im.size, 0 if lo <= 0 else 255)
    scale = 255.0 / (hi - lo)
    offset = 0.5 - lo * scale
    f = im if im.mode == "F" else im.convert("F")
    return f.point(lambda v: v * scale + offset).convert("L")


_PREVIEW_MODES = {"RGB", "RGBA", "L", "LA", "P", "CMYK"}


class EncodedFrame(Protocol):
    """A frame still in its transport encoding (``PartialImage`` of ``bot/images_api/types.py``)."""

    def decode(self) -> bytes: ...


def make_preview_sync(data: bytes | EncodedFrame, max_side: int = 512, quality: int = 70) -> bytes:
    """A small JPEG of an image: what the progress message shows for a partial frame. An encoded frame is
    decoded here, in the preview thread, and only here: a frame never rendered is never decoded."""
    if not isinstance(data, bytes | bytearray | memoryview):
        data = data.decode()
    with open_image(bytes(data) if not isinstance(data, bytes) else data) as im:
        if im.format == "JPEG":
            im.draft("RGB", (max_side, max_side))  # decode at reduced scale: much cheaper
        if im.mode not in _PREVIEW_MODES:  # e.g. 16-bit grey: reduce() can't work on it, and clips it
            im = to_rgb(im)
        # reducing_gap=1: a box reduce by the integer factor first (1536 -> 512 is one cheap reduce(3)),
        # then a small resample; indistinguishable at preview size and ~6 ms cheaper than the default.
        im.thumbnail((max_side, max_side), Image.Resampling.BILINEAR, reducing_gap=1.0)
        im.load()  # a small image is left as is by thumbnail(): decode it before the file closes
        rgb = _flatten(im)
    out = io.BytesIO()
    rgb.save(out, "JPEG", quality=quality, optimize=False)
    return out.getvalue()


def _flatten(im: Image.Image) -> Image.Image:
    """RGB for JPEG; transparent areas over a neutral checker-free grey."""
    if im.mode in ("RGBA", "LA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        bg = Image.new("RGB", rgba.size, (54, 57, 63))  # Discord's dark background
        bg.paste(rgba, mask=rgba.getchannel("A"))
        return bg
    return im if im.mode == "RGB" else im.convert("RGB")


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
    if output_format == "gif":
        return fit_gif_sync(data, limit)
    if output_format == "svg":  # text; bot/imaging/svg.py already bounds it well under any upload limit
        raise ValueError("SVG larger than the upload limit")
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


def fit_gif_sync(data: bytes, limit: int) -> Upload:
    """An animated GIF made to fit: fewer colours first, then smaller, every frame and its timing kept
    (a still frame is never what the member asked for)."""
    frames: list[Image.Image] = []
    durations: list[int] = []
    with Image.open(io.BytesIO(data)) as im:
        loop = im.info.get("loop", 0)
        for i in range(getattr(im, "n_frames", 1)):
            im.seek(i)
            durations.append(int(im.info.get("duration", 100)))
            frames.append(im.convert("RGB"))
    scale = 1.0
    for _ in range(8):
        sized = (
            frames
            if scale == 1.0
            else [
                f.resize((max(1, int(f.width * scale)), max(1, int(f.height * scale))), Image.Resampling.LANCZOS)
                for f in frames
            ]
        )
        for colours in (128, 64, 32):
            paletted = [f.quantize(colours, method=Image.Quantize.MEDIANCUT) for f in sized]
            out = io.BytesIO()
            paletted[0].save(
                out, "GIF", save_all=True, append_images=paletted[1:], duration=durations, loop=loop, optimize=True
            )
            if out.tell() <= limit:
                return Upload(out.getvalue(), "gif", reencoded=True)
        scale *= 0.75
    raise ValueError("animation cannot be made to fit the upload limit")


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
