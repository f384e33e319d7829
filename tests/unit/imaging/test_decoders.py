"""Only the decoders the bot needs read members' files; Pillow's pixel limit is set, not left to its default."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest
from PIL import Image

from bot.imaging import DEFAULT_DECODE_PIXELS, set_decode_limit
from bot.imaging.inputs import INPUT_FORMATS, InputRejected, prepare_image_sync


def encoded(fmt: str, mode: str = "RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, (16, 16), 128).save(buf, fmt)
    return buf.getvalue()


@pytest.mark.parametrize(("fmt", "mode"), [("PCX", "RGB"), ("SGI", "RGB"), ("PPM", "RGB"), ("IM", "RGB")])
def test_formats_the_bot_does_not_need_are_not_decoded(fmt: str, mode: str) -> None:
    with pytest.raises(InputRejected) as info:
        prepare_image_sync(encoded(fmt, mode), "x.img", max_side=2048, max_pixels=10**7)
    assert info.value.code == "unreadable"


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF"])
def test_the_promised_formats_are_read(fmt: str) -> None:
    assert fmt in INPUT_FORMATS
    prepare_image_sync(encoded(fmt), f"x.{fmt.lower()}", max_side=2048, max_pixels=10**7)


def test_the_pixel_limit_is_set_explicitly_in_every_decoding_process() -> None:
    assert Image.MAX_IMAGE_PIXELS == DEFAULT_DECODE_PIXELS
    set_decode_limit(50_000_000)
    try:
        assert Image.MAX_IMAGE_PIXELS == 50_000_000
    finally:
        set_decode_limit(0)
    assert Image.MAX_IMAGE_PIXELS == DEFAULT_DECODE_PIXELS
    # A fresh process (as a preview worker is, spawned) gets it from importing the package it runs code of.
    code = "import bot.imaging.work; from PIL import Image; print(Image.MAX_IMAGE_PIXELS)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert int(out) == DEFAULT_DECODE_PIXELS
