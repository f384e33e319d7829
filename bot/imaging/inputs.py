"""Input images and masks for edits: checked, decoded and normalised with Pillow, off the event loop.

No Discord imports. The cog checks what Discord declares about an attachment (``check_declared``) before
downloading anything, then hands the bytes to ``prepare_image`` / ``prepare_mask``. Anything unusable
raises ``InputRejected``, shown to the user; nothing is sent to the Images API and
nothing is charged. ``InputRejected`` carries a code and its parameters; ``bot/messages/`` words it in
the reader's language.

What comes out is what the Images API accepts: 8-bit RGB or RGBA as PNG, JPEG or WebP with the matching
content type and file extension (16-bit, float, palette, premultiplied and CMYK images are scaled to 8 bits
by ``bot/imaging.py``'s ``to_rgb``, never clipped), EXIF orientation applied, the first frame of an
animation, and at most ``max_side`` pixels on the longest side (so uploads and input tokens stay
reasonable). A mask is an RGBA PNG of exactly the size of the (possibly downscaled) first image; alpha 0
marks where to edit.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import PurePath

from PIL import Image, ImageOps, UnidentifiedImageError

from bot import CodedError
from bot.images_api.types import CONTENT_TYPES, InputImage
from bot.imaging.work import EXTENSIONS, run_blocking, to_rgb

# Members' files are opened with these decoders only (what docs/guide/editing.md promises: PNG, JPEG (whose decoder
# also reads the MPO files phones write), WebP, GIF, BMP, TIFF, ICO, TGA, and AVIF where Pillow has it), not every
# format Pillow ships: each decoder is code that reads hostile bytes. The bomb warning is an error (set in
# ``bot/imaging/__init__.py``).
Image.init()
INPUT_FORMATS = tuple(f for f in ("PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF", "ICO", "TGA", "AVIF") if f in Image.OPEN)

MAX_INPUT_IMAGES = 16  # the Images API takes at most 16 ``image[]`` parts
MAX_MASK_BYTES = 4 * 1024 * 1024  # the Images API refuses larger masks

# Extensions Discord users post images with; used when an attachment declares no content type.
IMAGE_EXTENSIONS = frozenset(
    {"png", "jpg", "jpeg", "jfif", "pjpeg", "webp", "gif", "bmp", "tif", "tiff", "tga", "ico", "avif", "heic"}
)
# Formats kept byte for byte when nothing else needs to change, and the modes each may have as is:
# what is sent is always 8-bit RGB or RGBA (a PNG also needs bit depth 8: Pillow reads 16-bit RGB as RGB).
_KEEP_MODES = {
    "PNG": {"RGB", "RGBA"},
    "JPEG": {"RGB"},
    "WEBP": {"RGB", "RGBA"},
}
_FORMAT_KEYS = {"PNG": "png", "JPEG": "jpeg", "WEBP": "webp"}
_JPEG_QUALITY = 92


class InputRejected(CodedError):
    """An input file the bot will not send: ``code`` names why, ``params`` fill the words.

    ``bot/messages/`` (``input_rejected``) words it, in the reader's language; ``str()`` is for logs.
    """


@dataclass(frozen=True, slots=True)
class PreparedImage:
    input: InputImage
    size: tuple[int, int]  # (width, height) of what is sent: the mask must match the first image's
    changed: bool = False  # re-encoded (downscaled, rotated, converted) rather than sent as posted


# --- before downloading ----------------------------------------------------------------------------


def megabytes(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MB".replace(".0 MB", " MB")


def looks_like_image(filename: str, content_type: str | None) -> bool:
    """What an attachment declares: an image content type, or (none declared) an image file name."""
    if content_type:
        return content_type.split(";")[0].strip().lower().startswith("image/")
    return _extension(filename) in IMAGE_EXTENSIONS


def check_declared(
    filename: str, content_type: str | None, size: int, *, max_bytes: int, what: str = "The image"
) -> None:
    """Refuse an attachment from what Discord says about it, before downloading a byte."""
    name = _shown_name(filename)
    ctype = (content_type or "").split(";")[0].strip().lower()
    if not looks_like_image(filename, content_type):
        raise InputRejected("not_image", what=what, name=name)
    if ctype == "image/svg+xml" or _extension(filename) == "svg":
        raise InputRejected("svg", what=what, name=name)
    if size <= 0:
        raise InputRejected("empty", what=what, name=name)
    if size > max_bytes:
        raise InputRejected("file_too_large", what=what, name=name, size=size, limit=max_bytes)


# --- decoding ----------------------------------------------------------------------------------------


def _extension(filename: str) -> str:
    return PurePath(filename or "").suffix.lower().lstrip(".")


def _shown_name(filename: str) -> str:
    name = (filename or "file").replace("`", "'")
    return name if len(name) <= 60 else name[:59] + "…"


def _open(data: bytes, name: str, what: str, max_pixels: int) -> Image.Image:
    """Open lazily (header only), refusing bombs and oversized images before any pixel is decoded."""
    if not data:
        raise InputRejected("empty", what=what, name=name)
    try:
        im = Image.open(io.BytesIO(data), formats=INPUT_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InputRejected("too_many_pixels", what=what, name=name, max_pixels=max_pixels) from None
    except UnidentifiedImageError:
        raise InputRejected("unreadable", what=what, name=name) from None
    except Exception:  # untrusted bytes: plugins raise OSError, SyntaxError, struct.error, ...
        raise InputRejected("damaged", what=what, name=name) from None
    w, h = im.size
    if w <= 0 or h <= 0:
        im.close()
        raise InputRejected("no_pixels", what=what, name=name)
    if w * h > max_pixels:
        im.close()
        raise InputRejected("too_many_pixels", what=what, name=name, max_pixels=max_pixels, width=w, height=h)
    return im


def _load(im: Image.Image, data: bytes, name: str, what: str) -> None:
    """Decode every pixel of the current frame: truncated or corrupt data fails here, not at the API."""
    try:
        if im.format == "PNG":  # CRCs of every chunk; verify() needs its own file object
            with Image.open(io.BytesIO(data), formats=("PNG",)) as check:
                check.verify()
        im.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InputRejected("bomb", what=what, name=name) from None
    except Exception:  # untrusted bytes: truncation is OSError, but decoders raise other things too
        raise InputRejected("incomplete", what=what, name=name) from None


def _to_rgb(im: Image.Image, name: str, what: str) -> Image.Image:
    try:
        return to_rgb(im)
    except Exception:  # an exotic mode Pillow can read but not convert
        raise InputRejected("colour_format", what=what, name=name) from None


def _stem(filename: str, fallback: str) -> str:
    stem = PurePath(filename or "").stem
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in stem)[:60].strip("_")
    return safe or fallback


def prepare_image_sync(
    data: bytes, filename: str, *, max_side: int, max_pixels: int, what: str = "The image"
) -> PreparedImage:
    """Decode, check and normalise one input image. Raises ``InputRejected``."""
    name = _shown_name(filename)
    im = _open(data, name, what, max_pixels)
    try:
        src_format = im.format or ""
        animated = bool(getattr(im, "is_animated", False))
        if animated:
            im.seek(0)
        _load(im, data, name, what)
        try:
            exif_orientation = im.getexif().get(0x0112, 1)
        except Exception:  # a broken EXIF block is not worth refusing an image for
            exif_orientation = 1
        keep = (
            src_format in _KEEP_MODES
            and im.mode in _KEEP_MODES[src_format]
            and not animated
            and exif_orientation in (None, 1)
            and max(im.size) <= max_side
            and (src_format != "PNG" or data[24:25] == b"\x08")  # IHDR bit depth
        )
        if keep:
            fmt = _FORMAT_KEYS[src_format]
            stem = _stem(filename, "image")
            return PreparedImage(
                InputImage(f"{stem}.{EXTENSIONS[fmt]}", data, CONTENT_TYPES[fmt]), (im.width, im.height)
            )
        try:
            out = ImageOps.exif_transpose(im) or im
        except Exception:
            out = im
        out = _to_rgb(out, name, what)  # 16-bit, float, palette, premultiplied, CMYK...: scaled to 8 bits
        alpha = out.mode == "RGBA"
        if max(out.size) > max_side:
            out.thumbnail((max_side, max_side), Image.Resampling.LANCZOS, reducing_gap=3.0)
        buf = io.BytesIO()
        # Photos stay JPEG (small); anything with alpha, and lossless sources (drawings), become PNG.
        if not alpha and src_format in ("JPEG", "MPO", "WEBP", "HEIF", "AVIF"):
            out.save(buf, "JPEG", quality=_JPEG_QUALITY, optimize=True)
            fmt = "jpeg"
        else:
            out.save(buf, "PNG", optimize=False, compress_level=6)
            fmt = "png"
        stem = _stem(filename, "image")
        return PreparedImage(
            InputImage(f"{stem}.{EXTENSIONS[fmt]}", buf.getvalue(), CONTENT_TYPES[fmt]),
            (out.width, out.height),
            changed=True,
        )
    finally:
        im.close()


def prepare_mask_sync(
    data: bytes, image_size: tuple[int, int], *, max_pixels: int, filename: str = "mask"
) -> InputImage:
    """An RGBA PNG mask of exactly ``image_size``; alpha 0 = edit here. Raises ``InputRejected``.

    A mask with real transparency keeps its alpha. A mask without any (a black-and-white drawing, or an
    RGBA file that is fully opaque) is read by brightness: white (light) = edit, black (dark) = keep.
    """
    what = "The mask"
    name = _shown_name(filename)
    im = _open(data, name, what, max_pixels)
    try:
        if getattr(im, "is_animated", False):
            im.seek(0)
        _load(im, data, name, what)
        try:
            src = ImageOps.exif_transpose(im) or im
        except Exception:
            src = im
        src = _to_rgb(src, name, what)
        alpha = None
        if src.mode == "RGBA":
            a = src.getchannel("A")
            if a.getextrema() != (255, 255):  # some transparency: that is the mask
                alpha = a
        if alpha is None:
            light = src.convert("L")
            if light.size != image_size:
                light = light.resize(image_size, Image.Resampling.BILINEAR)
            alpha = light.point(lambda v: 0 if v >= 128 else 255)  # white = edit = transparent
        elif alpha.size != image_size:
            alpha = alpha.resize(image_size, Image.Resampling.BILINEAR)
        if alpha.getextrema()[0] == 255:
            raise InputRejected("mask_marks_nothing")
        mask = Image.new("RGBA", image_size, (0, 0, 0, 255))
        mask.putalpha(alpha)
        buf = io.BytesIO()
        mask.save(buf, "PNG", optimize=True)
    finally:
        im.close()
    if buf.tell() > MAX_MASK_BYTES:
        raise InputRejected("mask_too_detailed")
    return InputImage("mask.png", buf.getvalue(), "image/png")


# --- off the event loop ------------------------------------------------------------------------------


async def prepare_image(
    data: bytes, filename: str, *, max_side: int, max_pixels: int, what: str = "The image"
) -> PreparedImage:
    return await run_blocking(_prepare_image_kw, data, filename, max_side, max_pixels, what)


def _prepare_image_kw(data: bytes, filename: str, max_side: int, max_pixels: int, what: str) -> PreparedImage:
    return prepare_image_sync(data, filename, max_side=max_side, max_pixels=max_pixels, what=what)


async def prepare_mask(
    data: bytes, image_size: tuple[int, int], *, max_pixels: int, filename: str = "mask"
) -> InputImage:
    return await run_blocking(_prepare_mask_kw, data, image_size, max_pixels, filename)


def _prepare_mask_kw(data: bytes, image_size: tuple[int, int], max_pixels: int, filename: str) -> InputImage:
    return prepare_mask_sync(data, image_size, max_pixels=max_pixels, filename=filename)
