"""The fake's wire format, checked with the official ``openai`` package (test-only dependency)."""

from __future__ import annotations

import base64
import io
from collections.abc import AsyncIterator

import openai
import pytest
from openai import AsyncOpenAI
from PIL import Image

from bot.demo.images import FakeImagesAPI
from tests.plugins.fakes import FAKE_API_KEY

KEY = FAKE_API_KEY


@pytest.fixture
async def sdk(fake: FakeImagesAPI) -> AsyncIterator[AsyncOpenAI]:
    client = AsyncOpenAI(base_url=fake.base_url, api_key=KEY, max_retries=0)
    yield client
    await client.close()


def _png(size: tuple[int, int], mode: str = "RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, (0, 90, 200) if mode == "RGB" else (0, 0, 0, 0)).save(buf, "PNG")
    return buf.getvalue()


async def test_generate_stream(fake: FakeImagesAPI, sdk: AsyncOpenAI) -> None:
    stream = await sdk.images.generate(
        model="gpt-image-2", prompt="a lighthouse", stream=True, partial_images=2, size="1024x1536"
    )
    events = [e async for e in stream]
    assert [e.type for e in events] == [
        "image_generation.partial_image",
        "image_generation.partial_image",
        "image_generation.completed",
    ]
    second = events[1]
    assert type(events[0]).__name__ == "ImageGenPartialImageEvent"
    assert second.type == "image_generation.partial_image" and second.partial_image_index == 1
    done = events[-1]
    assert done.type == "image_generation.completed"
    assert base64.b64decode(done.b64_json) == fake.results[-1]
    assert done.usage.output_tokens > 0 and done.usage.input_tokens_details.text_tokens > 0
    assert done.size == "1024x1536" and done.output_format == "png"


async def test_generate_non_streaming(fake: FakeImagesAPI, sdk: AsyncOpenAI) -> None:
    resp = await sdk.images.generate(model="gpt-image-1.5", prompt="a boat", n=2, quality="low", output_format="webp")
    assert type(resp).__name__ == "ImagesResponse"
    assert resp.data is not None and [base64.b64decode(d.b64_json or "") for d in resp.data] == fake.results
    assert resp.usage is not None and resp.usage.total_tokens > 0
    assert resp.quality == "low" and resp.output_format == "webp" and resp.size == "1024x1024"


async def test_edit_stream_with_mask(fake: FakeImagesAPI, sdk: AsyncOpenAI) -> None:
    image = ("room.png", _png((96, 64)), "image/png")
    mask = ("mask.png", _png((96, 64), "RGBA"), "image/png")
    stream = await sdk.images.edit(
        model="gpt-image-1.5", prompt="add a plant", image=image, mask=mask, stream=True, partial_images=1
    )
    events = [e async for e in stream]
    assert [e.type for e in events] == ["image_edit.partial_image", "image_edit.completed"]
    assert type(events[-1]).__name__ == "ImageEditCompletedEvent"
    assert base64.b64decode(events[-1].b64_json) == fake.results[-1]
    rec = fake.requests[-1]
    assert {f.field for f in rec.files} == {"image", "mask"}


async def test_edit_several_images(fake: FakeImagesAPI, sdk: AsyncOpenAI) -> None:
    images = [("a.png", _png((64, 64)), "image/png"), ("b.png", _png((32, 32)), "image/png")]
    resp = await sdk.images.edit(model="gpt-image-2", prompt="merge", image=images)
    assert resp.data and base64.b64decode(resp.data[0].b64_json or "") == fake.results[-1]
    assert [f.field for f in fake.requests[-1].files] == ["image[]", "image[]"]


async def test_moderation_error(fake: FakeImagesAPI, sdk: AsyncOpenAI) -> None:
    fake.moderation_block_next()
    with pytest.raises(openai.BadRequestError) as info:
        await sdk.images.generate(model="gpt-image-2", prompt="something bad")
    err = info.value
    assert err.code == "moderation_blocked" and err.type == "image_generation_user_error"
    assert isinstance(err.body, dict) and err.body["code"] == "moderation_blocked"
    assert err.request_id and err.request_id.startswith("req_")


async def test_rate_limit_error(fake: FakeImagesAPI, sdk: AsyncOpenAI) -> None:
    fake.rate_limit_next(1.0)
    with pytest.raises(openai.RateLimitError) as info:
        await sdk.images.generate(model="gpt-image-2", prompt="x")
    assert info.value.code == "rate_limit_exceeded"
    assert len(fake.requests) == 1


async def test_mid_stream_error_event(fake: FakeImagesAPI, sdk: AsyncOpenAI) -> None:
    fake.error_mid_stream_next(after_partials=0)
    stream = await sdk.images.generate(model="gpt-image-2", prompt="x", stream=True, partial_images=1)
    with pytest.raises(openai.APIError):
        async for _ in stream:
            pass
