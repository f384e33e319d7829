"""How large an answer of the Images API may be, derived from the largest image the model can return.

Nothing the service sends is read without a bound: a gateway streaming an endless ``data:`` line or a JSON
body without end must fail that one job, not exhaust the bot's memory and lose every running job. The
bounds are generous (an image that does not compress at all, base64-encoded, plus room for the JSON
around it), so no real answer comes near them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp

from .errors import ResponseTooLarge, StreamError, StreamStalled
from .models import MAX_EDGE, MAX_PIXELS, ModelInfo

__all__ = [
    "ERROR_BODY_MAX",
    "final_image_limits",
    "max_event_bytes",
    "max_image_bytes",
    "max_json_bytes",
    "max_pixels",
    "read_head",
]

ERROR_BODY_MAX = 256 * 1024  # an error object is a few hundred bytes; a gateway's HTML page a few kilobytes
JSON_ROOM = 256 * 1024  # the JSON around an image: usage, revised_prompt, the other fields


def max_pixels(model: ModelInfo) -> int:
    """The most pixels an image of ``model`` has (any known model's maximum for an unknown one: a gateway
    may map the name to anything)."""
    if not model.known or model.fixed_sizes is None:
        return MAX_PIXELS
    areas = [int(w) * int(h) for w, _, h in (s.partition("x") for s in model.fixed_sizes if "x" in s)]
    return max(areas, default=MAX_PIXELS)


def max_edge(model: ModelInfo) -> int:
    """The longest side of an image of ``model``."""
    if not model.known or model.fixed_sizes is None:
        return MAX_EDGE
    edges = [max(int(w), int(h)) for w, _, h in (s.partition("x") for s in model.fixed_sizes if "x" in s)]
    return max(edges, default=MAX_EDGE)


FINAL_MARGIN = 1.25  # a final image may exceed the model's largest by this much before it is refused


def final_image_limits(model: ModelInfo) -> tuple[int, int]:
    """(most pixels, longest side) of a final image the bot accepts, checked in its header before decoding."""
    return int(max_pixels(model) * FINAL_MARGIN), int(max_edge(model) * FINAL_MARGIN)


def max_image_bytes(model: ModelInfo) -> int:
    """An incompressible RGBA PNG of the largest size: 4 bytes a pixel, plus a filter byte a row and zlib's
    stored-block framing (well under 1 %), plus the chunks around it."""
    return int(max_pixels(model) * 4 * 1.02) + 64 * 1024


def max_event_bytes(model: ModelInfo) -> int:
    """One stream event: the image in base64 (4/3 of its bytes) and the JSON around it."""
    return max_image_bytes(model) * 4 // 3 + JSON_ROOM


def max_json_bytes(model: ModelInfo, n: int) -> int:
    """A JSON answer carrying ``n`` images."""
    return max(1, n) * max_event_bytes(model) + JSON_ROOM


async def read_head(resp: aiohttp.ClientResponse, limit: int) -> bytes:
    """At most the first ``limit`` bytes of a body (what arrived before a failure, if it fails); releases it."""
    body = bytearray()
    try:
        while len(body) < limit:
            chunk = await resp.content.readany()
            if not chunk:
                break
            body += chunk
    except (TimeoutError, aiohttp.ClientError, OSError):
        pass
    finally:
        resp.release()
    return bytes(body[:limit])


async def body_chunks(
    resp: aiohttp.ClientResponse, request_id: str | None, stall_timeout: float, request_timeout: float
) -> AsyncIterator[bytes]:
    """A body's chunks as they come; ``StreamStalled`` when nothing arrives for ``stall_timeout``."""
    while True:
        try:
            async with asyncio.timeout(stall_timeout) as cm:
                chunk = await resp.content.readany()
        except TimeoutError:
            if cm.expired():
                raise StreamStalled(
                    f"no data from the Images API for {stall_timeout:g}s", request_id=request_id
                ) from None
            raise StreamError(f"the request took longer than {request_timeout:g}s", request_id=request_id) from None
        except (aiohttp.ClientError, OSError) as exc:
            raise StreamError(f"the stream was interrupted: {type(exc).__name__}", request_id=request_id) from None
        if not chunk:
            return
        yield chunk


async def read_bounded(
    chunks: AsyncIterator[bytes], limit: int, content_length: int | None, request_id: str | None
) -> bytes:
    """A whole JSON answer, or ``ResponseTooLarge`` as soon as it is (or says it will be) over ``limit``."""
    if (content_length or 0) > limit:
        raise ResponseTooLarge(f"a JSON answer of {content_length} bytes", request_id=request_id)
    body = bytearray()
    async for chunk in chunks:
        body += chunk
        if len(body) > limit:
            raise ResponseTooLarge(f"a JSON answer over {limit} bytes", request_id=request_id)
    return bytes(body)
