"""Is it a whole image? A cheap check of every final image before it is delivered (off the event loop).

PNG is checked chunk by chunk (CRCs, IHDR first, IDAT consecutive, IEND last) without decoding pixels;
JPEG is decoded at 1/8 scale; WebP (no checksum, no cheap partial decode) fully. ``bot/jobs.py`` turns a
``DamagedImage`` into the slot's failure, so a broken result is never delivered nor charged.
"""

from __future__ import annotations

import io
import zlib

from PIL import Image

from bot.imaging.work import PNG_SIGNATURE, run_blocking


class DamagedImage(ValueError):
    """The bytes are not a complete PNG, JPEG or WebP image; ``str()`` says what is wrong (for the log)."""


class OversizedImage(DamagedImage):
    """The header names more pixels (or a longer side) than the model can return: refused before decoding."""


def _check_size(width: int, height: int, limits: tuple[int, int] | None) -> None:
    if limits is not None:
        max_pixels, max_edge = limits
        if width * height > max_pixels or max(width, height) > max_edge:
            raise OversizedImage(f"{width}x{height} is beyond what the model returns")


_PNG_DEPTHS = {0: (1, 2, 4, 8, 16), 2: (8, 16), 3: (1, 2, 4, 8), 4: (8, 16), 6: (8, 16)}  # by colour type


def _verify_png(data: bytes, limits: tuple[int, int] | None = None) -> None:
    """Every chunk whole and its CRC-32 right, a valid IHDR first, consecutive IDAT chunks, IEND last.

    The CRCs cover every byte the encoder wrote, so any truncation or corruption on the way is caught
    without inflating the image data (inflating it is what makes a full decode cost 20x more). What it
    cannot see is an encoder that itself wrote a short zlib stream inside well-formed chunks.
    """
    view = memoryview(data)
    pos, end = 8, len(data)
    idat = 0  # 0: none yet, 1: in the IDAT run, 2: after it
    while True:
        if pos + 12 > end:
            raise DamagedImage(f"PNG cut off at byte {end} (no IEND chunk)")
        length = int.from_bytes(view[pos : pos + 4], "big")
        kind = bytes(view[pos + 4 : pos + 8])
        body_end = pos + 8 + length
        if length > 0x7FFFFFFF or body_end + 4 > end:
            raise DamagedImage(f"PNG cut off inside its {kind!r} chunk (byte {pos} of {end})")
        if zlib.crc32(view[pos + 8 : body_end], zlib.crc32(kind)) != int.from_bytes(
            view[body_end : body_end + 4], "big"
        ):
            raise DamagedImage(f"PNG {kind!r} chunk at byte {pos} fails its CRC")
        if pos == 8:
            if kind != b"IHDR" or length != 13:
                raise DamagedImage("PNG does not start with an IHDR chunk")
            width, height = int.from_bytes(view[16:20], "big"), int.from_bytes(view[20:24], "big")
            depth, colour, interlace = view[24], view[25], view[28]
            if not width or not height or depth not in _PNG_DEPTHS.get(colour, ()) or interlace > 1:
                raise DamagedImage(f"PNG header is invalid ({width}x{height}, depth {depth}, colour {colour})")
            _check_size(width, height, limits)
        elif kind == b"IDAT":
            if idat == 2:
                raise DamagedImage("PNG IDAT chunks are not consecutive")
            idat = 1
        elif kind == b"IEND":
            break
        elif idat:
            idat = 2
        pos = body_end + 4
    if not idat:
        raise DamagedImage("PNG has no image data (IDAT)")


def _verify_with_pillow(data: bytes, fmt: str, limits: tuple[int, int] | None = None) -> None:
    """Decode with Pillow (JPEG at 1/8 scale: every bit of entropy data is read, the IDCT mostly skipped)."""
    try:
        with Image.open(io.BytesIO(data), formats=(fmt,)) as im:
            if im.format != fmt:
                raise DamagedImage(f"{fmt} signature but Pillow reads {im.format}")
            _check_size(im.width, im.height, limits)  # from the header: nothing decoded yet
            if fmt == "JPEG":
                im.draft(im.mode, (max(1, im.width // 8), max(1, im.height // 8)))
            im.load()
    except DamagedImage:
        raise
    except Exception as exc:  # truncation is OSError; other decoder failures vary
        raise DamagedImage(f"{fmt} does not decode ({type(exc).__name__}: {exc})") from None


MAX_GIF_FRAMES = 64


def _verify_gif(data: bytes, limits: tuple[int, int] | None = None) -> None:
    """Every frame decodes (an animated result has a few dozen at most), and the trailer is there."""
    if not data.rstrip(b"\x00").endswith(b";"):
        raise DamagedImage("GIF cut off (no trailer)")
    try:
        with Image.open(io.BytesIO(data), formats=("GIF",)) as im:
            _check_size(im.width, im.height, limits)  # from the header: nothing decoded yet
            frames = getattr(im, "n_frames", 1)
            if frames > MAX_GIF_FRAMES:
                raise DamagedImage(f"GIF has {frames} frames (at most {MAX_GIF_FRAMES})")
            for i in range(frames):
                im.seek(i)
                im.load()
    except DamagedImage:
        raise
    except Exception as exc:
        raise DamagedImage(f"GIF does not decode ({type(exc).__name__}: {exc})") from None


def verify_image_sync(data: bytes, requested: str | None = None, limits: tuple[int, int] | None = None) -> str:
    """Check that ``data`` is a whole PNG, JPEG or WebP image; return its format key (png | jpeg | webp).
    ``limits`` (most pixels, longest side): larger dimensions in the header raise ``OversizedImage`` first.

    Raises ``DamagedImage``. Measured cost per image (median of 25 runs, one thread, on the shared 2-core
    machine under load; the fake API's realistic pictures): PNG 1024x1024 (1.6 MB) 0.4-0.5 ms and 1536x1024
    (2.8 MB) 0.7-1.1 ms, 1.1 ms also with another thread busy in base64. The alternatives: Pillow's
    ``verify()`` 0.8-1.3 ms (the same CRC walk); inflating the IDAT stream 14-28 ms; a full ``load()``
    22-29 ms, and it still accepts a PNG missing its IEND. JPEG 1024x1024 (89 KB) 1.5 ms and 1536x1024
    (176 KB) 2.0-2.7 ms at 1/8 scale (full decode 2.3-6 ms); it has no checksum, so only truncation and
    broken structure can be found. WebP has neither a checksum nor a cheap partial decode: a full decode,
    16-21 ms and 31-54 ms.
    """
    if data.startswith(PNG_SIGNATURE):
        _verify_png(data, limits)
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        _verify_with_pillow(data, "JPEG", limits)
        return "jpeg"
    if len(data) >= 12 and data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        riff = int.from_bytes(data[4:8], "little") + 8
        if riff > len(data):
            raise DamagedImage(f"WebP cut off ({len(data)} of {riff} bytes)")
        _verify_with_pillow(data, "WEBP", limits)
        return "webp"
    # GIF and SVG only when asked for: otherwise a GIF, or text such as a gateway's HTML error page, is
    # not the image the job wanted.
    if requested == "gif" and data.startswith((b"GIF87a", b"GIF89a")):
        _verify_gif(data, limits)
        return "gif"
    if requested == "svg" and data.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<"):
        return "svg"  # text: parsed and cleaned by bot/imaging/svg.py before it goes anywhere
    if not data:
        raise DamagedImage("no image data (0 bytes)")
    raise DamagedImage(f"not a PNG, JPEG or WebP image (starts {data[:8].hex()})")


async def verify_image(data: bytes, requested: str | None = None, limits: tuple[int, int] | None = None) -> str:
    """``verify_image_sync`` in the default pool (the final image's pool, never the previews')."""
    return await run_blocking(verify_image_sync, data, requested, limits)


# --- previews -------------------------------------------------------------------------------------
