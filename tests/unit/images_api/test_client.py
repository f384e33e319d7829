"""ImagesClient against FakeImagesAPI over real HTTP on 127.0.0.1."""

from __future__ import annotations

import io
import json
import socket
from collections.abc import AsyncIterator

import aiohttp
import pytest
from PIL import Image

from bot.demo.images import FakeImagesAPI
from bot.images_api import (
    AuthenticationFailed,
    CompletedImage,
    ConnectionFailed,
    ContentBlocked,
    EditRequest,
    GenerateRequest,
    ImageEvent,
    ImagesClient,
    InputImage,
    InsufficientQuota,
    InvalidRequest,
    PartialImage,
    RateLimited,
    StreamError,
    StreamStalled,
)
from tests.plugins.fakes import FAKE_API_KEY

KEY = FAKE_API_KEY


@pytest.fixture
def client(fake: FakeImagesAPI, session: aiohttp.ClientSession) -> ImagesClient:
    return ImagesClient(session, fake.base_url + "/", KEY, backoff_base=0.01, backoff_max=0.05, stall_timeout=5)


def _png(size: tuple[int, int] = (64, 48), mode: str = "RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, (200, 30, 30) if mode == "RGB" else (0, 0, 0, 0)).save(buf, "PNG")
    return buf.getvalue()


def _jpeg(size: tuple[int, int] = (64, 48)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (10, 200, 30)).save(buf, "JPEG")
    return buf.getvalue()


async def _all(it: AsyncIterator[ImageEvent]) -> list[ImageEvent]:
    return [e async for e in it]


def _gen(**kw: object) -> GenerateRequest:
    args: dict[str, object] = {"model": "gpt-image-2", "prompt": "a red fox in the snow", "partial_images": 2}
    args.update(kw)
    return GenerateRequest(**args)  # type: ignore[arg-type]


async def test_streaming_generate(fake: FakeImagesAPI, client: ImagesClient) -> None:
    events = await _all(client.generate(_gen(size="1536x864", quality="low", user="user-42")))
    assert [type(e) for e in events] == [PartialImage, PartialImage, CompletedImage]
    assert [e.index for e in events[:2]] == [0, 1]  # type: ignore[union-attr]
    done = events[-1]
    assert isinstance(done, CompletedImage)
    assert done.data == fake.results[-1]
    assert done.usage is not None and done.usage.output_tokens > 0 and done.usage.input_text_tokens > 0
    assert done.request_id and done.request_id.startswith("req_")
    assert done.size == "1536x864"
    assert Image.open(io.BytesIO(done.data)).size == (1536, 864)
    body = fake.requests[-1].json
    assert body is not None
    assert body["model"] == "gpt-image-2" and body["stream"] is True and body["partial_images"] == 2
    assert body["safety_identifier"] == "user-42" and body["user"] == "user-42"  # new-api keeps only user
    assert fake.requests[-1].headers["Authorization"] == f"Bearer {KEY}"


async def test_non_streaming_generate(fake: FakeImagesAPI, client: ImagesClient) -> None:
    events = await _all(client.generate(_gen(stream=False, n=2, output_format="jpeg", output_compression=50)))
    assert all(isinstance(e, CompletedImage) for e in events) and len(events) == 2
    finals = [e for e in events if isinstance(e, CompletedImage)]
    assert [e.data for e in finals] == fake.results[-2:]
    assert all(e.usage and e.usage.output_tokens for e in finals)
    assert finals[0].data[:3] == b"\xff\xd8\xff"
    body = fake.requests[-1].json
    assert body is not None and "stream" not in body and "partial_images" not in body
    assert body["output_compression"] == 50


async def test_stream_with_zero_partials_goes_non_streaming(fake: FakeImagesAPI, client: ImagesClient) -> None:
    events = await _all(client.generate(_gen(partial_images=0)))
    assert len(events) == 1 and isinstance(events[0], CompletedImage)
    body = fake.requests[-1].json
    assert body is not None and "stream" not in body


@pytest.mark.parametrize("done_marker", [True, False])
async def test_done_marker_present_or_absent(done_marker: bool, session: aiohttp.ClientSession) -> None:
    api = FakeImagesAPI(done_marker=done_marker)
    await api.start()
    try:
        client = ImagesClient(session, api.base_url, "sk-x")
        events = await _all(client.generate(_gen(n=2, partial_images=1)))
        assert [type(e).__name__ for e in events] == ["PartialImage", "CompletedImage"] * 2
        assert [e.data for e in events if isinstance(e, CompletedImage)] == api.results
    finally:
        await api.stop()
    assert api.validation_errors == []


async def test_edit_single_image(fake: FakeImagesAPI, client: ImagesClient) -> None:
    req = EditRequest(
        model="gpt-image-1.5",
        prompt="add a hat",
        images=(InputImage("photo.png", _png(), "image/png"),),
        input_fidelity="high",
        partial_images=1,
    )
    events = await _all(client.edit(req))
    assert [type(e) for e in events] == [PartialImage, CompletedImage]
    last = events[-1]
    assert isinstance(last, CompletedImage) and last.data == fake.results[-1]
    assert Image.open(io.BytesIO(last.data)).size == (64, 48)
    rec = fake.requests[-1]
    assert [(f.field, f.filename, f.content_type) for f in rec.files] == [("image", "photo.png", "image/png")]
    assert rec.form["stream"] == "true" and rec.form["partial_images"] == "1" and rec.form["model"] == "gpt-image-1.5"
    assert rec.form["input_fidelity"] == "high"


async def test_edit_several_images_and_mask(fake: FakeImagesAPI, client: ImagesClient) -> None:
    req = EditRequest(
        model="gpt-image-2",
        prompt="combine them",
        images=(
            InputImage("a.png", _png(), "image/png"),
            InputImage("b", _jpeg(), "image/jpeg"),  # no extension: the client adds one
            InputImage("c.bin", _png(), "application/octet-stream"),  # sniffed as PNG
        ),
        mask=InputImage("mask.png", _png(mode="RGBA"), "image/png"),
        input_fidelity="high",  # not for gpt-image-2: omitted
        stream=False,
    )
    events = await _all(client.edit(req))
    [only] = events
    assert isinstance(only, CompletedImage) and only.data == fake.results[-1]
    rec = fake.requests[-1]
    assert [(f.field, f.filename, f.content_type) for f in rec.files] == [
        ("image[]", "a.png", "image/png"),
        ("image[]", "b.jpg", "image/jpeg"),
        ("image[]", "c.bin.png", "image/png"),
        ("mask", "mask.png", "image/png"),
    ]
    assert "input_fidelity" not in rec.form and "stream" not in rec.form


async def test_fake_rejects_octet_stream_image(fake: FakeImagesAPI) -> None:
    form = aiohttp.FormData()
    form.add_field("model", "gpt-image-2")
    form.add_field("prompt", "x")
    form.add_field("image", _png(), filename="a.png", content_type="application/octet-stream")
    async with aiohttp.ClientSession() as s:
        resp = await s.post(fake.base_url + "/images/edits", data=form, headers={"Authorization": f"Bearer {KEY}"})
        body = json.loads(await resp.read())
    assert resp.status == 400 and body["error"]["code"] == "unsupported_file_mimetype"
    assert body["error"]["param"] == "image[0]"
    fake.validation_errors.clear()  # expected for this test


async def test_retries_429_with_retry_after(fake: FakeImagesAPI, client: ImagesClient) -> None:
    fake.rate_limit_next(0.05, times=2)
    events = await _all(client.generate(_gen()))
    assert isinstance(events[-1], CompletedImage)
    assert len(fake.requests) == 3


async def test_retries_5xx_then_success(fake: FakeImagesAPI, client: ImagesClient) -> None:
    fake.fail_next(503, type="server_error", message="overloaded", times=2)
    events = await _all(client.generate(_gen(stream=False)))
    assert len(events) == 1 and len(fake.requests) == 3


async def test_retries_are_bounded(fake: FakeImagesAPI, client: ImagesClient) -> None:
    fake.rate_limit_next(0.01, times=10)
    with pytest.raises(RateLimited) as info:
        await _all(client.generate(_gen()))
    assert len(fake.requests) == client.max_retries + 1
    assert info.value.retry_after == pytest.approx(0.01)


@pytest.mark.parametrize(
    ("setup", "exc_type", "code"),
    [
        (
            lambda f: f.fail_next(
                400, type="invalid_request_error", code="invalid_value", message="bad size", param="size"
            ),
            InvalidRequest,
            "invalid_value",
        ),
        (lambda f: f.insufficient_quota_next(), InsufficientQuota, "insufficient_quota"),
        (lambda f: f.moderation_block_next(), ContentBlocked, "moderation_blocked"),
    ],
)
async def test_no_retry(fake: FakeImagesAPI, client: ImagesClient, setup, exc_type, code) -> None:
    setup(fake)
    with pytest.raises(exc_type) as info:
        await _all(client.generate(_gen()))
    err = info.value
    assert len(fake.requests) == 1
    assert err.code == code and err.request_id and err.request_id.startswith("req_")
    if code == "invalid_value":
        assert err.param == "size" and err.status == 400
    if code == "moderation_blocked":
        assert "moderation_details" in err.details


async def test_bad_key_is_not_retried_and_not_leaked(fake: FakeImagesAPI, session: aiohttp.ClientSession) -> None:
    wrong = "sk-wrong-key-abcdef123456"
    client = ImagesClient(session, fake.base_url, wrong, backoff_base=0.01)
    with pytest.raises(AuthenticationFailed) as info:
        await _all(client.generate(_gen()))
    assert len(fake.requests) == 1 and info.value.status == 401
    assert wrong not in str(info.value) and wrong not in repr(info.value) and wrong not in repr(client)


async def test_streaming_refusal_falls_back_and_stays(fake: FakeImagesAPI, client: ImagesClient) -> None:
    fake.refuse_streaming = True
    events = await _all(client.generate(_gen()))
    assert [type(e) for e in events] == [CompletedImage]
    assert [r.json.get("stream") for r in fake.requests if r.json is not None] == [True, None]
    assert client.streaming_refused
    events = await _all(client.generate(_gen()))
    assert len(events) == 1 and len(fake.requests) == 3
    assert fake.requests[-1].json is not None and "stream" not in fake.requests[-1].json


async def test_mid_stream_error(fake: FakeImagesAPI, client: ImagesClient) -> None:
    fake.error_mid_stream_next(after_partials=1)
    got: list[ImageEvent] = []
    with pytest.raises(StreamError) as info:
        async for e in client.generate(_gen()):
            got.append(e)
    assert [type(e) for e in got] == [PartialImage]
    assert info.value.code == "server_error" and info.value.request_id
    assert len(fake.requests) == 1


async def test_dropped_connection(fake: FakeImagesAPI, client: ImagesClient) -> None:
    fake.drop_connection_next(after_partials=1)
    with pytest.raises(StreamError) as info:
        await _all(client.generate(_gen()))
    assert not isinstance(info.value, StreamStalled)
    assert len(fake.requests) == 1


async def test_stall(fake: FakeImagesAPI, session: aiohttp.ClientSession) -> None:
    client = ImagesClient(
        session, fake.base_url, KEY, stall_timeout=1.5
    )  # generous: a loaded machine is slow to send the first frame
    fake.hang_next(after_partials=1)
    got: list[ImageEvent] = []
    with pytest.raises(StreamStalled):
        async for e in client.generate(_gen()):
            got.append(e)
    assert len(got) == 1 and len(fake.requests) == 1


async def test_connection_refused_is_retried_then_fails(session: aiohttp.ClientSession) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = ImagesClient(session, f"http://127.0.0.1:{port}/v1", KEY, max_retries=2, backoff_base=0.01)
    with pytest.raises(ConnectionFailed) as info:
        await _all(client.generate(_gen()))
    assert info.value.status is None and KEY not in str(info.value)
