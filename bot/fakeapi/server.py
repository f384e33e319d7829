"""A fake OpenAI Images API on aiohttp: for the tests, and as a demo backend without an OpenAI key.

It speaks the real wire format (JSON / multipart requests, ``ImagesResponse`` JSON, SSE streams),
validates requests against the OpenAPI schema subset in ``openai_schema.json`` plus the documented rules,
records everything, and can be told to misbehave on the next request (``fail_next`` and friends).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import math
import random
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import BodyPartReader, web

from bot.images.models import MODELS, get_model, input_image_tokens

from . import draw
from .gateways import Gateway, gateway_error

__all__ = ["FakeImagesAPI", "Fault", "RecordedFile", "RecordedRequest", "SentEvent"]

log = logging.getLogger(__name__)

SCHEMA_PATH = Path(__file__).with_name("openai_schema.json")
IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/webp"})
INT_FIELDS = frozenset({"n", "partial_images", "output_compression"})
BOOL_FIELDS = frozenset({"stream"})
# Accepted although not in the (older) spec subset.
EXTRA_FIELDS = frozenset({"safety_identifier"})
MAX_BODY = 16 * 50 * 1024 * 1024 + 10 * 1024 * 1024

VERIFY_STREAM_MESSAGE = (
    "Your organization must be verified to stream this model. Please go to: "
    "https://platform.openai.com/settings/organization/general and click on Verify Organization."
)
MODERATION_MESSAGE = (
    "Your request was rejected by the safety system. If you believe this is an error, contact us at "
    "help.openai.com and include the request ID."
)


@dataclass(slots=True)
class RecordedFile:
    field: str
    filename: str | None
    content_type: str | None
    data: bytes


@dataclass(slots=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    json: dict[str, Any] | None = None
    form: dict[str, str] = field(default_factory=dict)
    files: list[RecordedFile] = field(default_factory=list)


@dataclass(slots=True)
class SentEvent:
    request: int  # 1-based request number
    prompt: str
    type: str  # e.g. image_generation.partial_image, "response" for non-streaming, "error"
    partial_index: int | None
    time: float  # time.monotonic() when written
    started: float = 0.0  # time.monotonic() when the write began (before the client could read it)


@dataclass(slots=True)
class Fault:
    """What to do to the next request(s).

    kind: ``error`` (answer ``status`` + ``body``), ``mid_stream_error`` (send ``event: error`` after
    ``after_partials`` partial frames), ``drop`` (close the socket abruptly there), ``hang`` (stall there),
    ``truncate`` (send the final image(s) cut to their first ``keep_bytes`` bytes, the answer otherwise normal).
    ``half_event`` (send half of the next event's JSON, then end the stream).
    """

    kind: str
    status: int = 500
    body: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    after_partials: int = 0
    times: int = 1
    keep_bytes: int = 0


class _BadRequest(Exception):
    def __init__(self, message: str, param: str | None = None, code: str | None = None, status: int = 400) -> None:
        super().__init__(message)
        self.message, self.param, self.code, self.status = message, param, code, status


def _load_validators() -> dict[str, Any] | None:
    try:
        import jsonschema  # optional: the demo install may not have it
    except ImportError:
        return None
    doc = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    validators = {}
    for name in ("CreateImageRequest", "CreateImageEditRequest"):
        schema = {**doc, "$ref": f"#/components/schemas/{name}"}
        validators[name] = jsonschema.Draft202012Validator(schema)
    validators["_properties"] = {
        name: set(doc["components"]["schemas"][name]["properties"])
        for name in ("CreateImageRequest", "CreateImageEditRequest")
    }
    return validators


def _error_body(message: str, type_: str, code: str | None = None, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


class FakeImagesAPI:
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
        self.api_key = api_key
        self.realistic = realistic
        self.done_marker = done_marker
        self.delay_first_event = 0.0
        self.delay_between_events = 0.0
        # Each delay is drawn uniformly from delay * [1 - jitter, 1 + jitter] (0: exact, as the tests want).
        self.jitter = 0.0
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

    def hang_next(self, after_partials: int = 0) -> None:
        self._faults.append(Fault("hang", after_partials=after_partials))

    def truncate_final_next(self, keep_bytes: int = 3900) -> None:
        """The next request's final image is cut to ``keep_bytes`` bytes (its partial frames are whole)."""
        self._faults.append(Fault("truncate", keep_bytes=keep_bytes))

    def event_delay(self, first: bool) -> float:
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
        headers = {self.gateway.request_id_header: request_id}
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
        fault = self._take_fault()
        if fault is not None and fault.kind == "error":
            return self._error(fault.status, fault.body, {**headers, **fault.headers})
        if stream and self.refuse_streaming:
            body = _error_body(VERIFY_STREAM_MESSAGE, "invalid_request_error", "unsupported_value", "stream")
            return self._error(403, body, headers)
        refusal = self.gateway.refuse(request.path, params, stream)
        if refusal is not None:
            status, body, billed = refusal
            if billed:
                self.billed += int(params.get("n") or 1)
            return self._error(status, body, headers)
        params = self.gateway.forward(request.path, params)
        self.forwarded.append(params)
        stream = bool(params.get("stream"))

        job = _Job(self, number, params, images, mask, edit, fault)
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
            return {"id": name, "object": "model", "created": 1700000000, "owned_by": "system"}

        wanted = request.match_info.get("model")
        if wanted is None:
            return web.json_response({"object": "list", "data": [model(m) for m in self.models]}, headers=headers)
        if wanted not in self.models:
            message = f"The model '{wanted}' does not exist or you do not have access to it."
            return self._error(404, _error_body(message, "invalid_request_error", "model_not_found"), headers)
        return web.json_response(model(wanted), headers=headers)

    def _error(self, status: int, body: dict[str, Any], headers: dict[str, str]) -> web.Response:
        request_id = headers.get(self.gateway.request_id_header) or headers.get("x-request-id") or ""
        body = self.gateway.decorate(status, body, request_id)
        return web.json_response(body, status=status, headers=headers)

    async def _file(self, request: web.Request) -> web.StreamResponse:
        """An image link of a url-only answer (served without any key, as a CDN would)."""
        self.downloads.append(dict(request.headers))
        data = self._files.get(request.match_info["name"])
        if data is None:
            return web.Response(status=404, text="not found")
        ctype = "image/png" if data.startswith(b"\x89PNG") else "image/webp" if data[8:12] == b"WEBP" else "image/jpeg"
        return web.Response(body=data, content_type=ctype)

    def link(self, data: bytes) -> str:
        """Keep ``data`` and return the image link that serves it."""
        name = f"{uuid.uuid4().hex}.img"
        self._files[name] = data
        return f"{self.base_url.rsplit('/v1', 1)[0]}/files/{name}"

    async def _record(self, request: web.Request, edit: bool) -> RecordedRequest:
        rec = RecordedRequest(request.method, request.path, dict(request.headers))
        self.requests.append(rec)
        if not edit:
            raw = await request.read()
            try:
                body = json.loads(raw)
            except ValueError:
                raise _BadRequest("We could not parse the JSON body of your request.") from None
            if not isinstance(body, dict):
                raise _BadRequest("The request body must be a JSON object.")
            rec.json = body
            return rec
        if not request.content_type.startswith("multipart/"):
            raise _BadRequest("Invalid Content-Type header, expected multipart/form-data.")
        reader = await request.multipart()
        while True:
            part = await reader.next()
            if part is None:
                break
            if not isinstance(part, BodyPartReader):  # nested multipart: not used by OpenAI
                continue
            if part.filename is not None:
                data = await part.read(decode=False)
                ctype = part.headers.get("Content-Type")
                rec.files.append(RecordedFile(part.name or "", part.filename, ctype, bytes(data)))
            else:
                rec.form[part.name or ""] = await part.text()
        return rec

    # ---- validation --------------------------------------------------------------------------
    def _validate(self, rec: RecordedRequest, edit: bool) -> tuple[dict[str, Any], list[RecordedFile], Any]:
        schema_name = "CreateImageEditRequest" if edit else "CreateImageRequest"
        images: list[RecordedFile] = []
        mask: RecordedFile | None = None
        if edit:
            params: dict[str, Any] = {}
            for key, value in rec.form.items():
                params[key] = _convert_form_value(key, value)
            for f in rec.files:
                if f.field in ("image", "image[]") or (f.field.startswith("image[") and f.field.endswith("]")):
                    images.append(f)
                elif f.field == "mask":
                    mask = f
                else:
                    raise _BadRequest(f"Unknown parameter: '{f.field}'.", f.field, "unknown_parameter")
            if images:
                single = len(images) == 1 and images[0].field == "image"
                params["image"] = "<binary>" if single else ["<binary>"] * len(images)
            if mask is not None:
                params["mask"] = "<binary>"
        else:
            params = dict(rec.json or {})

        if self._validators is not None:
            known = self._validators["_properties"][schema_name] | EXTRA_FIELDS
            for key in params:
                if key not in known:
                    raise _BadRequest(f"Unknown parameter: '{key}'.", key, "unknown_parameter")
            errors = sorted(self._validators[schema_name].iter_errors(params), key=lambda e: list(e.path))
            if errors:
                err = errors[0]
                param = ".".join(str(p) for p in err.path) or None
                if param is None and err.validator == "required":
                    param = str(err.message).split("'")[1] if "'" in err.message else None
                raise _BadRequest(f"Invalid value: {err.message}", param, "invalid_value")
        elif "prompt" not in params:
            raise _BadRequest("Missing required parameter: 'prompt'.", "prompt", "missing_required_parameter")

        self._check_rules(params, images, mask, edit)
        return params, images, mask

    def _check_rules(
        self, params: dict[str, Any], images: list[RecordedFile], mask: RecordedFile | None, edit: bool
    ) -> None:
        model_name = params.get("model")
        if not model_name:
            raise _BadRequest("Missing 'model': the default would be dall-e-2.", "model", "missing_required_parameter")
        model = get_model(str(model_name))
        n = params.get("n") or 1
        if not isinstance(n, int) or not 1 <= n <= 10:
            raise _BadRequest("n must be between 1 and 10.", "n", "integer_out_of_range")
        partials = params.get("partial_images") or 0
        if not isinstance(partials, int) or not 0 <= partials <= 3:
            raise _BadRequest("partial_images must be between 0 and 3.", "partial_images", "integer_out_of_range")
        prompt = params.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip() or len(prompt) > 32000:
            raise _BadRequest("prompt must be 1 to 32000 characters.", "prompt", "invalid_value")
        fmt = params.get("output_format") or "png"
        if params.get("background") == "transparent":
            if fmt not in ("png", "webp"):
                raise _BadRequest("Transparent background requires png or webp output.", "background", "invalid_value")
            if not model.supports_transparent and model.known:
                raise _BadRequest(f"{model.name} does not support transparency.", "background", "invalid_value")
        quality = params.get("quality")
        if quality is not None and quality not in model.qualities:
            raise _BadRequest(f"Invalid quality {quality!r} for {model_name}.", "quality", "invalid_value")
        size = params.get("size")
        if size is not None:
            try:
                model.resolve_size(str(size), allow_experimental=True)
            except ValueError as exc:
                raise _BadRequest(f"Invalid size: {exc}", "size", "invalid_value") from None
        if not edit:
            return
        if params.get("input_fidelity") is not None and not model.input_fidelity and model.known:
            raise _BadRequest(f"input_fidelity is not supported for {model.name}.", "input_fidelity", "invalid_value")
        if not images:
            raise _BadRequest("Missing required parameter: 'image'.", "image", "missing_required_parameter")
        if len(images) > 16:
            raise _BadRequest("At most 16 images are allowed.", "image", "invalid_value")
        first_size: tuple[int, int] | None = None
        for i, img in enumerate(images):
            ctype = (img.content_type or "").split(";")[0].strip().lower()
            if ctype not in IMAGE_TYPES:
                raise _BadRequest(
                    f"Invalid file 'image[{i}]': unsupported mimetype ('{ctype}'). Supported file formats are "
                    "'image/jpeg', 'image/png', and 'image/webp'.",
                    f"image[{i}]",
                    "unsupported_file_mimetype",
                )
            try:
                dims = draw.image_size(img.data)
            except Exception:
                raise _BadRequest(f"Invalid image file 'image[{i}]'.", f"image[{i}]", "invalid_image_file") from None
            if first_size is None:
                first_size = dims
        if mask is not None:
            ctype = (mask.content_type or "").split(";")[0].strip().lower()
            if ctype != "image/png" or not mask.data.startswith(b"\x89PNG"):
                raise _BadRequest("The mask must be a PNG file.", "mask", "invalid_image_format")
            if draw.image_size(mask.data) != first_size:
                raise _BadRequest("The mask must have the same dimensions as the image.", "mask", "invalid_value")


def _convert_form_value(key: str, value: str) -> Any:
    if key in INT_FIELDS:
        try:
            return int(value)
        except ValueError:
            return value  # the schema check reports it
    if key in BOOL_FIELDS:
        low = value.strip().lower()
        if low in ("true", "1"):
            return True
        if low in ("false", "0"):
            return False
    return value


class _Job:
    """One accepted request: renders the images and writes the answer."""

    def __init__(
        self,
        api: FakeImagesAPI,
        number: int,
        params: dict[str, Any],
        images: list[RecordedFile],
        mask: RecordedFile | None,
        edit: bool,
        fault: Fault | None,
    ) -> None:
        self.api = api
        self.number = number
        self.params = params
        self.edit = edit
        self.fault = fault
        self.prompt = str(params["prompt"])
        self.model = get_model(str(params["model"]))
        self.n = int(params.get("n") or 1)
        self.partials = int(params.get("partial_images") or 0)
        self.output_format = str(params.get("output_format") or "png")
        self.transparent = params.get("background") == "transparent"
        self.base = images[0].data if images else None
        self.input_images = images
        self.quality = str(params.get("quality") or "auto")
        if self.quality == "auto":
            self.quality = "medium"
        size = str(params.get("size") or "auto")
        if size == "auto" and self.base is not None:
            w, h = draw.image_size(self.base)
        elif size == "auto":
            w, h = 1024, 1024
        else:
            w, h = (int(x) for x in self.model.resolve_size(size, allow_experimental=True).split("x"))
        self.width, self.height = w, h
        self.prefix = "image_edit" if edit else "image_generation"

    @property
    def size(self) -> str:
        return f"{self.width}x{self.height}"

    def usage(self, images: int) -> dict[str, Any]:
        text = max(1, math.ceil(len(self.prompt) / 4))
        image_in = 0
        for f in self.input_images:
            w, h = draw.image_size(f.data)
            image_in += input_image_tokens(w, h, high_fidelity=self.params.get("input_fidelity") == "high")
        out = images * self.model.estimate_output_tokens(self.size, self.quality)
        return {
            "input_tokens": text + image_in,
            "output_tokens": out,
            "total_tokens": text + image_in + out,
            "input_tokens_details": {"text_tokens": text, "image_tokens": image_in},
        }

    async def render(self, index: int, stage: float) -> tuple[bytes, str]:
        """(image bytes, base64) of image ``index`` at ``stage`` (1 = final), off the event loop."""
        raw, b64 = await self._render(index, stage)
        if stage >= 1.0 and self.fault is not None and self.fault.kind == "truncate":
            raw = raw[: self.fault.keep_bytes]
            b64 = base64.b64encode(raw).decode("ascii")
        return raw, b64

    async def _render(self, index: int, stage: float) -> tuple[bytes, str]:
        compression = self.params.get("output_compression")
        if self.api.image_pool > 0 and self.base is None:
            variant = (self.number * 7 + index) % self.api.image_pool
            return await asyncio.shield(
                self.api._pooled(
                    variant, self.width, self.height, self.output_format, self.transparent, stage, compression
                )
            )
        return await asyncio.to_thread(
            _encoded,
            self.prompt,
            draw.seed_for(self.prompt, self.number * 100 + index),
            self.width,
            self.height,
            self.output_format,
            self.transparent,
            stage,
            self.api.realistic,
            self.base,
            compression,
        )

    def _common(self) -> dict[str, Any]:
        return {
            "created_at": int(time.time()),
            "size": self.size,
            "quality": self.quality,
            "background": "transparent" if self.transparent else "opaque",
            "output_format": self.output_format,
        }

    def _log(self, type_: str, partial_index: int | None, started: float | None = None) -> None:
        now = time.monotonic()
        self.api.events.append(
            SentEvent(self.number, self.prompt, type_, partial_index, now, now if started is None else started)
        )

    async def respond(self, request: web.Request, headers: dict[str, str]) -> web.StreamResponse:
        fault = self.fault
        if fault is not None and fault.kind == "hang":
            await self._hang()
        if fault is not None and fault.kind == "drop":
            _abort(request)
            return web.Response(status=500)
        if fault is not None and fault.kind == "mid_stream_error":
            return web.json_response(fault.body, status=500, headers=headers)
        delay = self.api.delay_first_event if self.api.delay_response is None else self.api.delay_response
        if delay:
            await asyncio.sleep(delay)
        data = []
        for i in range(self.n):
            raw, b64 = await self.render(i, 1.0)
            self.api.results.append(raw)
            self.api.billed += 1
            data.append({"url": self.api.link(raw)} if self.api.gateway.url_items else {"b64_json": b64})
        common = self._common()
        body: dict[str, Any] = {
            "created": common.pop("created_at"),
            "data": data[0] if self.api.gateway.data_as_object and len(data) == 1 else data,
            **common,
            "usage": self.usage(self.n),
        }
        if not self.api.gateway.is_openai:  # a gateway channel's answer: no resolved settings
            for key in ("size", "quality", "output_format", "background"):
                body.pop(key, None)
        text = await asyncio.to_thread(json.dumps, body)
        self._log("response", None)  # just before aiohttp writes it: comparable with a stream's ``started``
        return web.Response(text=text, content_type="application/json", headers=headers)

    async def stream(self, request: web.Request, headers: dict[str, str]) -> web.StreamResponse:
        api = self.api
        api.open_streams += 1
        api.max_open_streams = max(api.max_open_streams, api.open_streams)
        try:
            return await self._stream(request, headers)
        except (ConnectionError, asyncio.CancelledError):
            api.closed_by_client += 1  # the client hung up mid-stream (e.g. a cancelled job)
            raise
        finally:
            api.open_streams -= 1

    async def _stream(self, request: web.Request, headers: dict[str, str]) -> web.StreamResponse:
        resp = web.StreamResponse(
            status=200, headers={**headers, "Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await resp.prepare(request)
        first = True
        sent_partials = 0
        fault = self.fault
        for i in range(self.n):
            for p in range(self.partials + 1):
                final = p == self.partials
                if fault is not None and sent_partials == fault.after_partials:
                    if fault.kind == "mid_stream_error":
                        await resp.write(
                            f"event: error\ndata: {json.dumps({'type': 'error', **fault.body})}\n\n".encode()
                        )
                        self._log("error", None)
                        await resp.write_eof()
                        return resp
                    if fault.kind == "drop":
                        _abort(request)
                        return resp
                    if fault.kind == "hang":
                        await self._hang()
                        return resp
                    if fault.kind == "half_event":
                        _, b64 = await self.render(i, 1.0)
                        kind = f"{self.prefix}.partial_image"
                        head = f'event: {kind}\ndata: {{"type": "{kind}", "b64_json": "'.encode()
                        await resp.write(head + b64[: len(b64) // 2].encode("ascii") + b"\n\n")
                        self._log("half_event", None)
                        await resp.write_eof()
                        return resp
                delay = self.api.event_delay(first)
                if delay:
                    await asyncio.sleep(delay)
                first = False
                raw, b64 = await self.render(i, 1.0 if final else (p + 1) / (self.partials + 1))
                kind = f"{self.prefix}.{'completed' if final else 'partial_image'}"
                rest: dict[str, Any] = self._common()
                if final:
                    rest["usage"] = self.usage(1)
                    self.api.results.append(raw)
                    self.api.billed += 1
                else:
                    rest["partial_image_index"] = p
                    sent_partials += 1
                # The JSON of {"type", "b64_json", ...rest} written in three pieces: base64 needs no
                # escaping, and serialising megabytes per event would make the fake, not the client, slow.
                head = f'event: {kind}\ndata: {{"type": {json.dumps(kind)}, "b64_json": "'.encode()
                tail = f'", {json.dumps(rest)[1:]}\n\n'.encode()
                started = time.monotonic()
                if self.api.gateway.pings:
                    await resp.write(b": PING\n\n")
                await resp.write(head)
                await resp.write(b64.encode("ascii"))
                await resp.write(tail)
                self._log(kind, None if final else p, started)
        if self.api.done_marker or self.api.gateway.pings:
            await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp

    async def json_as_stream(self, request: web.Request, headers: dict[str, str]) -> web.StreamResponse:
        """new-api with a channel that answers JSON: each ``data[]`` item becomes a ``completed`` event
        with ``url`` or ``b64_json``, ``revised_prompt`` and ``usage``, but no size/quality/format."""
        resp = web.StreamResponse(status=200, headers={**headers, "Content-Type": "text/event-stream"})
        await resp.prepare(request)
        if self.api.delay_first_event:
            await asyncio.sleep(self.api.delay_first_event)
        kind = f"{self.prefix}.completed"
        for i in range(self.n):
            raw, b64 = await self.render(i, 1.0)
            self.api.results.append(raw)
            self.api.billed += 1
            item: dict[str, Any] = {"type": kind, "revised_prompt": self.prompt, "usage": self.usage(1)}
            item.update({"url": self.api.link(raw)} if self.api.gateway.url_items else {"b64_json": b64})
            await resp.write(b": PING\n\n" + f"event: {kind}\ndata: {json.dumps(item)}\n\n".encode())
            self._log(kind, None)
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp

    async def _hang(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.api._stopping.wait(), self.api.hang_seconds)


def _encoded(
    prompt: str,
    seed: int,
    width: int,
    height: int,
    output_format: str,
    transparent: bool,
    stage: float,
    realistic: bool,
    base: bytes | None,
    compression: int | None,
) -> tuple[bytes, str]:
    """(image bytes, their base64): blocking, run it in a thread."""
    data = draw.render(
        prompt,
        seed,
        width,
        height,
        output_format,
        transparent=transparent,
        stage=stage,
        realistic=realistic,
        base=base,
        compression=compression,
    )
    return data, base64.b64encode(data).decode("ascii")


def _abort(request: web.Request) -> None:
    transport = request.transport
    if transport is not None:
        transport.abort()
