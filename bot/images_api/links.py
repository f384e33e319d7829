"""Images a gateway returns as a link (``data[].url``, or a ``completed`` event with only ``url``).

Fetched with the bot's own HTTP session and no API key (the link is the gateway's or a CDN's, and a key
must never leave for another host), within a size, a time and a content-type limit; the bytes must be a
PNG, JPEG or WebP whatever the server calls them.
"""

from __future__ import annotations

import logging

import aiohttp

from .errors import DownloadFailed, MalformedResponse
from .payloads import _sniff_content_type

__all__ = ["ACCEPTED_TYPES", "fetch_image"]

log = logging.getLogger(__name__)

# What a server may call an image: real image types, the generic binary types CDNs use, or nothing.
ACCEPTED_TYPES = frozenset(
    {"image/png", "image/jpeg", "image/jpg", "image/webp", "application/octet-stream", "binary/octet-stream", ""}
)
CHUNK = 256 * 1024


async def fetch_image(
    session: aiohttp.ClientSession,
    url: object,
    *,
    request_id: str | None,
    max_bytes: int,
    timeout: float,  # noqa: ASYNC109 - a limit of the download, passed on to aiohttp
    connect_timeout: float,
) -> bytes:
    """The image bytes at ``url``. ``DownloadFailed`` when it cannot be fetched within the limits,
    ``MalformedResponse`` when the link is not http(s) or the bytes are not an image."""
    if not isinstance(url, str) or not url.lower().startswith(("https://", "http://")):
        raise MalformedResponse("an image without b64_json or an http(s) url", request_id=request_id)
    shown = url.split("?", 1)[0][:200]  # signed links: keep the query (a token) out of logs and errors
    limits = aiohttp.ClientTimeout(total=timeout, sock_connect=connect_timeout)
    data = bytearray()
    try:
        async with session.get(url, headers={"User-Agent": "imagebot/0.1"}, timeout=limits, max_redirects=3) as resp:
            ctype = resp.content_type.lower() if resp.headers.get("Content-Type") else ""
            if resp.status != 200:
                raise DownloadFailed(f"image link {shown} answered HTTP {resp.status}", request_id=request_id)
            if ctype not in ACCEPTED_TYPES:
                raise DownloadFailed(f"image link {shown} sent {ctype!r}, not an image", request_id=request_id)
            if (resp.content_length or 0) > max_bytes:
                raise DownloadFailed(f"image link {shown} is over {max_bytes} bytes", request_id=request_id)
            async for chunk in resp.content.iter_chunked(CHUNK):
                data += chunk
                if len(data) > max_bytes:
                    raise DownloadFailed(f"image link {shown} is over {max_bytes} bytes", request_id=request_id)
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        raise DownloadFailed(f"image link {shown}: {type(exc).__name__}", request_id=request_id) from None
    if _sniff_content_type(bytes(data[:16])) is None:
        raise MalformedResponse(f"image link {shown} is not a PNG, JPEG or WebP", request_id=request_id)
    log.debug("downloaded %d bytes from image link %s (x-request-id=%s)", len(data), shown, request_id)
    return bytes(data)
