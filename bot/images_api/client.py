"""Async client of OpenAI's Images API (``/images/generations`` and ``/images/edits``).

Streams partial frames when asked, retries only where it is safe (before anything was yielded), reads and
parses the multi-megabyte event payloads off the bot's event loop, and never logs the API key."""

from __future__ import annotations

import asyncio
import binascii
import functools
import logging
import random
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp

from .errors import (
    ConnectionFailed,
    GatewayCannotStream,
    GatewayCooldown,
    ImagesAPIError,
    MalformedResponse,
    StreamError,
    StreamStalled,
    cannot_have_been_billed,
    error_from_response,
    error_from_stream_payload,
    redact,
    request_id_from,
)
from .gateway import LITELLM, detect_gateway
from .io_loop import ImagesLoop
from .limits import (
    ERROR_BODY_MAX,
    body_chunks,
    max_event_bytes,
    max_image_bytes,
    max_json_bytes,
    read_bounded,
    read_head,
)
from .links import LinkFetcher
from .models import ModelInfo, family_name, get_model
from .payloads import OFFLOAD_BYTES, _decode_response, _format_of, _read_event, common_fields, edit_form
from .sse import DataSeen, iter_sse
from .stream_gate import StreamGate, stream_failure
from .types import (
    CompletedImage,
    EditRequest,
    GenerateRequest,
    ImageEvent,
    PartialImage,
    Usage,
)

__all__ = ["ImagesClient"]

log = logging.getLogger(__name__)
Request = GenerateRequest | EditRequest

MAX_INPUT_IMAGES = 16
# Optional fields the bot adds itself: a 400 naming one drops it (once, remembered per endpoint).
OPTIONAL_FIELDS = ("input_fidelity", "output_compression", "moderation", "safety_identifier")
MAX_FIELD_DROPS = 2
# Images a gateway returns as a link (``url``): fetched within this time (bot/images_api/links.py), and no
# larger than the model's largest image can be (bot/images_api/limits.py).
DOWNLOAD_TIMEOUT = 60.0
# A LiteLLM cooldown names its wait (5 s by default); longer than this is not worth holding the user for.
MAX_COOLDOWN_WAIT = 60.0
COOLDOWN_MARGIN = 0.5


class ImagesClient:
    """One per bot: wraps the bot's long-lived ``aiohttp.ClientSession``."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        api_key: str,
        *,
        max_retries: int = 3,
        backoff_base: float = 1.0,
        backoff_max: float = 30.0,
        stall_timeout: float = 180.0,
        request_timeout: float = 600.0,
        connect_timeout: float = 30.0,
        on_decode: Callable[[], None] | None = None,
        io: ImagesLoop | None = None,
        guarded: bool = False,  # a server's own base URL: public addresses only, for the API calls too
    ) -> None:
        self._session = session
        self._decoded = on_decode or (lambda: None)  # once per final image decoded from base64 (metrics)
        self._io = io  # where requests and streams run (``session`` belongs to its loop); None: here
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self.max_retries = max(0, max_retries)
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.stall_timeout = stall_timeout
        self.request_timeout = request_timeout
        self.connect_timeout = connect_timeout
        self.download_max_bytes: int | None = None  # None: the model's largest image (limits.max_image_bytes)
        self.download_timeout = DOWNLOAD_TIMEOUT
        self._links = LinkFetcher(self.base_url, trust_origin=not guarded)
        self._guarded = guarded
        self.streams = StreamGate(self.base_url)  # whether to ask for streams, and what failures taught
        self._dropped: dict[str, set[str]] = {}  # endpoint path -> optional fields the service refused

    async def aclose(self) -> None:
        """Close the sessions that fetch image links (the API session is the caller's)."""
        await self._links.close()

    def _on_io(self, path: str, req: Request, pay: Callable[[bool], Any]) -> AsyncIterator[ImageEvent]:
        run = functools.partial(self._run, path, req, pay)
        return run() if self._io is None else self._io.stream(run)  # the stream read on the Images API's loop

    def __repr__(self) -> str:  # no key in reprs either
        return f"ImagesClient(base_url={self.base_url!r})"

    @property
    def streaming_refused(self) -> bool:
        """True once the service refused streaming (organization not verified, a gateway that cannot
        stream images): this base URL gets no stream requests until restart."""
        return self.streams.reason is not None

    async def detect_gateway(self) -> str | None:
        """Find which gateway serves the base URL, for free (``GET /models``); a LiteLLM proxy is never asked
        for a stream. Returns the gateway's name, or None when nothing tells."""
        check = self.streams.check(lambda: detect_gateway(self._session, self.base_url, self._api_key))
        return await (check if self._io is None else self._io.run(check))  # the session lives on that loop

    def dropped_fields(self, path: str) -> frozenset[str]:
        """Optional fields no longer sent to ``path`` (e.g. ``/images/edits``) because it refused them."""
        return frozenset(self._dropped.get(path, ()))

    # ---- public API --------------------------------------------------------------------------
    async def generate(self, req: GenerateRequest) -> AsyncIterator[ImageEvent]:
        """Yield ``PartialImage`` frames (when streaming) and one ``CompletedImage`` per image."""

        def payload(stream: bool) -> dict[str, Any]:
            body: dict[str, Any] = {"model": req.model, "prompt": req.prompt}
            common_fields(body, req, stream)
            if req.moderation is not None:
                body["moderation"] = req.moderation
            for name in self._dropped.get("/images/generations", ()):
                body.pop(name, None)
            return body

        async for event in self._on_io("/images/generations", req, payload):
            handed = [event]
            del event
            yield handed.pop()  # (see _read_stream: no local keeps the image alive while suspended)

    async def edit(self, req: EditRequest) -> AsyncIterator[ImageEvent]:
        """Like ``generate`` for ``/images/edits`` (multipart/form-data)."""
        if not req.images:
            raise ValueError("an edit needs at least one input image")
        if len(req.images) > MAX_INPUT_IMAGES:
            raise ValueError(f"at most {MAX_INPUT_IMAGES} input images are allowed")

        def payload(stream: bool) -> aiohttp.FormData:
            fields: dict[str, Any] = {"model": req.model, "prompt": req.prompt}
            common_fields(fields, req, stream)
            if req.input_fidelity is not None:
                family = family_name(req.model)
                if family is not None and not get_model(req.model).input_fidelity:
                    log.debug("input_fidelity omitted: %s does not take it", req.model)
                else:
                    fields["input_fidelity"] = req.input_fidelity
            for name in self._dropped.get("/images/edits", ()):
                fields.pop(name, None)
            return edit_form(fields, req.images, req.mask, req.markup)

        async for event in self._on_io("/images/edits", req, payload):
            handed = [event]
            del event
            yield handed.pop()

    # ---- the request loop --------------------------------------------------------------------
    async def _run(
        self,
        path: str,
        req: GenerateRequest | EditRequest,
        payload: Callable[[bool], Any],
    ) -> AsyncIterator[ImageEvent]:
        url = self.base_url + path
        model = get_model(req.model)
        stream = bool(req.stream and req.partial_images > 0 and self.streams.reason is None)
        if stream and not self.streams.checked:  # unanswered at startup: a stream may cost more than a look
            await self.detect_gateway()
            stream = self.streams.reason is None
        attempt = 0
        fell_back = False
        cooled = False
        drops = 0
        while True:
            try:
                resp = await self._post(url, payload(stream), stream)
            except ImagesAPIError as err:
                field = err.names_field(f for f in OPTIONAL_FIELDS if f not in self._dropped.get(path, ()))
                if field is not None and drops < MAX_FIELD_DROPS:
                    drops += 1
                    self._dropped.setdefault(path, set()).add(field)
                    log.warning(
                        "%s refused the optional field %r (request_id=%s): retrying without it and not "
                        "sending it again; the service said: %s",
                        path,
                        field,
                        err.request_id,
                        err.message,
                    )
                    continue
                if stream and not fell_back:
                    refused = err.cannot_stream if err.status == 400 or err.refuses_streaming else None
                    if refused is not None:  # refused before generating anything: trying again costs nothing
                        self.streams.refused(refused, err.request_id)
                        stream, fell_back = False, True
                        continue
                    billed = stream_failure(err)
                    if billed is not None:
                        if not await self.streams.discover(billed, err):
                            raise GatewayCannotStream(
                                f"{billed}; not retried, it may have been billed already",
                                status=err.status,
                                request_id=err.request_id,
                                from_gateway=True,
                            ) from None
                        stream, fell_back = False, True
                        continue
                if isinstance(err, GatewayCooldown) and not cooled:
                    cooled = True
                    wait = min(err.retry_after if err.retry_after is not None else 5.0, MAX_COOLDOWN_WAIT)
                    log.info("gateway cooldown (request_id=%s): one retry in %.1fs", err.request_id, wait)
                    await asyncio.sleep(wait + COOLDOWN_MARGIN)
                    continue
                delay = self._retry_delay(err, attempt)
                if delay is None:
                    raise
                attempt += 1
                self._log_retry(err, attempt, delay)
                await asyncio.sleep(delay)
                continue

            request_id = request_id_from(resp.headers)
            yielded = False
            try:
                ctype = resp.headers.get("Content-Type", "")
                if "text/event-stream" in ctype:
                    async for event in self._read_stream(resp, request_id, req.n, model):
                        yielded = True
                        handed = [event]
                        del event
                        yield handed.pop()
                else:
                    async for event in self._read_json(resp, request_id, req.n, model):
                        yielded = True
                        handed = [event]
                        del event
                        yield handed.pop()
                return
            except StreamError as err:
                # Broken before its first event: nothing was generated yet, so trying again is safe. A stall
                # is not a break: the service may still be working on (and billing) the image.
                stalled = isinstance(err, StreamStalled)
                if yielded or stalled or not err.before_first_event or attempt >= self.max_retries:
                    raise
                attempt += 1
                delay = self._backoff(attempt - 1)
                self._log_retry(err, attempt, delay)
                await asyncio.sleep(delay)
            finally:
                resp.release()

    def _log_retry(self, err: ImagesAPIError, attempt: int, delay: float) -> None:
        log.info(
            "Images API %s (request_id=%s); retry %d/%d in %.2fs",
            type(err).__name__,
            err.request_id,
            attempt,
            self.max_retries,
            delay,
        )

    def _backoff(self, attempt: int) -> float:
        return min(self.backoff_max, self.backoff_base * (2**attempt)) * random.uniform(0.5, 1.0)

    def _retry_delay(self, err: ImagesAPIError, attempt: int) -> float | None:
        """Seconds to wait before retrying ``err``, or None when it must not be retried.

        Only what cannot have been billed: a connection that was never made, a 429 rate limit, and
        502/503/504 from OpenAI itself. A gateway's 5xx may come after its upstream answered (and billed),
        so it is never retried; nor is anything the service marked ``x-should-retry: false``."""
        if attempt >= self.max_retries or not cannot_have_been_billed(err):
            return None
        if (err.litellm or self.streams.gateway == LITELLM) and not isinstance(err, ConnectionFailed):
            return None  # the proxy retried its upstream already; more would multiply its retries
        if err.retry_after is not None:
            if err.retry_after > self.request_timeout:
                return None  # not worth holding the user for
            return err.retry_after
        return self._backoff(attempt)

    async def _post(self, url: str, data: Any, stream: bool) -> aiohttp.ClientResponse:
        headers = {
            "Authorization": f"Bearer {self._api_key}",
            "Accept": "text/event-stream" if stream else "application/json",
            "User-Agent": "imagebot/0.1",
        }
        timeout = aiohttp.ClientTimeout(total=self.request_timeout, sock_connect=self.connect_timeout)
        kwargs: dict[str, Any] = {"headers": headers, "timeout": timeout}
        if isinstance(data, aiohttp.FormData):
            kwargs["data"] = data
        else:
            kwargs["json"] = data
        try:
            session = self._links.guarded_session() if self._guarded else self._session  # made on the I/O loop
            resp = await session.post(url, **kwargs)
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            msg = f"cannot reach the Images API at {self.base_url}: {type(exc).__name__}: {exc}"
            failed = ConnectionFailed(redact(msg, [self._api_key]))
            failed.nothing_sent = isinstance(exc, aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError)
            raise failed from None
        request_id = request_id_from(resp.headers)
        log.debug("POST %s -> %d (x-request-id=%s, stream=%s)", url, resp.status, request_id, stream)
        if resp.status < 400:
            return resp
        body = await read_head(resp, ERROR_BODY_MAX)  # an error object, never a gateway's endless page
        err = error_from_response(resp.status, body, resp.headers, secrets=[self._api_key])
        log.debug("Images API error: %s", err)
        raise err

    async def _download(self, item: dict[str, Any], request_id: str | None, model: ModelInfo | None = None) -> bytes:
        """The image behind an item's ``url`` (see ``bot/images_api/links.py``)."""
        limit = self.download_max_bytes or max_image_bytes(model or get_model(""))
        return await self._links.fetch(
            item.get("url"),
            request_id=request_id,
            max_bytes=limit,
            timeout=self.download_timeout,
            connect_timeout=self.connect_timeout,
        )

    # ---- responses ---------------------------------------------------------------------------
    async def _read_stream(
        self, resp: aiohttp.ClientResponse, request_id: str | None, n: int, model: ModelInfo
    ) -> AsyncIterator[ImageEvent]:
        # A generator suspended at ``yield`` keeps its locals alive until it is resumed, which for a stream
        # is when the *next* event arrives, seconds later: each event's megabytes (the SSE text, the decoded
        # image) are handed over in ``out`` and no local keeps a reference across the yield.
        completed = 0
        out: list[ImageEvent] = []
        seen = DataSeen()
        chunks = seen.watch(body_chunks(resp, request_id, self.stall_timeout, self.request_timeout))
        async for msg in iter_sse(chunks, max_event_bytes(model)):
            if msg.is_done:
                break
            name, size, text = msg.event, msg.size, msg.take()  # an image's line: still in pieces
            del msg
            try:
                # in a thread, unless on the Images API's own loop: one at a time keeps fewer megabytes alive
                if size > OFFLOAD_BYTES and self._io is None:
                    obj, raw = await asyncio.to_thread(_read_event, text, name)
                else:
                    obj, raw = _read_event(text, name)
            except (ValueError, binascii.Error) as exc:
                raise MalformedResponse(f"undecodable stream event: {exc}", request_id=request_id) from None
            text = b""
            if name == "error" or "error" in obj:
                raise error_from_stream_payload(obj, request_id=request_id, secrets=[self._api_key])
            kind = str(obj.get("type") or name or "")
            if kind.endswith(".partial_image"):
                if raw is None:
                    continue
                out.append(
                    PartialImage(
                        index=int(obj.get("partial_image_index") or 0),
                        b64=raw,
                        output_format=str(obj.get("output_format") or "png"),
                        size=obj.get("size"),
                    )
                )
                raw = None
                yield out.pop()
            elif kind.endswith(".completed"):
                if raw is None:  # a gateway's link instead of base64 (new-api's JSON-as-stream)
                    raw = await self._download(obj, request_id, model)
                else:
                    self._decoded()
                completed += 1
                out.append(
                    CompletedImage(
                        data=raw if isinstance(raw, bytes) else bytes(raw),  # decoded: bytes already
                        output_format=str(obj.get("output_format") or _format_of(bytes(raw[:16]))),
                        size=obj.get("size"),
                        quality=obj.get("quality"),
                        background=obj.get("background"),
                        usage=Usage.from_dict(obj.get("usage")),
                        request_id=request_id,
                        revised_prompt=obj.get("revised_prompt"),
                        svg_usage=Usage.from_dict(obj.get("svg_usage")),
                    )
                )
                raw = None
                yield out.pop()
            else:
                log.debug("ignoring stream event %r (x-request-id=%s)", kind, request_id)
        if completed == 0:
            err = StreamError("the stream ended without a completed image", request_id=request_id)
            err.before_first_event = not seen.any
            raise err
        if completed < n:
            log.warning("stream delivered %d of %d images (x-request-id=%s)", completed, n, request_id)

    async def _read_json(
        self, resp: aiohttp.ClientResponse, request_id: str | None, n: int, model: ModelInfo
    ) -> AsyncIterator[ImageEvent]:
        chunks = body_chunks(resp, request_id, self.stall_timeout, self.request_timeout)
        body = await read_bounded(chunks, max_json_bytes(model, n), resp.content_length, request_id)
        try:
            obj, items = await asyncio.to_thread(_decode_response, body)
        except (ValueError, binascii.Error) as exc:
            raise MalformedResponse(
                f"undecodable Images API response: {exc}", status=resp.status, request_id=request_id
            ) from None
        if "error" in obj and not items:
            raise error_from_stream_payload(obj, request_id=request_id, secrets=[self._api_key])
        usage = Usage.from_dict(obj.get("usage"))
        fmt = str(obj.get("output_format") or "png")
        count = 0
        for item, raw in items:
            if raw is None and isinstance(item.get("url"), str):
                raw = await self._download(item, request_id, model)  # a gateway channel that returns links
            elif raw is not None:
                self._decoded()
            if raw is None:
                continue
            count += 1
            yield CompletedImage(
                data=raw,
                output_format=fmt if obj.get("output_format") else _format_of(raw),
                size=obj.get("size"),
                quality=obj.get("quality"),
                background=obj.get("background"),
                usage=usage,
                request_id=request_id,
                revised_prompt=item.get("revised_prompt"),
                svg_usage=Usage.from_dict(obj.get("svg_usage")),
            )
        if count == 0:
            raise ImagesAPIError("the Images API returned no image", status=resp.status, request_id=request_id)
