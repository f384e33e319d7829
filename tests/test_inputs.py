"""``bot/inputs.py``: every input the bot accepts comes out as something the Images API takes; everything
else is refused with a message for the user."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image

from bot.inputs import (
    InputRejected,
    check_declared,
    looks_like_image,
    prepare_image,
    prepare_image_sync,
    prepare_mask,
    prepare_mask_sync,
)

BIG = 10_000_000


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


def prep(data: bytes, name: str = "x.png", **kw: int) -> object:
    return prepare_image_sync(data, name, max_side=kw.get("max_side", 2048), max_pixels=kw.get("max_pixels", BIG))


# --- declared attachment info (before download) ---------------------------------------------------


def test_declared_checks() -> None:
    check_declared("cat.png", "image/png", 1000, max_bytes=2000)
    check_declared("cat.webp", None, 1000, max_bytes=2000)  # no content type: trust an image extension
    assert looks_like_image("a.JPG", None) and not looks_like_image("a.txt", None)
    with pytest.raises(InputRejected, match="isn't an image"):
        check_declared("notes.txt", "text/plain; charset=utf-8", 10, max_bytes=2000)
    with pytest.raises(InputRejected, match="isn't an image"):
        check_declared("clip.bin", None, 10, max_bytes=2000)
    with pytest.raises(InputRejected, match="empty"):
        check_declared("cat.png", "image/png", 0, max_bytes=2000)
    with pytest.raises(InputRejected, match=r"3 MB; the limit is 2 MB"):
        check_declared("cat.png", "image/png", 3 * 1024 * 1024, max_bytes=2 * 1024 * 1024)
    with pytest.raises(InputRejected, match="SVG"):
        check_declared("logo.svg", "image/svg+xml", 10, max_bytes=2000)
    with pytest.raises(InputRejected, match=r"The mask `m\.txt`"):
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
    assert rgba.getpixel((15, 5))[3] == 0 and rgba.getpixel((5, 5))[3] == 255


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
    with pytest.raises(InputRejected, match="empty"):
        prep(b"")
    with pytest.raises(InputRejected, match="isn't an image"):
        prep(b"just some text, not a picture at all", "notes.png")
    png = encode(gradient(200, 200), "PNG")
    with pytest.raises(InputRejected, match=r"damaged|incomplete"):
        prep(png[: len(png) // 2])
    jpeg = encode(gradient(200, 200), "JPEG")
    with pytest.raises(InputRejected, match=r"damaged|incomplete"):
        prep(jpeg[: len(jpeg) // 2], "x.jpg")
    corrupt = bytearray(png)
    corrupt[len(corrupt) // 2] ^= 0xFF  # a flipped byte inside IDAT: the CRC no longer matches
    with pytest.raises(InputRejected, match=r"damaged|incomplete"):
        prep(bytes(corrupt))
    with pytest.raises(InputRejected, match=r"too large \(200×200\)"):
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
    with pytest.raises(InputRejected, match="too large"):
        prep(bomb_png(20_000, 20_000), max_pixels=40_000_000)
    # Over Pillow's own hard limit even when ours is set very high.
    with pytest.raises(InputRejected, match="too large"):
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
    with pytest.raises(InputRejected, match="marks nothing"):
        prepare_mask_sync(encode(Image.new("L", (8, 8), 0), "PNG"), (8, 8), max_pixels=BIG)
    with pytest.raises(InputRejected, match=r"The mask `mask` isn't an image"):
        prepare_mask_sync(b"nope", (8, 8), max_pixels=BIG)
    with pytest.raises(InputRejected, match="The mask `mask` is empty"):
        prepare_mask_sync(b"", (8, 8), max_pixels=BIG)


async def test_async_wrappers_run_off_the_loop() -> None:
    p = await prepare_image(encode(gradient(), "PNG"), "a.png", max_side=32, max_pixels=BIG)
    assert p.size == (32, 24)
    m = await prepare_mask(encode(Image.new("L", (10, 10), 255), "PNG"), p.size, max_pixels=BIG)
    assert alpha_of(m).size == (32, 24)
    with pytest.raises(InputRejected):
        await prepare_image(b"x", "a.png", max_side=32, max_pixels=BIG)
