"""Pillow helpers: previews are small JPEGs, uploads fit the limit, packing respects Discord's rules, and a final
image is delivered only when its bytes are a whole image."""

from __future__ import annotations

import io
import os
import random
import zlib

import pytest
from PIL import Image

from bot.images_api.errors import BrokenImage
from bot.images_api.types import CompletedImage
from bot.imaging.verify import DamagedImage, verify_image_sync
from bot.imaging.work import fit_upload_sync, make_preview_sync, pack_uploads
from bot.jobs.whole import whole_image as _whole

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png(w: int, h: int, noisy: bool = False, mode: str = "RGB") -> bytes:
    im = Image.frombytes(mode, (w, h), os.urandom(w * h * len(mode))) if noisy else Image.new(mode, (w, h), "red")
    out = io.BytesIO()
    im.save(out, "PNG")
    return out.getvalue()


def test_preview_is_a_small_jpeg() -> None:
    data = _png(1536, 1024)
    preview = make_preview_sync(data, 512)
    with Image.open(io.BytesIO(preview)) as im:
        assert im.format == "JPEG" and im.size == (512, 341)


def test_preview_of_transparent_image() -> None:
    preview = make_preview_sync(_png(300, 200, mode="RGBA"), 128)
    with Image.open(io.BytesIO(preview)) as im:
        assert im.format == "JPEG" and max(im.size) == 128


def test_upload_untouched_when_it_fits() -> None:
    data = _png(64, 64)
    up = fit_upload_sync(data, "png", 10 * 1024 * 1024)
    assert up.data == data and up.extension == "png" and not up.reencoded


def test_upload_reencoded_when_too_big() -> None:
    data = _png(800, 800, noisy=True)  # ~1.9 MB of noise
    limit = 500_000
    up = fit_upload_sync(data, "png", limit)
    assert len(up.data) <= limit and up.reencoded and up.extension == "jpg"
    up = fit_upload_sync(_png(800, 800, noisy=True, mode="RGBA"), "png", limit)
    assert len(up.data) <= limit and up.extension == "webp"  # alpha kept


def test_pack_uploads() -> None:
    assert pack_uploads([4, 4, 4], 10) == [[0, 1], [2]]
    assert pack_uploads([1] * 12, 100) == [list(range(10)), [10, 11]]
    assert pack_uploads([], 10) == []


# --- verify_image_sync: a final image is delivered only if it is whole -------------------------------


def _chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    out, pos = [], 8
    while pos < len(data):
        n = int.from_bytes(data[pos : pos + 4], "big")
        out.append((data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + n]))
        pos += 12 + n
    return out


def _chunk(kind: bytes, body: bytes) -> bytes:
    return len(body).to_bytes(4, "big") + kind + body + zlib.crc32(kind + body).to_bytes(4, "big")


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x10]) + data[at + 1 :]


def _photo(w: int = 256, h: int = 192, fmt: str = "PNG", mode: str = "RGB") -> bytes:
    rnd = random.Random(5)
    im = Image.frombytes(mode, (w, h), rnd.randbytes(w * h * len(mode)))
    out = io.BytesIO()
    im.save(out, fmt, **({"quality": 90} if fmt != "PNG" else {}))
    return out.getvalue()


@pytest.mark.parametrize(
    ("fmt", "mode", "key"),
    [("PNG", "RGB", "png"), ("PNG", "RGBA", "png"), ("JPEG", "RGB", "jpeg"), ("WEBP", "RGB", "webp")],
)
def test_whole_images_pass_and_report_their_real_format(fmt: str, mode: str, key: str) -> None:
    data = _photo(fmt=fmt, mode=mode)
    assert verify_image_sync(data) == key
    assert verify_image_sync(data + b"\0" * 16) == key  # padding after the end is harmless


def test_every_truncation_of_a_png_is_caught() -> None:
    data = _photo(64, 48)
    for cut in range(len(data)):  # every byte count short of the whole file, the 3.9 KB of the report included
        with pytest.raises(DamagedImage):
            verify_image_sync(data[:cut])


def test_corrupt_pngs_are_caught() -> None:
    data = _photo()
    chunks = _chunks(data)
    idat_at = data.index(b"IDAT") + 4
    with pytest.raises(DamagedImage, match="CRC"):
        verify_image_sync(_flip(data, idat_at + 1000))  # a bit error in the image data
    with pytest.raises(DamagedImage, match="CRC"):
        verify_image_sync(_flip(data, 18))  # in IHDR's width
    with pytest.raises(DamagedImage, match="CRC"):
        verify_image_sync(_flip(data, len(data) - 1))  # in IEND's CRC
    body = b"".join(_chunk(k, b) for k, b in chunks if k != b"IDAT")
    with pytest.raises(DamagedImage, match="no image data"):
        verify_image_sync(PNG_SIGNATURE + body)
    ihdr = bytearray(chunks[0][1])
    ihdr[8] = 3  # depth 3 does not exist
    with pytest.raises(DamagedImage, match="header"):
        verify_image_sync(PNG_SIGNATURE + b"".join(_chunk(k, bytes(ihdr) if k == b"IHDR" else b) for k, b in chunks))
    swapped = [chunks[1], chunks[0], *chunks[2:]]
    with pytest.raises(DamagedImage, match="IHDR"):
        verify_image_sync(PNG_SIGNATURE + b"".join(_chunk(k, b) for k, b in swapped))


def test_truncated_or_broken_jpeg_and_webp_are_caught() -> None:
    for fmt in ("JPEG", "WEBP"):
        data = _photo(fmt=fmt)
        for cut in (0, 3, 11, 40, len(data) // 3, len(data) // 2, len(data) - 3):
            with pytest.raises(DamagedImage):
                verify_image_sync(data[:cut])
    jpeg = _photo(fmt="JPEG")
    sos = jpeg.index(b"\xff\xda")
    with pytest.raises(DamagedImage):  # the scan header overwritten: nothing to decode
        verify_image_sync(jpeg[:sos] + b"\xff\xd9")
    webp = _photo(fmt="WEBP")
    with pytest.raises(DamagedImage):
        verify_image_sync(webp[:20] + bytes(64) + webp[84:])  # the VP8 frame header zeroed


def test_not_an_image_at_all() -> None:
    for data in (b"", b"<html>502 Bad Gateway</html>", _photo(64, 48, fmt="GIF", mode="L")):
        with pytest.raises(DamagedImage):
            verify_image_sync(data)


async def test_a_job_slot_takes_a_completed_image_only_whole_and_labelled_by_its_real_format() -> None:
    png = _photo(32, 32)
    same = CompletedImage(png, output_format="png", request_id="req_1")
    assert await _whole(same) is same
    relabelled = await _whole(CompletedImage(png, output_format="webp", request_id="req_2"))
    assert relabelled.output_format == "png" and relabelled.data == png  # the file gets a .png name
    with pytest.raises(BrokenImage) as caught:
        await _whole(CompletedImage(png[: len(png) // 2], output_format="png", request_id="req_3"))
    assert caught.value.request_id == "req_3" and "req_3" in str(caught.value)
