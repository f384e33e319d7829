"""A fake OpenAI Images API on aiohttp: for the tests, and as a demo backend without an OpenAI key.

It speaks the real wire format (JSON / multipart requests, ``ImagesResponse`` JSON, SSE streams),
validates requests against the OpenAPI schema subset in ``openai_schema.json`` plus the documented rules,
records everything, and can be told to misbehave on the next request (``fail_next`` and friends).
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections import deque
from typing import Any

from aiohttp import web

from bot.images_api.models import MODELS

from . import draw
from .gateways import Gateway, gateway_error
from .job import _encoded, _Job
from .requests import (
    MAX_BODY,
    MODERATION_MESSAGE,
    VERIFY_STREAM_MESSAGE,
    Fault,
    RecordedFile,
    RecordedRequest,
    RequestReader,
    SentEvent,
    _BadRequest,
    _error_body,
    _load_validators,
)

__all__ = ["FakeImagesAPI", "Fault", "RecordedFile", "RecordedRequest", "SentEvent"]

log = logging.getLogger(__name__)


class FakeImagesAPI(RequestReader):
    """``await fake.start()`` -> ``http://127.0.0.1:PORT/v1``; ``await fake.stop()``."""

    def __init__(
        self,
        *,
        api_key: str | None = None,
        realistic: bool = False,
        done_marker: bool = False,
        validate: bool = True,
        gateway: str = "openai",
    ) -> None:
        # Which gateway it imitates (bot/fakeapi/gateways.py); its options (json_channel, url_items, ...)
        # are attributes of ``self.gateway``.
        self.gateway = Gateway(gateway)
        # Images the "upstream" produced, i.e. what the owner was charged for (a gateway may fail after it).
        self.billed = 0
        self.forwarded: list[dict[str, Any]] = []  # each request's parameters as the upstream received them
        self.downloads: list[dict[str, str]] = []  # headers of each GET of an image link
        self.request_ids: list[str] = []  # the request id given to each request, in order
        self._files: dict[str, bytes] = {}
        self._redirects: dict[str, str] = {}
        # Hostile-gateway knobs: url items name ``link_to`` instead of the fake's own file link; each final
        # image is ``final_image`` instead of a drawing; ``flood_bytes`` counts what a flood fault wrote.
        self.link_to: str | None = None
        self.final_image: bytes | None = None
        self.usage_override: dict[str, Any] | None = None  # sent as every answer's ``usage`` when set
        self.flood_bytes = 0
        self.api_key = api_key
        self.realistic = realistic
        self.done_marker = done_marker
        self.delay_first_event = 0.0
        self.delay_between_events = 0.0
        # Each delay is drawn uniformly from delay * [1 - jitter, 1 + jitter] (0: exact, as the tests want).
        self.jitter = 0.0
        # When set, the seconds before each event of an image's stream in turn (its partial frames, then the
        # result; the last value repeats), instead of ``delay_first_event`` / ``delay_between_events``:
        # e.g. (1.0, 0.03, 12.0) for two frames 30 ms apart and the result 12 s later.
        self.event_delays: tuple[float, ...] | None = None
        # Non-streaming answers: seconds from the request to the response (None: ``delay_first_event``).
        # The benchmark's burst profile sets it to when the stream's result would come (1.0 s).
        self.delay_response: float | None = None
        # > 0: generated images come from a pool of this many pictures per (size, format, background,
        # stage), drawn once and cycled, so serving a request costs no Pillow work (the benchmark's load).
        self.image_pool = 0
        self._pool: dict[tuple[Any, ...], asyncio.Future[tuple[bytes, str]]] = {}
        self.refuse_streaming = False
        self.hang_seconds = 3600.0
        self.requests: list[RecordedRequest] = []
        # Streams open now, the most open at once, and how many the client closed before their end.
        self.open_streams = 0
        self.max_open_streams = 0
        self.closed_by_client = 0
        self.results: list[bytes] = []
        self.events: list[SentEvent] = []
        self.validation_errors: list[str] = []
        self._faults: deque[Fault] = deque()
        self._counter = 0
        self._validators = _load_validators() if validate else None
        self._runner: web.AppRunner | None = None
        self._base_url: str | None = None
        self._stopping = asyncio.Event()
        # GET /v1/models lists these (None: the route answers 404, as some gateways do).
        self.models: list[str] | None = sorted(MODELS)

    # ---- lifecycle ---------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        if self._base_url is None:
            raise RuntimeError("FakeImagesAPI is not started")
        return self._base_url

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        app = web.Application(client_max_size=MAX_BODY)
        app.router.add_post("/v1/images/generations", self._handle)
        app.router.add_post("/v1/images/edits", self._handle)
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/v1/models/{model}", self._models)
        app.router.add_get("/v1/model/info", self._model_info)
        app.router.add_get("/files/{name}", self._file)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, shutdown_timeout=1.0)
        await site.start()
        sockets = self._runner.addresses
        real_port = sockets[0][1] if sockets else port
        self._base_url = f"http://{host}:{real_port}/v1"
        return self._base_url

    async def stop(self) -> None:
        self._stopping.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeImagesAPI:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ---- controls ----------------------------------------------------------------------------
    def fail_next(
        self,
        status: int,
        *,
        type: str,
        code: str | None = None,
        message: str,
        param: str | None = None,
        headers: dict[str, str] | None = None,
        times: int = 1,
        extra: dict[str, Any] | None = None,
    ) -> None:
        """Answer the next ``times`` requests with an OpenAI-style error."""
        body = _error_body(message, type, code, param)
        body["error"].update(extra or {})
        self._faults.append(Fault("error", status, body, dict(headers or {}), times=times))

    def moderation_block_next(self) -> None:
        self.fail_next(
            400,
            type="image_generation_user_error",
            code="moderation_blocked",
            message=MODERATION_MESSAGE,
            extra={"moderation_details": {"moderation_stage": "input", "categories": ["violence"]}},
        )

    def rate_limit_next(self, retry_after: float, *, times: int = 1) -> None:
        self.fail_next(
            429,
            type="requests",
            code="rate_limit_exceeded",
            message="Rate limit reached for images per min (IPM): Limit 5, Used 5, Requested 1.",
            headers={"retry-after": f"{retry_after:g}", "retry-after-ms": str(int(retry_after * 1000))},
            times=times,
        )

    def insufficient_quota_next(self) -> None:
        self.fail_next(
            429,
            type="insufficient_quota",
            code="insufficient_quota",
            message="You exceeded your current quota, please check your plan and billing details.",
        )

    def gateway_fail_next(self, kind: str, *, model: str = "gpt-image-2") -> None:
        """Answer the next request with this gateway's failure ``kind`` (see ``gateway_error``)."""
        status, body = gateway_error(self.gateway.name, kind, model)
        self._faults.append(Fault("error", status, body))

    def half_event_next(self, after_partials: int = 0) -> None:
        self._faults.append(Fault("half_event", after_partials=after_partials))

    def error_mid_stream_next(self, after_partials: int = 0) -> None:
        body = _error_body("The server had an error while processing your request.", "server_error", "server_error")
        self._faults.append(Fault("mid_stream_error", body=body, after_partials=after_partials))

    def drop_connection_next(self, after_partials: int = 0) -> None:
        self._faults.append(Fault("drop", after_partials=after_partials))

    def flood_next(self, kind: str = "sse_line") -> None:
        """The next answer never ends: ``sse_line`` streams one endless ``data:`` line, ``json`` an endless
        JSON body (until the client hangs up or the fake stops)."""
        self._faults.append(Fault(f"flood_{kind}"))

    def hang_next(self, after_partials: int = 0) -> None:
        self._faults.append(Fault("hang", after_partials=after_partials))

    def replace_final_next(self, data: bytes) -> None:
        """The next request's final image is ``data`` instead (e.g. a hostile SVG), the answer otherwise normal."""
        self._faults.append(Fault("replace", replacement=data))

    def truncate_final_next(self, keep_bytes: int = 3900) -> None:
        """The next request's final image is cut to ``keep_bytes`` bytes (its partial frames are whole)."""
        self._faults.append(Fault("truncate", keep_bytes=keep_bytes))

    def event_delay(self, first: bool, event: int = 0) -> float:
        """Seconds before an image's ``event``-th stream event (0: its first)."""
        if self.event_delays:
            return self.event_delays[min(event, len(self.event_delays) - 1)]
        delay = self.delay_first_event if first else self.delay_between_events
        if delay and self.jitter:
            delay *= random.uniform(1 - self.jitter, 1 + self.jitter)
        return max(0.0, delay)

    async def prewarm(self, size: str = "1024x1024", output_format: str = "png", partials: int = 2) -> None:
        """Draw the whole image pool for one kind of request now, so the first requests don't pay for it."""
        if self.image_pool <= 0:
            return
        width, height = (int(x) for x in size.split("x"))
        stages = [(p + 1) / (partials + 1) for p in range(partials)] + [1.0]
        await asyncio.gather(
            *(
                self._pooled(variant, width, height, output_format, False, stage, None)
                for variant in range(self.image_pool)
                for stage in stages
            )
        )

    def _pooled(
        self,
        variant: int,
        width: int,
        height: int,
        output_format: str,
        transparent: bool,
        stage: float,
        compression: int | None,
    ) -> asyncio.Future[tuple[bytes, str]]:
        key = (variant, width, height, output_format, transparent, round(stage, 6), compression)
        fut = self._pool.get(key)
        if fut is None:
            prompt = f"imagebot fake image {variant + 1} of {self.image_pool}"
            fut = asyncio.ensure_future(
                asyncio.to_thread(
                    _encoded,
                    prompt,
                    draw.seed_for(prompt, variant),
                    width,
                    height,
                    output_format,
                    transparent,
                    stage,
                    self.realistic,
                    None,
                    compression,
                )
            )
            self._pool[key] = fut
        return fut

    def _take_fault(self) -> Fault | None:
        if not self._faults:
            return None
        fault = self._faults[0]
        fault.times -= 1
        if fault.times <= 0:
            self._faults.popleft()
        return fault

    # ---- request handling --------------------------------------------------------------------
    async def _handle(self, request: web.Request) -> web.StreamResponse:
        try:
            return await self._handle_inner(request)
        except (asyncio.CancelledError, ConnectionError):
            raise
        except Exception:
            log.exception("fake images API crashed")
            self.validation_errors.append(f"{request.path}: the fake crashed (see the log)")
            body = _error_body("The server had an error while processing your request.", "server_error")
            return self._error(500, body, {"x-request-id": f"req_{uuid.uuid4().hex}"})

    async def _handle_inner(self, request: web.Request) -> web.StreamResponse:
        self._counter += 1
        number = self._counter
        request_id = f"req_{uuid.uuid4().hex}"
        headers = self.gateway.headers(request_id)
        self.request_ids.append(request_id)
        edit = request.path.endswith("/edits")
        try:
            rec = await self._record(request, edit)
        except _BadRequest as bad:
            return self._error(
                bad.status, _error_body(bad.message, "invalid_request_error", bad.code, bad.param), headers
            )

        if self.api_key is not None and request.headers.get("Authorization") != f"Bearer {self.api_key}":
            body = _error_body("Incorrect API key provided.", "invalid_request_error", "invalid_api_key")
            return self._error(401, body, headers)

        try:
            params, images, mask = self._validate(rec, edit)
        except _BadRequest as bad:
            problem = f"{request.path}: {bad.message} (param={bad.param})"
            self.validation_errors.append(problem)
            log.warning("fake images API rejected a request: %s", problem)
            body = _error_body(bad.message, "invalid_request_error", bad.code, bad.param)
            return self._error(bad.status, body, headers)

        stream = bool(params.get("stream"))
        now = asyncio.get_running_loop().time()
        cooling = self.gateway.cooling(now, str(params.get("model")))
        if cooling is not None:
            return self._error(*cooling, headers)
        fault = self._take_fault()
        if fault is not None and fault.kind == "error":
            self.gateway.failed(now, fault.status)
            return self._error(fault.status, fault.body, {**headers, **fault.headers})
        if stream and self.refuse_streaming:
            body = _error_body(VERIFY_STREAM_MESSAGE, "invalid_request_error", "unsupported_value", "stream")
            return self._error(403, body, headers)
        refusal = self.gateway.refuse(request.path, params, stream)
        if refusal is not None:
            status, body, billed = refusal
            self.billed += billed * int(params.get("n") or 1)
            if billed:
                self.gateway.failed(now, status)
            return self._error(status, body, headers)
        params = self.gateway.forward(request.path, params)
        self.forwarded.append(params)
        stream = bool(params.get("stream"))

        markup = next((f for f in rec.files if f.field == "markup"), None) if edit else None
        job = _Job(self, number, params, images, mask, edit, fault, markup=markup)
        if self.gateway.json_as_stream(stream):
            return await job.json_as_stream(request, headers)
        if stream:
            return await job.stream(request, headers)
        return await job.respond(request, headers)

    async def _models(self, request: web.Request) -> web.Response:
        """``GET /v1/models`` and ``/v1/models/{model}`` (the OpenAI ``Model`` objects)."""
        headers = {"x-request-id": f"req_{uuid.uuid4().hex}"}
        if self.models is None:
            return web.json_response({"error": "404 page not found"}, status=404)
        if self.api_key is not None and request.headers.get("Authorization") != f"Bearer {self.api_key}":
            body = _error_body("Incorrect API key provided.", "invalid_request_error", "invalid_api_key")
            return self._error(401, body, headers)

        def model(name: str) -> dict[str, Any]:
            if self.gateway.name == "litellm":  # no x-litellm headers on this route, but a "mode" per model
                return {
                    "id": name,
                    "object": "model",
                    "created": 1677610602,
                    "owned_by": "openai",
                    "mode": "image_generation",
                }
            return {"id": name, "object": "model", "created": 1700000000, "owned_by": "system"}

        wanted = request.match_info.get("model")
        if wanted is None:
            return web.json_response({"object": "list", "data": [model(m) for m in self.models]}, headers=headers)
        if wanted not in self.models:
            message = f"The model '{wanted}' does not exist or you do not have access to it."
            return self._error(404, _error_body(message, "invalid_request_error", "model_not_found"), headers)
        return web.json_response(model(wanted), headers=headers)

    async def _model_info(self, request: web.Request) -> web.Response:
        """LiteLLM's own ``GET /v1/model/info`` (its deployments); other gateways and OpenAI have no such route."""
        if self.gateway.name != "litellm" or self.models is None:
            return web.json_response({"error": "404 page not found"}, status=404)
        data = [{"model_name": m, "litellm_params": {"model": f"openai/{m}"}, "model_info": {}} for m in self.models]
        return web.json_response({"data": data})

    def _error(self, status: int, body: dict[str, Any], headers: dict[str, str]) -> web.Response:
        request_id = headers.get(self.gateway.request_id_header) or headers.get("x-request-id") or ""
        body = self.gateway.decorate(status, body, request_id)
        return web.json_response(body, status=status, headers=headers)

    async def _file(self, request: web.Request) -> web.StreamResponse:
        """An image link of a url-only answer (served without any key, as a CDN would)."""
        self.downloads.append(dict(request.headers))
        location = self._redirects.get(request.match_info["name"])
        if location is not None:
            raise web.HTTPFound(location)
        data = self._files.get(request.match_info["name"])
        if data is None:
            return web.Response(status=404, text="not found")
        ctype = "image/png" if data.startswith(b"\x89PNG") else "image/webp" if data[8:12] == b"WEBP" else "image/jpeg"
        return web.Response(body=data, content_type=ctype)

    def redirect_link(self, location: str) -> str:
        """A link on the fake's own origin that redirects (302) to ``location``."""
        name = f"{uuid.uuid4().hex}.img"
        self._redirects[name] = location
        return f"{self.base_url.rsplit('/v1', 1)[0]}/files/{name}"

    def link(self, data: bytes) -> str:
        """Keep ``data`` and return the image link that serves it (``link_to`` when set)."""
        if self.link_to is not None:
            return self.link_to
        name = f"{uuid.uuid4().hex}.img"
        self._files[name] = data
        return f"{self.base_url.rsplit('/v1', 1)[0]}/files/{name}"
