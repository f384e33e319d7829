"""The Images client's gateway handling: error classification (pure), the retry policy, and the client over
real HTTP against the fake's gateway personalities (``bot/fakeapi/gateways.py``)."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from PIL import Image

from bot.demo.images import FakeImagesAPI
from bot.demo.images.gateways import Gateway, gateway_error
from bot.images_api import (
    AuthenticationFailed,
    CompletedImage,
    ConnectionFailed,
    ContentBlocked,
    EditRequest,
    GenerateRequest,
    ImagesAPIError,
    ImagesClient,
    InputImage,
    InsufficientQuota,
    InvalidRequest,
    RateLimited,
    ServerError,
    StreamError,
    error_from_response,
)
from bot.images_api.errors import (
    DownloadFailed,
    EditsNotSupported,
    GatewayCooldown,
    MalformedResponse,
    ModelUnavailable,
)
from bot.images_api.stream_gate import StreamGate, stream_failure
from bot.messages import api_error
from tests.conftest import FAKE_API_KEY


def err(status: int, message: str, type_: str | None = None, code: str | None = None, **headers: str) -> ImagesAPIError:
    body = {"error": {"message": message, "type": type_, "param": None, "code": code}}
    return error_from_response(status, json.dumps(body).encode(), {k.replace("_", "-"): v for k, v in headers.items()})


@pytest.mark.parametrize(
    ("status", "message", "type_", "code", "cls"),
    [
        (429, "You exceeded your current quota", "insufficient_quota", "insufficient_quota", InsufficientQuota),
        (429, "Rate limit reached for images per min", "requests", "rate_limit_exceeded", RateLimited),
        (403, "用户额度不足 (request id: 2026x1)", "new_api_error", "insufficient_user_quota", InsufficientQuota),
        (403, "预扣费额度失败", "new_api_error", "pre_consume_token_quota_failed", InsufficientQuota),
        (401, "该令牌额度已用尽", "new_api_error", None, InsufficientQuota),
        (401, "Incorrect API key provided", "invalid_request_error", "invalid_api_key", AuthenticationFailed),
        (429, "litellm.RateLimitError: You exceeded your current quota, please check", None, "429", InsufficientQuota),
        (
            503,
            "当前分组 default 下对于模型 gpt-image-2 无可用渠道",
            "new_api_error",
            "model_not_found",
            ModelUnavailable,
        ),
        (404, "The model `gpt-image-9` does not exist", "invalid_request_error", "model_not_found", ModelUnavailable),
        (500, "sensitive words detected", "new_api_error", "sensitive_words_detected", ContentBlocked),
        (400, "sensitive words detected", "new_api_error", "sensitive_words_detected", ContentBlocked),
        (400, "rejected by the safety system", "image_generation_user_error", "moderation_blocked", ContentBlocked),
        (501, "API not implemented", "one_api_error", "api_not_implemented", EditsNotSupported),
        (500, "unmarshal_response_body_failed", "one_api_error", "unmarshal_response_body_failed", ServerError),
        (400, "Invalid size", "invalid_request_error", "invalid_value", InvalidRequest),
    ],
)
def test_classification(status: int, message: str, type_: str | None, code: str | None, cls: type) -> None:
    e = err(status, message, type_, code)
    assert type(e) is cls, e
    assert "额度" not in api_error(e) and message not in api_error(e)  # worded by messages.py


def test_request_ids_from_headers_or_text() -> None:
    assert err(500, "x", x_request_id="req_1").request_id == "req_1"
    assert err(500, "x", X_Oneapi_Request_Id="2026120100001").request_id == "2026120100001"
    assert err(500, "x", x_litellm_call_id="4f1c-call").request_id == "4f1c-call"
    assert err(403, "quota used up (request id: 20261201abc)").request_id == "20261201abc"


def test_what_may_be_retried() -> None:
    client = ImagesClient(None, "http://127.0.0.1:9/v1", "k")  # type: ignore[arg-type]
    assert client._retry_delay(err(503, "overloaded", "server_error"), 0) is not None  # OpenAI itself
    assert client._retry_delay(err(502, "bad gateway"), 0) is not None
    assert client._retry_delay(err(500, "server error", "server_error"), 0) is None  # may have run
    assert client._retry_delay(err(503, "overloaded", x_should_retry="false"), 0) is None  # x-should-retry
    assert client._retry_delay(err(503, "upstream", "new_api_error", "do_request_failed"), 0) is None  # gateway
    assert client._retry_delay(err(502, "x", X_Oneapi_Request_Id="1"), 0) is None  # gateway header
    assert client._retry_delay(err(500, "u", "one_api_error", "unmarshal_response_body_failed"), 0) is None
    assert client._retry_delay(err(429, "slow down", "requests", "rate_limit_exceeded"), 0) is not None
    assert client._retry_delay(err(429, "slow down", retry_after="1"), 0) == 1.0
    assert client._retry_delay(err(429, "exceeded your current quota", code="429", retry_after="1"), 0) is None
    assert client._retry_delay(err(503, "overloaded", "server_error"), client.max_retries) is None  # budget
    refused = ConnectionFailed("refused")
    refused.nothing_sent = True
    assert client._retry_delay(refused, 0) is not None
    assert client._retry_delay(ConnectionFailed("reset after sending"), 0) is None


def test_stream_fallback_and_field_signs() -> None:
    extra = err(400, "litellm.BadRequestError: OpenAIException - Unknown parameter: 'extra_body'.", code="400")
    assert extra.cannot_stream and "extra_body" in extra.cannot_stream
    assert err(500, "u", "one_api_error", "unmarshal_response_body_failed").cannot_stream
    assert err(400, "Invalid size", "invalid_request_error", "invalid_value").cannot_stream is None
    assert err(500, "sensitive words detected", code="sensitive_words_detected").cannot_stream is None
    unsupported = err(400, "litellm.UnsupportedParamsError: openai does not support parameters: ['input_fidelity']")
    assert unsupported.names_field(["output_compression", "input_fidelity"]) == "input_fidelity"
    assert err(400, "Invalid size").names_field(["moderation"]) is None


# ---- over HTTP against the fake ----------------------------------------------------------------


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


def client_for(fake: FakeImagesAPI, session: aiohttp.ClientSession, **kw: Any) -> ImagesClient:
    return ImagesClient(session, fake.base_url, FAKE_API_KEY, backoff_base=0.01, backoff_max=0.05, **kw)


def _gen(**kw: Any) -> GenerateRequest:
    return GenerateRequest(**{"model": "gpt-image-2", "prompt": "a fox", "partial_images": 2, **kw})


async def _all(it: AsyncIterator[Any]) -> list[Any]:
    return [e async for e in it]


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (32, 32), (1, 2, 3)).save(buf, "PNG")
    return buf.getvalue()


async def test_stream_cut_before_first_event_is_retried_within_budget(
    fake: FakeImagesAPI, session: aiohttp.ClientSession
) -> None:
    fake.drop_connection_next(after_partials=0)
    events = await _all(client_for(fake, session).generate(_gen()))
    assert isinstance(events[-1], CompletedImage) and len(fake.requests) == 2 and fake.billed == 1

    fake.drop_connection_next(after_partials=0)
    with pytest.raises(StreamError) as info:
        await _all(client_for(fake, session, max_retries=0).generate(_gen()))
    assert info.value.before_first_event and len(fake.requests) == 3


async def test_a_cut_after_an_event_and_half_an_event_are_not_retried(
    fake: FakeImagesAPI, session: aiohttp.ClientSession
) -> None:
    fake.drop_connection_next(after_partials=1)
    with pytest.raises(StreamError) as info:
        await _all(client_for(fake, session).generate(_gen()))
    assert not info.value.before_first_event and len(fake.requests) == 1
    fake.half_event_next(after_partials=0)
    with pytest.raises(MalformedResponse):
        await _all(client_for(fake, session).generate(_gen()))
    assert len(fake.requests) == 2


async def test_should_retry_false_is_honoured(fake: FakeImagesAPI, session: aiohttp.ClientSession) -> None:
    fake.fail_next(503, type="server_error", message="overloaded", headers={"x-should-retry": "false"})
    with pytest.raises(ServerError):
        await _all(client_for(fake, session).generate(_gen()))
    assert len(fake.requests) == 1


async def test_new_api_pings_done_and_json_as_stream_items(fake: FakeImagesAPI, session: aiohttp.ClientSession) -> None:
    fake.gateway = Gateway("new-api")
    client = client_for(fake, session)
    events = await _all(client.generate(_gen(output_format="webp")))
    assert isinstance(events[-1], CompletedImage) and events[-1].data == fake.results[-1]
    fake.gateway.json_channel = True  # completed events with b64_json but no output_format
    [done] = await _all(client.generate(_gen(output_format="jpeg")))
    assert isinstance(done, CompletedImage) and done.output_format == "jpeg" and done.size is None
    assert done.request_id == fake.request_ids[-1]  # from X-Oneapi-Request-Id


async def test_an_unsupported_edit_field_is_dropped_once_and_remembered(
    fake: FakeImagesAPI, session: aiohttp.ClientSession
) -> None:
    # Older LiteLLM versions refuse input_fidelity for edits unless the proxy sets drop_params.
    fake.gateway = Gateway("litellm")
    message = (
        "litellm.UnsupportedParamsError: openai does not support parameters: ['input_fidelity'], for "
        "model=gpt-image-1.5. To drop these, set `litellm.drop_params=True`."
    )
    fake.fail_next(400, type="invalid_request_error", code="400", message=message)
    client = client_for(fake, session)
    req = EditRequest(
        model="gpt-image-1.5",
        prompt="make it blue",
        images=(InputImage("a.png", _png(), "image/png"),),
        input_fidelity="high",
        partial_images=0,
    )
    [done] = await _all(client.edit(req))
    assert isinstance(done, CompletedImage)
    assert [r.form.get("input_fidelity") for r in fake.requests] == ["high", None]
    assert client.dropped_fields("/images/edits") == {"input_fidelity"}
    await _all(client.edit(req))
    assert len(fake.requests) == 3 and "input_fidelity" not in fake.requests[-1].form  # remembered


async def test_one_api_fallback_is_remembered_per_base_url(fake: FakeImagesAPI, session: aiohttp.ClientSession) -> None:
    fake.gateway = Gateway("one-api")
    status, _ = gateway_error("new-api", "quota")
    assert status == 403
    client = client_for(fake, session)
    await _all(client.generate(_gen()))
    await _all(client.generate(_gen()))
    assert [r.json.get("stream") for r in fake.requests if r.json] == [True, None, None]
    with pytest.raises(EditsNotSupported):
        await _all(
            client.edit(
                EditRequest(model="gpt-image-2", prompt="x", images=(InputImage("a.png", _png(), "image/png"),))
            )
        )


async def _links_server(routes: dict[str, tuple[str, bytes]]) -> tuple[web.AppRunner, str, list[dict[str, str]]]:
    seen: list[dict[str, str]] = []

    async def handle(request: web.Request) -> web.Response:
        seen.append(dict(request.headers))
        ctype, body = routes[request.match_info["name"]]
        return web.Response(body=body, content_type=ctype)

    app = web.Application()
    app.router.add_get("/{name}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}", seen


async def test_url_downloads_are_keyless_and_bounded(session: aiohttp.ClientSession) -> None:
    routes = {
        "ok": ("application/octet-stream", _png()),
        "html": ("text/html", b"<html>login</html>"),
        "text": ("image/png", b"not an image at all"),
        "big": ("image/png", b"\x89PNG\r\n\x1a\n" + b"0" * 5000),
    }
    runner, base, seen = await _links_server(routes)
    try:
        client = ImagesClient(session, base + "/v1", FAKE_API_KEY)  # links on the gateway's own origin
        client.download_max_bytes = 4096
        assert await client._download({"url": f"{base}/ok"}, None) == _png()
        assert all("Authorization" not in h for h in seen)
        with pytest.raises(DownloadFailed):
            await client._download({"url": f"{base}/html"}, None)
        with pytest.raises(MalformedResponse):
            await client._download({"url": f"{base}/text"}, None)
        with pytest.raises(DownloadFailed):
            await client._download({"url": f"{base}/big"}, None)
        with pytest.raises(MalformedResponse):
            await client._download({"url": "file:///etc/passwd"}, None)
    finally:
        await client.aclose()
        await runner.cleanup()


async def test_a_stall_before_the_first_event_is_not_retried(
    fake: FakeImagesAPI, session: aiohttp.ClientSession
) -> None:
    fake.hang_next(after_partials=0)  # headers sent, then nothing: the service may still be generating
    with pytest.raises(StreamError) as info:
        await _all(client_for(fake, session, stall_timeout=1.5).generate(_gen()))
    assert type(info.value).__name__ == "StreamStalled" and len(fake.requests) == 1


# --- LiteLLM 1.110.2's answers, as the real proxy sent them (docs/setup/gateways.md) --------------------------

LITELLM_SUFFIX = "\n\nLiteLLM: model group 'gpt-image-1' failed with the error above. No fallback was attempted."


def litellm_err(status: int, message: str, type_: str, *, call_id: bool = True) -> ImagesAPIError:
    body = {"error": {"message": message, "type": type_, "param": None, "code": str(status)}}
    headers = {"x-litellm-call-id": "0b213c0d"} if call_id else {}
    return error_from_response(status, json.dumps(body).encode(), headers)


@pytest.mark.parametrize(
    ("status", "message", "type_", "cls", "words"),
    [
        (
            400,
            "litellm.BadRequestError: OpenAIException - Your request was rejected by the safety system. If you "
            "believe this is an error, contact us at help.openai.com and include the request ID." + LITELLM_SUFFIX,
            "image_generation_user_error",
            ContentBlocked,
            "safety rules",
        ),
        (400, "No connected db.", "no_db_connection", AuthenticationFailed, "API key was rejected"),
        (
            400,
            "400: {'error': '/image/generations: Invalid model name passed in model=gpt-image-9. Call `/v1/models` "
            "to view available models for your key.'}",
            "invalid_request_error",
            ModelUnavailable,
            "IMAGE_MODEL",
        ),
        (
            429,
            "litellm.RateLimitError: RateLimitError: OpenAIException - You exceeded your current quota, please "
            "check your plan and billing details." + LITELLM_SUFFIX,
            "throttling_error",
            InsufficientQuota,
            "out of credit",
        ),
        (
            429,
            "No deployments available for selected model, Try again in 5 seconds. All deployments for selected "
            "model are in cooldown. Passed model=gpt-image-1. pre-call-checks=False, cooldown_list=['c8d3']",
            "all_deployments_in_cooldown",
            GatewayCooldown,
            "paused this model",
        ),
    ],
)
def test_litellm_texts_are_classified(status: int, message: str, type_: str, cls: type, words: str) -> None:
    e = litellm_err(status, message, type_, call_id=type_ != "no_db_connection")
    assert type(e) is cls, e
    assert e.litellm
    assert words in api_error(e) and "litellm" not in api_error(e).lower()
    if cls is GatewayCooldown:
        assert e.retry_after == 5.0


def test_a_whole_sse_body_in_an_error_message_is_capped_and_holds_no_base64() -> None:
    frame = base64.b64encode(bytes(range(256)) * 200).decode()
    sse = f'event: image_edit.partial_image\ndata: {{"type": "image_edit.partial_image", "b64_json": "{frame}"}}\n\n'
    e = litellm_err(500, f"litellm.APIError: APIError: OpenAIException - {sse * 3}", "internal_server_error")
    assert len(e.message) < 600 and frame[:100] not in str(e)
    assert "base64 chars>" in e.message
    assert type(e) is ServerError and e.from_gateway and e.litellm


def test_the_stream_gate_allows_one_billed_discovery_per_process() -> None:
    gate = StreamGate("http://proxy/v1")
    failure = litellm_err(
        500, "litellm.APIConnectionError: 'str' object has no attribute 'model_dump'", "internal_server_error"
    )
    reason = stream_failure(failure)
    assert reason is not None and "LiteLLM" in reason
    remembered: list[str] = []

    async def remember(r: str) -> None:
        remembered.append(r)

    gate.on_discovery = remember

    async def both() -> tuple[bool, bool]:
        return await gate.discover(reason, failure), await gate.discover(reason, failure)

    import asyncio

    assert asyncio.run(both()) == (True, False)
    assert remembered == [reason] and gate.reason == reason
    # Not a discovery: OpenAI's own 5xx, a gateway's safety refusal, a gateway's 400.
    assert stream_failure(err(502, "Bad gateway", "server_error")) is None
    assert stream_failure(err(500, "sensitive words detected", "new_api_error", "sensitive_words_detected")) is None
    assert stream_failure(litellm_err(400, "Invalid value for size", "invalid_request_error")) is None


async def test_a_proxy_not_yet_recognised_is_looked_at_before_the_first_stream(
    fake: FakeImagesAPI, session: aiohttp.ClientSession
) -> None:
    # The startup look found nothing to connect to; the first stream request looks again (for free) first.
    fake.gateway = Gateway("litellm")
    client = client_for(fake, session)
    [done] = [e async for e in client.generate(_gen()) if isinstance(e, CompletedImage)]
    assert done.data and [(r.json or {}).get("stream") for r in fake.requests] == [None]
    assert client.streams.gateway == "LiteLLM" and client.streaming_refused and fake.billed == 1


async def test_the_fake_litellm_loses_an_upstream_data_object_as_the_real_one_does(
    fake: FakeImagesAPI, session: aiohttp.ClientSession
) -> None:
    fake.gateway = Gateway("litellm")
    fake.gateway.data_as_object = True
    client = client_for(fake, session)
    with pytest.raises(ImagesAPIError, match="returned no image"):
        await _all(client.generate(_gen(partial_images=0)))
    assert fake.billed == 1 and len(fake.requests) == 1
