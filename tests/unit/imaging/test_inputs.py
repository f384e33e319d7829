"""``bot/imaging/inputs.py``: every input the bot accepts comes out as something the Images API takes; everything
else is refused with a message for the user."""

from __future__ import annotations

import contextlib
import io
import re
import struct
import zlib
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from PIL import Image

from bot.imaging.inputs import (
    InputRejected,
    PreparedImage,
    check_declared,
    looks_like_image,
    prepare_image,
    prepare_image_sync,
    prepare_mask,
    prepare_mask_sync,
)
from bot.imaging.work import make_preview_sync, to_rgb
from bot.messages import input_rejected

BIG = 10_000_000


@contextlib.contextmanager
def rejected(pattern: str) -> Iterator[None]:
    """Like ``pytest.raises(InputRejected, match=...)``, on the English words ``bot/messages/`` gives it."""
    with pytest.raises(InputRejected) as info:
        yield
    words = input_rejected(info.value)
    assert re.search(pattern, words), words


def encode(im: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def gradient(w: int = 64, h: int = 48, mode: str = "RGB") -> Image.Image:
    im = Image.new("RGB", (w, h))
    im.putdata([((x * 4) % 256, (y * 5) % 256, 128) for y in range(h) for x in range(w)])
    return im.convert(mode)


def decode(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


def prep(data: bytes, name: str = "x.png", **kw: int) -> PreparedImage:
    return prepare_image_sync(data, name, max_side=kw.get("max_side", 2048), max_pixels=kw.get("max_pixels", BIG))


# --- declared attachment info (before download) ---------------------------------------------------


def test_declared_checks() -> None:
    check_declared("cat.png", "image/png", 1000, max_bytes=2000)
    check_declared("cat.webp", None, 1000, max_bytes=2000)  # no content type: trust an image extension
    assert looks_like_image("a.JPG", None) and not looks_like_image("a.txt", None)
    with rejected("isn't an image"):
        check_declared("notes.txt", "text/plain; charset=utf-8", 10, max_bytes=2000)
    with rejected("isn't an image"):
        check_declared("clip.bin", None, 10, max_bytes=2000)
    with rejected("empty"):
        check_declared("cat.png", "image/png", 0, max_bytes=2000)
    with rejected(r"3 MB; the limit is 2 MB"):
        check_declared("cat.png", "image/png", 3 * 1024 * 1024, max_bytes=2 * 1024 * 1024)
    with rejected("SVG"):
        check_declared("logo.svg", "image/svg+xml", 10, max_bytes=2000)
    with rejected(r"The mask `m\.txt`"):
        check_declared("m.txt", "text/plain", 10, max_bytes=2000, what="The mask")


# --- images ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "mode", "ctype", "ext"),
    [("PNG", "RGB", "image/png", "png"), ("PNG", "RGBA", "image/png", "png"), ("JPEG", "RGB", "image/jpeg", "jpg"),
     ("WEBP", "RGB", "image/webp", "webp")],
)  # fmt: skip
def test_supported_formats_are_sent_as_posted(fmt: str, mode: str, ctype: str, ext: str) -> None:
    data = encode(gradient(mode=mode), fmt)
    p = prep(data, f"holiday photo.{fmt.lower()}")
    assert p.input.data == data  # untouched: no quality lost, no work done
    assert p.input.content_type == ctype
    assert p.input.filename == f"holiday_photo.{ext}"
    assert p.size == (64, 48) and not p.changed


def test_other_formats_are_converted_gif_first_frame() -> None:
    frames = [Image.new("RGB", (40, 30), c) for c in ((255, 0, 0), (0, 255, 0))]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    p = prep(buf.getvalue(), "anim.gif")
    assert p.input.content_type == "image/png" and p.input.filename == "anim.png"
    out = decode(p.input.data)
    assert out.format == "PNG" and out.size == (40, 30)
    assert out.convert("RGB").getpixel((5, 5)) == (255, 0, 0)  # the first frame

    bmp = prep(encode(gradient(), "BMP"), "scan.bmp")
    assert bmp.input.content_type == "image/png" and decode(bmp.input.data).size == (64, 48)

    cmyk = prep(encode(gradient(mode="CMYK"), "JPEG"), "print.jpg")
    assert cmyk.input.content_type == "image/jpeg" and decode(cmyk.input.data).mode == "RGB"

    # a transparent GIF keeps its transparency as PNG alpha
    pal = Image.new("P", (20, 20), 0)
    pal.putpalette([0, 0, 0, 255, 255, 255] + [0] * 762)
    pal.paste(1, (0, 0, 10, 20))
    t = prep(encode(pal, "GIF", transparency=0), "t.gif")
    rgba = decode(t.input.data).convert("RGBA")
    assert rgba.getpixel((15, 5))[3] == 0 and rgba.getpixel((5, 5))[3] == 255  # type: ignore[index]


def test_exif_orientation_is_applied() -> None:
    im = gradient(60, 20)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    data = encode(im, "JPEG", exif=exif.tobytes())
    p = prep(data, "phone.jpg")
    assert p.changed and p.size == (20, 60)
    assert decode(p.input.data).size == (20, 60)
    assert p.input.content_type == "image/jpeg"


def test_large_images_are_downscaled_to_max_side() -> None:
    data = encode(gradient(300, 150), "PNG")
    p = prep(data, "wide.png", max_side=100)
    assert p.changed and p.size == (100, 50) and decode(p.input.data).size == (100, 50)
    assert p.input.content_type == "image/png"
    j = prep(encode(gradient(300, 150), "JPEG"), "wide.jpg", max_side=100)
    assert j.input.content_type == "image/jpeg" and j.size == (100, 50)


def test_refusals() -> None:
    with rejected("empty"):
        prep(b"")
    with rejected("isn't an image"):
        prep(b"just some text, not a picture at all", "notes.png")
    png = encode(gradient(200, 200), "PNG")
    with rejected(r"damaged|incomplete"):
        prep(png[: len(png) // 2])
    jpeg = encode(gradient(200, 200), "JPEG")
    with rejected(r"damaged|incomplete"):
        prep(jpeg[: len(jpeg) // 2], "x.jpg")
    corrupt = bytearray(png)
    corrupt[len(corrupt) // 2] ^= 0xFF  # a flipped byte inside IDAT: the CRC no longer matches
    with rejected(r"damaged|incomplete"):
        prep(bytes(corrupt))
    with rejected(r"too large \(200×200\)"):
        prep(png, max_pixels=30_000)


def bomb_png(w: int, h: int) -> bytes:
    """A tiny PNG whose header claims ``w``×``h`` pixels (a decompression bomb's shape)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", w, h, 1, 0, 0, 0, 0)  # 1-bit greyscale
    idat = zlib.compress(b"\x00" * 1024)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_decompression_bombs_are_refused_before_decoding() -> None:
    # Over our own limit (checked from the header, before any pixel is decoded).
    with rejected("too large"):
        prep(bomb_png(20_000, 20_000), max_pixels=40_000_000)
    # Over Pillow's own hard limit even when ours is set very high.
    with rejected("too large"):
        prep(bomb_png(100_000, 100_000), max_pixels=10**12)


# --- masks ----------------------------------------------------------------------------------------


def alpha_of(inp: object) -> Image.Image:
    im = decode(inp.data)  # type: ignore[attr-defined]
    assert im.format == "PNG" and im.mode == "RGBA"
    return im.getchannel("A")


def test_mask_with_alpha_is_kept_and_resized() -> None:
    m = Image.new("RGBA", (32, 32), (0, 0, 0, 255))
    m.paste((0, 0, 0, 0), (0, 0, 16, 32))  # left half transparent = edit
    out = prepare_mask_sync(encode(m, "PNG"), (64, 48), max_pixels=BIG)
    assert out.content_type == "image/png" and out.filename == "mask.png"
    a = alpha_of(out)
    assert a.size == (64, 48)
    assert a.getpixel((5, 20)) == 0 and a.getpixel((60, 20)) == 255


def test_black_and_white_mask_is_converted_white_means_edit() -> None:
    m = Image.new("L", (64, 48), 0)
    m.paste(255, (32, 0, 64, 48))  # right half white = edit
    for data in (encode(m, "PNG"), encode(m.convert("RGB"), "JPEG", quality=80)):
        a = alpha_of(prepare_mask_sync(data, (64, 48), max_pixels=BIG))
        assert a.getpixel((50, 10)) == 0 and a.getpixel((10, 10)) == 255
    # fully opaque RGBA (a painted mask saved with an alpha channel) is read by brightness too
    a = alpha_of(prepare_mask_sync(encode(m.convert("RGBA"), "PNG"), (32, 24), max_pixels=BIG))
    assert a.size == (32, 24) and a.getpixel((25, 5)) == 0 and a.getpixel((5, 5)) == 255


def test_mask_refusals() -> None:
    with rejected("marks nothing"):
        prepare_mask_sync(encode(Image.new("L", (8, 8), 0), "PNG"), (8, 8), max_pixels=BIG)
    with rejected(r"The mask `mask` isn't an image"):
        prepare_mask_sync(b"nope", (8, 8), max_pixels=BIG)
    with rejected("The mask `mask` is empty"):
        prepare_mask_sync(b"", (8, 8), max_pixels=BIG)


async def test_async_wrappers_run_off_the_loop() -> None:
    p = await prepare_image(encode(gradient(), "PNG"), "a.png", max_side=32, max_pixels=BIG)
    assert p.size == (32, 24)
    m = await prepare_mask(encode(Image.new("L", (10, 10), 255), "PNG"), p.size, max_pixels=BIG)
    assert alpha_of(m).size == (32, 24)
    with pytest.raises(InputRejected):
        await prepare_image(b"x", "a.png", max_side=32, max_pixels=BIG)


# --- every mode reaches the API as 8-bit RGB(A), its values scaled, not clipped ---------------------------

W, H = 32, 8  # 256 pixels: every value class below appears


def wide_values(top: int = 65535) -> list[int]:
    """0..top in 256 steps, with the edges that clipping or a wrong shift gets wrong."""
    values = [round(i * top / 255) for i in range(W * H)]
    values[:6] = [0, 1, 255, 256, 257, top]
    return values


def png16(colour_type: int, samples: Sequence[tuple[int, ...]]) -> bytes:
    """A 16-bit PNG written by hand (Pillow writes 16-bit only for greyscale)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    rows = b"".join(
        b"\0" + b"".join(struct.pack(f">{len(px)}H", *px) for px in samples[y * W : (y + 1) * W]) for y in range(H)
    )
    ihdr = struct.pack(">IIBBBBB", W, H, 16, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def sent(data: bytes, name: str) -> Image.Image:
    """What the bot sends for ``data``: always 8-bit RGB or RGBA, and a PNG's IHDR says bit depth 8."""
    p = prep(data, name)
    if p.input.content_type == "image/png":
        assert p.input.data[24] == 8, "not an 8-bit PNG"
    im = decode(p.input.data)
    assert im.mode in ("RGB", "RGBA") and im.size == (W, H), im
    return im


def assert_pixels(im: Image.Image, expected: Sequence[tuple[int, ...]], tol: int = 1) -> None:
    got = im.tobytes()
    want = bytes(c for px in expected for c in px)
    assert len(got) == len(want), (im.mode, len(got), len(want))
    worst = max(abs(a - b) for a, b in zip(got, want, strict=True))
    assert worst <= tol, f"pixels differ by up to {worst}"


def grey(v: float) -> tuple[int, int, int]:
    g = max(0, min(255, round(v)))
    return (g, g, g)


def from_values(mode: str, values: Sequence[Any]) -> Image.Image:
    im = Image.new(mode, (W, H))
    im.putdata(values)
    return im


@pytest.mark.parametrize(("mode", "fmt"), [("I;16", "PNG"), ("I;16", "TIFF"), ("I;16B", "TIFF")])
def test_16_bit_grey_is_scaled_not_clipped(mode: str, fmt: str) -> None:
    values = wide_values()
    data = encode(from_values(mode, values), fmt)
    assert Image.open(io.BytesIO(data)).mode == mode  # the file really holds 16-bit grey
    assert_pixels(sent(data, f"scan.{fmt.lower()}"), [grey(v / 257) for v in values])


def test_16_bit_rgb_and_rgba_pngs_are_sent_as_8_bit() -> None:
    values = wide_values()
    rgb = [(v, 65535 - v, values[(i * 7) % len(values)]) for i, v in enumerate(values)]
    out = sent(png16(2, rgb), "deep.png")
    assert out.mode == "RGB"
    assert_pixels(out, [tuple(round(c / 257) for c in px) for px in rgb])
    rgba = [(*px, values[(i * 3) % len(values)]) for i, px in enumerate(rgb)]
    out = sent(png16(6, rgba), "deep.png")
    assert out.mode == "RGBA"
    assert_pixels(out, [tuple(round(c / 257) for c in px) for px in rgba])
    la = [(v, 65535 - v) for v in values]  # 16-bit grey + alpha
    assert_pixels(sent(png16(4, la), "deep.png"), [(*grey(g / 257), round(a / 257)) for g, a in la])


@pytest.mark.parametrize(
    ("values", "scale"),
    [
        ([i % 256 for i in range(W * H)], 1.0),  # 0..255: as is
        (wide_values(), 1 / 257),  # 0..65535: read as 16-bit
        ([-5 + i * 400 for i in range(W * H)], None),  # wider (and negative): stretched from its range
    ],
)
def test_32_bit_int_images(values: list[int], scale: float | None) -> None:
    data = encode(from_values("I", values), "TIFF")
    assert Image.open(io.BytesIO(data)).mode == "I"
    lo, hi = min(values), max(values)
    expect = [grey(v * scale if scale else (v - lo) * 255 / (hi - lo)) for v in values]
    assert_pixels(sent(data, "depth.tif"), expect)


@pytest.mark.parametrize(
    ("values", "to_8bit"),
    [
        ([i / 255 for i in range(W * H)], lambda v, lo, hi: v * 255),  # 0..1
        ([i * 0.999 for i in range(W * H)], lambda v, lo, hi: v),  # 0..255
        ([-1.5 + i * 3.25 for i in range(W * H)], lambda v, lo, hi: (v - lo) * 255 / (hi - lo)),  # beyond
    ],
)
def test_float_images(values: list[float], to_8bit: Any) -> None:
    data = encode(from_values("F", values), "TIFF")
    assert Image.open(io.BytesIO(data)).mode == "F"
    lo, hi = min(values), max(values)
    assert_pixels(sent(data, "height.tif"), [grey(to_8bit(v, lo, hi)) for v in values])


def palette_image(mode: str) -> tuple[Image.Image, list[tuple[int, int, int, int]]]:
    """A palette image of 16 colours; in ``PA`` each pixel has its own alpha, in ``P`` colour 0 is clear."""
    colours = [(i * 16, 255 - i * 16, (i * 40) % 256) for i in range(16)]
    im = Image.new("P", (W, H))
    im.putpalette([c for rgb in colours for c in rgb])
    index = [i % 16 for i in range(W * H)]
    im.putdata(index)
    if mode == "PA":
        alpha = [(i * 5) % 256 for i in range(W * H)]
        pa = Image.new("PA", (W, H))
        pa.putpalette(im.getpalette() or [])
        pa.putdata(list(zip(index, alpha, strict=True)))
        return pa, [(*colours[p], a) for p, a in zip(index, alpha, strict=True)]
    return im, [(*colours[p], 0 if p == 0 else 255) for p in index]


def test_palette_images_with_transparency_become_rgba() -> None:
    pal, expect = palette_image("P")
    out = sent(encode(pal, "PNG", transparency=0), "sticker.png")
    assert out.mode == "RGBA"
    assert_pixels(out, expect, tol=0)
    opaque = sent(encode(pal, "PNG"), "sticker.png")  # no transparency: plain RGB
    assert opaque.mode == "RGB"
    assert_pixels(opaque, [px[:3] for px in expect], tol=0)
    pa, expect = palette_image("PA")
    data = encode(pa, "TIFF")
    assert Image.open(io.BytesIO(data)).mode == "PA"
    assert_pixels(sent(data, "layers.tif"), expect, tol=0)


def test_grey_with_alpha_and_grey_with_a_transparent_value_become_rgba() -> None:
    pixels = [(i % 256, (i * 7) % 256) for i in range(W * H)]
    out = sent(encode(from_values("LA", pixels), "PNG"), "ghost.png")
    assert_pixels(out, [(g, g, g, a) for g, a in pixels], tol=0)
    greys = [i % 256 for i in range(W * H)]
    out = sent(encode(from_values("L", greys), "PNG", transparency=7), "cutout.png")
    assert_pixels(out, [(g, g, g, 0 if g == 7 else 255) for g in greys], tol=0)
    out = sent(encode(from_values("L", greys), "JPEG", quality=100), "grey.jpg")  # greyscale JPEG: as RGB
    assert out.mode == "RGB"
    assert_pixels(out, [grey(g) for g in greys], tol=2)


def test_premultiplied_alpha_is_undone() -> None:
    # No file format stores La or RGBa; they come from Pillow operations, so ``to_rgb`` is tested alone.
    pairs = [(g, a) for a in (255, 128, 64, 2) for g in range(0, 256, 4)][: W * H]
    pairs += [(0, 0)] * (W * H - len(pairs))
    premul = [(g * a // 255, a) for g, a in pairs]
    out = to_rgb(from_values("La", premul))
    assert out.mode == "RGBA"
    # Premultiplying lost precision (g * a / 255 was rounded): un-premultiplying can be off by 255 / a.
    for (g, a), px in zip(pairs, out.getdata(), strict=True):
        assert px[3] == a and px[0] == px[1] == px[2]
        if a:
            assert abs(px[0] - g) <= 255 // a + 1, (g, a, px)
    rgba = to_rgb(from_values("RGBa", [(r * a // 255, 0, 0, a) for r, a in pairs]))
    assert rgba.mode == "RGBA" and rgba.getpixel((0, 0)) == (0, 0, 0, 255)
    assert to_rgb(from_values("La", [(64, 128)] * (W * H))).getpixel((0, 0)) == (127, 127, 127, 128)


def cmyk_expected(c: int, m: int, y: int, k: int) -> tuple[int, ...]:
    return tuple(round((255 - v) * (255 - k) / 255) for v in (c, m, y))


def test_cmyk_and_adobe_inverted_cmyk_jpeg() -> None:
    blocks = [(0, 0, 0, 0), (255, 0, 0, 0), (0, 200, 0, 30), (40, 40, 220, 0), (0, 0, 0, 255), (60, 10, 90, 50)]
    px = [blocks[(x // 4 + y) % len(blocks)] for y in range(H) for x in range(W)]
    # TIFF keeps CMYK losslessly: exact.
    assert_pixels(sent(encode(from_values("CMYK", px), "TIFF"), "print.tif"), [cmyk_expected(*p) for p in px])
    # Pillow writes CMYK JPEGs the Adobe (Photoshop) way: inverted values and an APP14 "Adobe" marker.
    # One flat colour per file, so the JPEG round trips (and the re-encoding as an RGB JPEG) stay close.
    for colour in blocks:
        data = encode(Image.new("CMYK", (W, H), colour), "JPEG", quality=100)
        assert data[2:4] == b"\xff\xee" and data[6:11] == b"Adobe"
        assert Image.open(io.BytesIO(data)).info.get("adobe") is not None
        out = sent(data, "print.jpg")
        assert out.mode == "RGB"
        assert_pixels(out, [cmyk_expected(*colour)] * (W * H), tol=3)  # read un-inverted, white would come out black


def test_bilevel_images() -> None:
    bits = [255 if (x + y) % 3 == 0 else 0 for y in range(H) for x in range(W)]
    out = sent(encode(from_values("1", bits), "PNG"), "fax.png")
    assert out.mode == "RGB"
    assert_pixels(out, [grey(b) for b in bits], tol=0)


def test_a_16_bit_grey_mask_is_read_by_its_real_brightness() -> None:
    # Left half 30000/65535 (darker than mid-grey: keep), right half 40000 (lighter: edit). Clipped to
    # 8 bits both would be white and the whole picture edited.
    values = [30000 if x < W // 2 else 40000 for y in range(H) for x in range(W)]
    mask = prepare_mask_sync(encode(from_values("I;16", values), "PNG"), (W, H), max_pixels=BIG)
    a = alpha_of(mask)
    assert a.getpixel((2, 2)) == 255 and a.getpixel((W - 2, 2)) == 0


def test_preview_of_a_16_bit_grey_frame_is_not_white() -> None:
    data = encode(from_values("I;16", [16384] * (W * H)), "PNG")
    with Image.open(io.BytesIO(make_preview_sync(data, 16))) as im:
        r, g, b = im.convert("RGB").getpixel((2, 2))  # type: ignore[misc]
    assert abs(r - 64) <= 3 and r == g == b
