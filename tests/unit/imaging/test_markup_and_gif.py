"""Markup layers derived from a drawn-on copy, and animated GIFs fitted to an upload limit."""

from __future__ import annotations

import io

import pytest
from PIL import Image, ImageDraw

from bot.imaging.inputs import InputRejected
from bot.imaging.markup import derive_markup_sync, prepare_markup_sync
from bot.imaging.work import fit_upload_sync


def _png(im: Image.Image, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt)
    return buf.getvalue()


def _photo(w: int = 300, h: int = 200) -> Image.Image:
    im = Image.new("RGB", (w, h))
    im.putdata([((x * 255) // w, (y * 255) // h, 90) for y in range(h) for x in range(w)])
    return im


def test_the_layer_holds_the_strokes_in_their_colours_and_nothing_else() -> None:
    photo = _photo()
    drawn = photo.copy()
    ImageDraw.Draw(drawn).line((20, 20, 150, 150), fill=(255, 0, 255), width=5)
    # The copy came back as a larger JPEG (a phone screenshot): noise and scaling are not marks.
    copy = drawn.resize((600, 400), Image.Resampling.BICUBIC)
    layer_png = derive_markup_sync(_png(photo), _png(copy, "JPEG"))
    assert layer_png is not None
    with Image.open(io.BytesIO(layer_png)) as opened:
        layer = opened.convert("RGBA")
    assert layer.size == (300, 200)
    r, g, b, a = layer.getpixel((85, 85))  # type: ignore[misc]
    assert a == 255 and r > 200 and g < 80 and b > 200
    assert layer.getpixel((250, 30))[3] == 0 and layer.getpixel((30, 180))[3] == 0  # type: ignore[index]


def test_a_different_picture_or_an_untouched_copy_is_not_a_scribble() -> None:
    photo = _photo()
    assert derive_markup_sync(_png(photo), _png(photo)) is None  # nothing drawn
    other = Image.new("RGB", (300, 200), (10, 200, 30))
    assert derive_markup_sync(_png(photo), _png(other)) is None  # another picture
    assert derive_markup_sync(_png(photo), _png(_photo(200, 200))) is None  # other proportions


def test_a_members_own_layer_must_be_see_through_and_marked() -> None:
    with pytest.raises(InputRejected) as opaque:
        prepare_markup_sync(_png(_photo()), (300, 200))
    assert opaque.value.code == "markup_opaque"
    with pytest.raises(InputRejected) as empty:
        prepare_markup_sync(_png(Image.new("RGBA", (30, 20), (0, 0, 0, 0))), (300, 200))
    assert empty.value.code == "markup_empty"
    layer = Image.new("RGBA", (30, 20), (0, 0, 0, 0))
    layer.putpixel((3, 3), (255, 0, 0, 255))
    prepared = prepare_markup_sync(_png(layer), (300, 200))
    assert prepared.content_type == "image/png"
    with Image.open(io.BytesIO(prepared.data)) as im:
        assert im.size == (300, 200)


def test_an_oversized_gif_keeps_every_frame_and_its_timing() -> None:
    frames = [Image.effect_noise((400, 300), 80).convert("RGB") for _ in range(6)]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=[70, 80, 90, 100, 110, 120], loop=0)
    data = buf.getvalue()
    limit = len(data) // 3
    fitted = fit_upload_sync(data, "gif", limit)
    assert fitted.extension == "gif" and fitted.reencoded and len(fitted.data) <= limit
    with Image.open(io.BytesIO(fitted.data)) as im:
        assert getattr(im, "n_frames", 1) == 6
        durations = []
        for i in range(6):
            im.seek(i)
            durations.append(im.info["duration"])
    assert durations == [70, 80, 90, 100, 110, 120]
