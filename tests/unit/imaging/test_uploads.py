"""A job's result as Discord takes it: every image fitted under the limit, grouped into messages in order."""

from __future__ import annotations

import io
import os

from PIL import Image

from bot.images_api.types import CompletedImage
from bot.imaging.uploads import plan_uploads


def _noisy_png(side: int) -> bytes:
    out = io.BytesIO()
    Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(out, "PNG")
    return out.getvalue()


async def test_images_that_fit_go_as_they_are_in_one_message() -> None:
    images = [CompletedImage(_noisy_png(32), "png"), CompletedImage(_noisy_png(32), "webp")]
    plan = await plan_uploads(images, 10 * 1024 * 1024)
    assert [u.data for u in plan.files] == [im.data for im in images]
    assert [u.extension for u in plan.files] == ["png", "webp"]
    assert plan.messages == [[0, 1]] and not plan.reencoded


async def test_a_large_image_is_reencoded_and_images_are_spread_over_messages() -> None:
    big = _noisy_png(400)
    limit = len(big) - 1
    plan = await plan_uploads([CompletedImage(big, "png"), CompletedImage(big, "png")], limit)
    assert plan.reencoded and all(len(u.data) <= limit for u in plan.files)
    assert [i for group in plan.messages for i in group] == [0, 1]  # every image once, in order
    assert all(sum(len(plan.files[i].data) for i in group) <= limit for group in plan.messages)
