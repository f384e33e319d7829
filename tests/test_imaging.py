"""Pillow helpers: previews are small JPEGs, uploads fit the limit, packing respects Discord's rules."""

from __future__ import annotations

import io
import os

from PIL import Image

from bot.imaging import fit_upload_sync, make_preview_sync, pack_uploads


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
