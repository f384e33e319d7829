"""Whether the service at a base URL is asked for streams, and what a failed stream request teaches.

A refusal (a 400 naming ``stream``, an organization not verified to stream) costs nothing: the request is tried
again without streaming. A gateway's 5xx in answer to a stream request may come after its upstream billed the
image (LiteLLM fails parsing its own stream, one-api reads SSE as JSON): streaming is turned off at once and
remembered (``on_discovery``, kept in the database by the composition root), and only the first such request of
the process is tried again, so the upstream bills at most one image more than was delivered per discovery.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable

import aiohttp

from .errors import ImagesAPIError, MalformedResponse, ServerError
from .gateway import LITELLM, LITELLM_NO_STREAM

__all__ = ["StreamGate", "no_stream_key", "stream_failure"]

log = logging.getLogger(__name__)


def no_stream_key(base_url: str) -> str:
    """The key-value entry remembering that ``base_url`` cannot stream images (hashed: a URL may hold a password)."""
    return "images_api.no_stream." + hashlib.sha256(base_url.rstrip("/").encode()).hexdigest()[:24]


def stream_failure(err: ImagesAPIError) -> str | None:
    """Why an answer to a stream request says the gateway cannot stream images *after* it may have billed:
    a 5xx written by a gateway. None for anything else (a 5xx from OpenAI itself, a refusal, a safety block)."""
    if err.status is None or err.status < 500 or not err.from_gateway:
        return None
    if type(err) not in (ServerError, ImagesAPIError, MalformedResponse):
        return None  # classified as something else (a safety refusal, no model, out of credit)
    gateway = "a LiteLLM proxy" if err.litellm else "the gateway"
    return f"{gateway} failed a stream request with {err.status} after its upstream may have billed it"


class StreamGate:
    """One per client (one base URL)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.reason: str | None = None  # why this base URL gets no stream requests any more
        self.discovered = False  # a stream failure that may have been billed was met in this process
        self.gateway: str | None = None  # the gateway found at startup (gateway.py's names)
        self.checked = False  # the gateway question got an answer (it is asked again before a stream until then)
        self.checking = asyncio.Lock()
        # Awaited with the reason when a failure that may have been billed turns streaming off; ``recall`` gives
        # back what an earlier process remembered (both kept in the database by the composition root).
        self.on_discovery: Callable[[str], Awaitable[None]] | None = None
        self.recall: Callable[[], Awaitable[str | None]] | None = None

    async def check(self, look: Callable[[], Awaitable[str | None]]) -> str | None:
        """Ask ``look`` which gateway this is, once it answers (a failure to connect is asked again later)."""
        async with self.checking:
            if self.recall is not None:
                recall, self.recall = self.recall, None
                try:
                    remembered = await recall()
                except Exception:  # the database is checked elsewhere; streaming is only a saving
                    log.exception("could not read whether %s can stream images", self.base_url)
                    remembered = None
                if remembered and self.reason is None:
                    self.reason = remembered
                    log.warning("previews are off: %s cannot stream images (remembered: %s)", self.base_url, remembered)
            if not self.checked:
                try:
                    self.set_gateway(await look())
                except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                    log.info("could not tell which gateway serves %s: %s", self.base_url, type(exc).__name__)
        return self.gateway

    def set_gateway(self, gateway: str | None) -> None:
        self.gateway, self.checked = gateway, True
        if gateway == LITELLM and self.reason is None:
            self.reason = LITELLM_NO_STREAM
            log.warning("%s is a LiteLLM proxy: previews are off (%s)", self.base_url, LITELLM_NO_STREAM)

    def refused(self, reason: str, request_id: str | None) -> None:
        """The service refused a stream request before generating anything."""
        if self.reason is None:
            log.warning(
                "%s cannot stream images (%s, request_id=%s): retrying without streaming, and no more "
                "stream requests to it until restart",
                self.base_url,
                reason,
                request_id,
            )
        self.reason = reason

    async def discover(self, reason: str, err: ImagesAPIError) -> bool:
        """A stream request failed in a way that may have been billed: no more streams, remembered. True for
        the first such failure of this process (its request may be tried once without streaming)."""
        first = not self.discovered
        self.discovered = True
        if self.reason is None:
            self.reason = reason
        if first:
            log.warning(
                "%s cannot stream images (%s; the service said: %s): previews are off for it from now on, "
                "remembered across restarts; this request is tried once without streaming",
                self.base_url,
                reason,
                err,
            )
            if self.on_discovery is not None:
                try:
                    await self.on_discovery(reason)
                except Exception:  # remembering is a saving, not a condition of the retry
                    log.exception("could not remember that %s cannot stream images", self.base_url)
        return first
