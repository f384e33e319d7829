"""One accepted request of the fake Images API: renders the images and writes the answer (JSON or a stream)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import math
import time
from typing import TYPE_CHECKING, Any

from aiohttp import web

from bot.images_api.models import GIF_FRAME_MS_DEFAULT, GIF_FRAMES_DEFAULT, get_model, input_image_tokens

from . import draw
from .requests import Fault, RecordedFile, SentEvent

if TYPE_CHECKING:
    from .server import FakeImagesAPI

log = logging.getLogger(__name__)


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
        *,
        markup: RecordedFile | None = None,
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
        self.markup = markup.data if markup is not None else None
        self.complexity = params.get("complexity")
        self.frames = int(params.get("frame_count") or GIF_FRAMES_DEFAULT) if self.output_format == "gif" else 1
        self.frame_ms = int(params.get("frame_duration_ms") or GIF_FRAME_MS_DEFAULT)
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
        if self.api.usage_override is not None:
            return dict(self.api.usage_override)
        text = max(1, math.ceil(len(self.prompt) / 4))
        image_in = 0
        inputs = [f.data for f in self.input_images] + ([self.markup] if self.markup is not None else [])
        for data in inputs:
            w, h = draw.image_size(data)
            image_in += input_image_tokens(w, h, high_fidelity=self.params.get("input_fidelity") == "high")
        out = images * self.model.estimate_output_tokens(
            self.size, self.quality, complexity=self.complexity, frames=self.frames
        )
        return {
            "input_tokens": text + image_in,
            "output_tokens": out,
            "total_tokens": text + image_in + out,
            "input_tokens_details": {"text_tokens": text, "image_tokens": image_in},
        }

    def svg_usage(self) -> dict[str, Any]:
        """The SVG pass's own tokens (its output includes its reasoning)."""
        text = max(1, math.ceil(len(self.prompt) / 4))
        reasoning = 600 + 8 * min(len(self.prompt), 500)
        out = reasoning + 1200
        return {
            "model": "gpt-5-mini",
            "input_tokens": 300 + text,
            "output_tokens": out,
            "reasoning_tokens": reasoning,
            "total_tokens": 300 + text + out,
        }

    async def render(self, index: int, stage: float) -> tuple[bytes, str]:
        """(image bytes, base64) of image ``index`` at ``stage`` (1 = final), off the event loop."""
        if self.output_format in ("gif", "svg") or self.markup is not None:
            raw, b64 = await asyncio.to_thread(self._render_newer, index)
        else:
            raw, b64 = await self._render(index, stage)
        if stage >= 1.0 and self.fault is not None and self.fault.kind == "replace":
            raw = self.fault.replacement
            b64 = base64.b64encode(raw).decode("ascii")
        if stage >= 1.0 and self.api.final_image is not None:
            final = self.api.final_image
            raw, b64 = final, await asyncio.to_thread(lambda: base64.b64encode(final).decode("ascii"))
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

    def _render_newer(self, index: int) -> tuple[bytes, str]:
        """GIF, SVG or an edit with markup (blocking: run in a thread)."""
        seed = draw.seed_for(self.prompt, self.number * 100 + index)
        if self.output_format == "gif":
            raw = draw.render_gif(
                self.prompt,
                seed,
                self.width,
                self.height,
                self.frames,
                self.frame_ms,
                realistic=self.api.realistic,
                base=self.base,
            )
        elif self.output_format == "svg":
            raw = draw.render_svg(self.prompt, seed, self.width, self.height)
        else:
            raw = draw.render(
                self.prompt,
                seed,
                self.width,
                self.height,
                self.output_format,
                transparent=self.transparent,
                base=self.base,
            )
        if self.markup is not None and self.output_format in ("png", "jpeg", "webp"):
            raw = draw.apply_markup(raw, self.markup, self.output_format)
        return raw, base64.b64encode(raw).decode("ascii")

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
        if fault is not None and fault.kind.startswith("flood_"):
            return await self._flood(request, headers, fault.kind)
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
            "data": self.api.gateway.relay_data(data),
            **common,
            "usage": self.usage(self.n),
        }
        if self.output_format == "svg":
            body["svg_usage"] = self.svg_usage()
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
        if self.fault is not None and self.fault.kind.startswith("flood_"):
            return await self._flood(request, headers, self.fault.kind)
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
                delay = self.api.event_delay(first, p)
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

    async def _flood(self, request: web.Request, headers: dict[str, str], kind: str) -> web.StreamResponse:
        """An answer without end: one ``data:`` line (``flood_sse_line``) or one JSON string (``flood_json``)
        that goes on until the client hangs up."""
        sse = kind == "flood_sse_line"
        ctype = "text/event-stream" if sse else "application/json"
        resp = web.StreamResponse(status=200, headers={**headers, "Content-Type": ctype})
        await resp.prepare(request)
        head = b'event: image_generation.completed\ndata: {"b64_json": "' if sse else b'{"data": [{"b64_json": "'
        await resp.write(head)
        block = b"A" * (256 * 1024)
        while not self.api._stopping.is_set():
            await resp.write(block)  # raises once the client has closed the connection
            self.api.flood_bytes += len(block)
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
