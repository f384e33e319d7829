"""Async client of OpenAI's Images API (``/images/generations`` and ``/images/edits``).

Streams partial frames when asked, retries only where it is safe (before anything was yielded), parses
the multi-megabyte event payloads off the event loop, and never logs the API key.
"""

from __future__ import annotations

import asyncio
import binascii
import json
import logging
import os
import random
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp

from .b64 import b64decode, count
from .errors import (
    ConnectionFailed,
    ImagesAPIError,
    InsufficientQuota,
    RateLimited,
    ServerError,
    StreamError,
    StreamStalled,
    error_from_response,
    error_from_stream_payload,
    redact,
)
from .models import family_name, get_model
from .sse import iter_sse
from .types import (
    CompletedImage,
    EditRequest,
    GenerateRequest,
    ImageEvent,
    InputImage,
    PartialImage,
    Usage,
)

__all__ = ["ImagesClient"]

log = logging.getLogger(__name__)

# Event payloads larger than this are parsed (json + base64) in a worker thread.
OFFLOAD_BYTES = 32 * 1024
RETRY_STATUSES = frozenset({500, 502, 503, 504})
MAX_INPUT_IMAGES = 16

_EXT_FOR_TYPE = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}


def _sniff_content_type(data: bytes) -> str | None:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def _file_part(img: InputImage, fallback_stem: str) -> tuple[str, str]:
    """(filename, content type): a real image type and a matching extension (gateways use it)."""
    ctype = (img.content_type or "").split(";")[0].strip().lower()
    if ctype == "image/jpg":
        ctype = "image/jpeg"
    if ctype not in _EXT_FOR_TYPE:
        ctype = _sniff_content_type(img.data) or "image/png"
    ext = _EXT_FOR_TYPE[ctype]
    name = os.path.basename(img.filename or "") or fallback_stem
    stem, dot, old_ext = name.rpartition(".")
    if not dot or old_ext.lower() not in ("png", "jpg", "jpeg", "webp"):
        stem = name
    elif (old_ext.lower() == "jpeg" and ext == "jpg") or old_ext.lower() == ext:
        return name, ctype
    return f"{stem or fallback_stem}.{ext}", ctype


B64_SLICE = 256 * 1024  # kept for callers of the old sliced decoder; SIMD base64 needs no slicing


def _b64decode(text: bytes | memoryview) -> bytes:
    """base64 of an image field, SIMD (``bot/images/b64.py``): what ``base64.b64decode`` gives; raises
    ``ValueError`` for non-ASCII text, as ``str.encode("ascii")`` does on the plain JSON path."""
    return b64decode(text)


_B64_KEY = b'"b64_json"'


def _split_b64(data: bytes) -> tuple[bytes, memoryview] | None:
    """(the JSON with an empty ``b64_json`` string, the base64 text), without scanning the megabytes as
    JSON; None when the payload is not laid out plainly (then it is parsed the ordinary way)."""
    key = data.find(_B64_KEY)
    if key < 0:
        return None
    i = key + len(_B64_KEY)
    while data[i : i + 1] in (b" ", b"\t", b"\r", b"\n"):
        i += 1
    if data[i : i + 1] != b":":
        return None
    i += 1
    while data[i : i + 1] in (b" ", b"\t", b"\r", b"\n"):
        i += 1
    if data[i : i + 1] != b'"':
        return None
    end = data.find(b'"', i + 1)
    if end < 0 or data.find(b"\\", i + 1, end) >= 0:
        return None  # escapes inside: let json handle it
    if data.find(_B64_KEY, end) >= 0:
        return None  # the key again (nested or duplicated): only json can tell which one counts
    return data[: i + 1] + data[end:], memoryview(data)[i + 1 : end]


def _parse_event(data: str | bytes) -> tuple[dict[str, Any], bytes | memoryview | None]:
    """json.loads of one event, its ``b64_json`` cut out and returned still encoded (None if absent/empty)."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    split = _split_b64(data) if len(data) > OFFLOAD_BYTES else None
    if split is not None:
        rest, b64_text = split
        obj = json.loads(rest)
        if isinstance(obj, dict) and obj.get("b64_json") == "":
            obj.pop("b64_json")
            return obj, b64_text if len(b64_text) else None
    obj = json.loads(data)
    if not isinstance(obj, dict):
        raise ValueError("event data is not a JSON object")
    b64 = obj.pop("b64_json", None)
    return obj, b64.encode("ascii") if isinstance(b64, str) and b64 else None


def _decode_event(data: str | bytes) -> tuple[dict[str, Any], bytes | None]:
    """json.loads + base64 decode of one event."""
    obj, text = _parse_event(data)
    return obj, _b64decode(text) if text is not None else None


def _read_event(data: str | bytes, name: str | None) -> tuple[dict[str, Any], bytes | memoryview | None]:
    """One stream event and its image field (in a thread for big payloads). A partial frame's field is left
    encoded (``PartialImage.decode``: only if a preview of it is ever sent); any other is decoded."""
    obj, text = _parse_event(data)
    kind = str(obj.get("type") or name or "")
    if text is None or kind.endswith(".partial_image"):
        return obj, text
    if kind.endswith(".completed"):
        count("final")
    return obj, _b64decode(text)


def _decode_response(body: bytes) -> tuple[dict[str, Any], list[tuple[dict[str, Any], bytes | None]]]:
    obj = json.loads(body)
    if not isinstance(obj, dict):
        raise ValueError("response is not a JSON object")
    items: list[tuple[dict[str, Any], bytes | None]] = []
    for item in obj.get("data") or []:
        if not isinstance(item, dict):
            continue
        item = dict(item)
        b64 = item.pop("b64_json", None)
        raw = None
        if isinstance(b64, str) and b64:
            count("final")
            raw = _b64decode(b64.encode("ascii"))
        items.append((item, raw))
    return obj, items


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
    ) -> None:
        self._session = session
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self.max_retries = max(0, max_retries)
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.stall_timeout = stall_timeout
        self.request_timeout = request_timeout
        self.connect_timeout = connect_timeout
        self._streaming_refused = False

    def __repr__(self) -> str:  # no key in reprs either
        return f"ImagesClient(base_url={self.base_url!r})"

    @property
    def streaming_refused(self) -> bool:
        """True once the API refused streaming (organization not verified): we no longer stream."""
        return self._streaming_refused

    # ---- public API --------------------------------------------------------------------------
    async def generate(self, req: GenerateRequest) -> AsyncIterator[ImageEvent]:
        """Yield ``PartialImage`` frames (when streaming) and one ``CompletedImage`` per image."""

        def payload(stream: bool) -> dict[str, Any]:
            body: dict[str, Any] = {"model": req.model, "prompt": req.prompt}
            self._common_fields(body, req, stream)
            if req.moderation is not None:
                body["moderation"] = req.moderation
            return body

        async for event in self._run("/images/generations", req, payload):
            handed, event = [event], None
            yield handed.pop()  # (see _read_stream: no local keeps the image alive while suspended)

    async def edit(self, req: EditRequest) -> AsyncIterator[ImageEvent]:
        """Like ``generate`` for ``/images/edits`` (multipart/form-data)."""
        if not req.images:
            raise ValueError("an edit needs at least one input image")
        if len(req.images) > MAX_INPUT_IMAGES:
            raise ValueError(f"at most {MAX_INPUT_IMAGES} input images are allowed")

        def payload(stream: bool) -> aiohttp.FormData:
            fields: dict[str, Any] = {"model": req.model, "prompt": req.prompt}
            self._common_fields(fields, req, stream)
            if req.input_fidelity is not None:
                family = family_name(req.model)
                if family is not None and not get_model(req.model).input_fidelity:
                    log.debug("input_fidelity omitted: %s does not take it", req.model)
                else:
                    fields["input_fidelity"] = req.input_fidelity
            form = aiohttp.FormData(quote_fields=False)
            for key, value in fields.items():
                if isinstance(value, bool):
                    value = "true" if value else "false"
                form.add_field(key, str(value))
            field = "image" if len(req.images) == 1 else "image[]"
            for i, img in enumerate(req.images):
                filename, ctype = _file_part(img, f"image{i}")
                form.add_field(field, img.data, filename=filename, content_type=ctype)
            if req.mask is not None:
                filename, ctype = _file_part(req.mask, "mask")
                form.add_field("mask", req.mask.data, filename=filename, content_type=ctype)
            return form

        async for event in self._run("/images/edits", req, payload):
            handed, event = [event], None
            yield handed.pop()

    # ---- request building --------------------------------------------------------------------
    @staticmethod
    def _common_fields(body: dict[str, Any], req: GenerateRequest | EditRequest, stream: bool) -> None:
        body["n"] = req.n
        for name in ("size", "quality", "background", "output_format"):
            value = getattr(req, name)
            if value is not None:
                body[name] = value
        if req.output_compression is not None:
            if (req.output_format or "png") in ("jpeg", "webp"):
                body["output_compression"] = req.output_compression
            else:
                log.debug("output_compression omitted: only valid with jpeg/webp output")
        if req.user:
            body["safety_identifier"] = req.user
        if stream:
            body["stream"] = True
            body["partial_images"] = req.partial_images

    # ---- the request loop --------------------------------------------------------------------
    async def _run(
        self,
        path: str,
        req: GenerateRequest | EditRequest,
        payload: Callable[[bool], Any],
    ) -> AsyncIterator[ImageEvent]:
        url = self.base_url + path
        stream = bool(req.stream and req.partial_images > 0 and not self._streaming_refused)
        attempt = 0
        fell_back = False
        while True:
            try:
                resp = await self._post(url, payload(stream), stream)
            except ImagesAPIError as err:
                if stream and not fell_back and err.refuses_streaming:
                    log.warning(
                        "streaming refused (organization not verified to stream, request_id=%s): "
                        "retrying without streaming and not streaming again",
                        err.request_id,
                    )
                    self._streaming_refused = True
                    stream = False
                    fell_back = True
                    continue
                delay = self._retry_delay(err, attempt)
                if delay is None:
                    raise
                attempt += 1
                log.info(
                    "Images API %s (request_id=%s); retry %d/%d in %.2fs",
                    type(err).__name__,
                    err.request_id,
                    attempt,
                    self.max_retries,
                    delay,
                )
                await asyncio.sleep(delay)
                continue
            break

        request_id = resp.headers.get("x-request-id")
        try:
            ctype = resp.headers.get("Content-Type", "")
            if "text/event-stream" in ctype:
                async for event in self._read_stream(resp, request_id, req.n):
                    handed, event = [event], None
                    yield handed.pop()
            else:
                async for event in self._read_json(resp, request_id):
                    handed, event = [event], None
                    yield handed.pop()
        finally:
            resp.release()

    def _retry_delay(self, err: ImagesAPIError, attempt: int) -> float | None:
        """Seconds to wait before retrying ``err``, or None when it must not be retried."""
        if attempt >= self.max_retries:
            return None
        if isinstance(err, InsufficientQuota):
            return None
        retryable = isinstance(err, RateLimited | ConnectionFailed) or (
            isinstance(err, ServerError) and err.status in RETRY_STATUSES
        )
        if not retryable:
            return None
        if err.retry_after is not None:
            if err.retry_after > self.request_timeout:
                return None  # not worth holding the user for
            return err.retry_after
        backoff = min(self.backoff_max, self.backoff_base * (2**attempt))
        return backoff * random.uniform(0.5, 1.0)

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
            resp = await self._session.post(url, **kwargs)
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            msg = f"cannot reach the Images API at {self.base_url}: {type(exc).__name__}: {exc}"
            raise ConnectionFailed(redact(msg, [self._api_key])) from None
        request_id = resp.headers.get("x-request-id")
        log.debug("POST %s -> %d (x-request-id=%s, stream=%s)", url, resp.status, request_id, stream)
        if resp.status < 400:
            return resp
        try:
            body = await resp.read()
        except (TimeoutError, aiohttp.ClientError, OSError):
            body = b""
        finally:
            resp.release()
        err = error_from_response(resp.status, body, resp.headers, secrets=[self._api_key])
        log.debug("Images API error: %s", err)
        raise err

    # ---- responses ---------------------------------------------------------------------------
    async def _chunks(self, resp: aiohttp.ClientResponse, request_id: str | None) -> AsyncIterator[bytes]:
        """The body's chunks; StreamStalled when nothing arrives for ``stall_timeout``."""
        while True:
            try:
                async with asyncio.timeout(self.stall_timeout) as cm:
                    chunk = await resp.content.readany()
            except TimeoutError:
                if cm.expired():
                    raise StreamStalled(
                        f"no data from the Images API for {self.stall_timeout:g}s", request_id=request_id
                    ) from None
                raise StreamError(
                    f"the request took longer than {self.request_timeout:g}s", request_id=request_id
                ) from None
            except (aiohttp.ClientError, OSError) as exc:
                raise StreamError(f"the stream was interrupted: {type(exc).__name__}", request_id=request_id) from None
            if not chunk:
                return
            yield chunk

    async def _read_stream(
        self, resp: aiohttp.ClientResponse, request_id: str | None, n: int
    ) -> AsyncIterator[ImageEvent]:
        # A generator suspended at ``yield`` keeps its locals alive until it is resumed, which for a stream
        # is when the *next* event arrives, seconds later: each event's megabytes (the SSE text, the decoded
        # image) are handed over in ``out`` and no local keeps a reference across the yield.
        completed = 0
        out: list[ImageEvent] = []
        async for msg in iter_sse(self._chunks(resp, request_id)):
            if msg.is_done:
                break
            name, text = msg.event, msg.raw
            msg = None
            try:
                if len(text) > OFFLOAD_BYTES:
                    obj, raw = await asyncio.to_thread(_read_event, text, name)
                else:
                    obj, raw = _read_event(text, name)
            except (ValueError, binascii.Error) as exc:
                raise StreamError(f"undecodable stream event: {exc}", request_id=request_id) from None
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
                if raw is None:
                    raise StreamError("completed event without an image", request_id=request_id)
                completed += 1
                out.append(
                    CompletedImage(
                        data=raw if isinstance(raw, bytes) else bytes(raw),  # decoded: bytes already
                        output_format=str(obj.get("output_format") or "png"),
                        size=obj.get("size"),
                        quality=obj.get("quality"),
                        background=obj.get("background"),
                        usage=Usage.from_dict(obj.get("usage")),
                        request_id=request_id,
                        revised_prompt=obj.get("revised_prompt"),
                    )
                )
                raw = None
                yield out.pop()
            else:
                log.debug("ignoring stream event %r (x-request-id=%s)", kind, request_id)
        if completed == 0:
            raise StreamError("the stream ended without a completed image", request_id=request_id)
        if completed < n:
            log.warning("stream delivered %d of %d images (x-request-id=%s)", completed, n, request_id)

    async def _read_json(self, resp: aiohttp.ClientResponse, request_id: str | None) -> AsyncIterator[ImageEvent]:
        chunks = bytearray()
        async for chunk in self._chunks(resp, request_id):
            chunks += chunk
        try:
            obj, items = await asyncio.to_thread(_decode_response, bytes(chunks))
        except (ValueError, binascii.Error) as exc:
            raise ImagesAPIError(
                f"undecodable Images API response: {exc}", status=resp.status, request_id=request_id
            ) from None
        if "error" in obj and not items:
            raise error_from_stream_payload(obj, request_id=request_id, secrets=[self._api_key])
        usage = Usage.from_dict(obj.get("usage"))
        fmt = str(obj.get("output_format") or "png")
        count = 0
        for item, raw in items:
            if raw is None:
                continue
            count += 1
            yield CompletedImage(
                data=raw,
                output_format=fmt,
                size=obj.get("size"),
                quality=obj.get("quality"),
                background=obj.get("background"),
                usage=usage,
                request_id=request_id,
                revised_prompt=item.get("revised_prompt"),
            )
        if count == 0:
            raise ImagesAPIError("the Images API returned no image", status=resp.status, request_id=request_id)
