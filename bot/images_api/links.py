"""Images a gateway returns as a link (``data[].url``, or a ``completed`` event with only ``url``).

A link comes from a service the bot does not control (a gateway, or one of its upstream channels), so the bot
fetches it as an untrusted address: ``https`` only, unless the link is on the gateway's own origin (scheme,
host and port of ``OPENAI_BASE_URL``: the operator chose that host, and the API calls go there anyway); and
never to a loopback, private, link-local, CGNAT, unique-local, multicast, reserved or unspecified address,
IPv4-mapped or embedded IPv6 forms included. The address is checked by the socket factory of the connector,
on the very address being connected to, so a name that resolves to a public address when looked up and to
``127.0.0.1`` when connected (DNS rebinding) is refused as well. Redirects are followed by hand, each hop
checked by the same rules. The sessions keep no cookies, send no API key (a key must never leave for another
host), and read within a size, a time and a content-type limit; the bytes must be a PNG, JPEG or WebP
whatever the server calls them.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import socket
from typing import Any
from urllib.parse import urljoin, urlsplit

import aiohttp

from .errors import DownloadFailed, LinkRefused, MalformedResponse
from .payloads import _sniff_content_type

__all__ = ["ACCEPTED_TYPES", "LinkFetcher", "refused_address"]

log = logging.getLogger(__name__)

# What a server may call an image: real image types, the generic binary types CDNs use, or nothing.
ACCEPTED_TYPES = frozenset(
    {"image/png", "image/jpeg", "image/jpg", "image/webp", "application/octet-stream", "binary/octet-stream", ""}
)
CHUNK = 256 * 1024
MAX_REDIRECTS = 3
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_REFUSED = "refused address"  # the marker of a connect the guard stopped (see AddressRefused)


class AddressRefused(OSError):
    """Raised by the guarded socket factory: the address is not one the bot may fetch a link from."""


def refused_address(host: str) -> bool:
    """True for an IP address a link may not point at (anything but a global unicast address)."""
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return True  # not an address at all: the socket layer should never see one
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:  # the IPv4 address it is, on a dual-stack socket
            return refused_address(str(ip.ipv4_mapped))
        embedded: list[ipaddress.IPv4Address] = []
        if ip.sixtofour is not None:
            embedded.append(ip.sixtofour)
        if ip.teredo is not None:
            embedded.append(ip.teredo[1])
        if ip in _NAT64:
            embedded.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        if any(refused_address(str(v4)) for v4 in embedded):
            return True
    return (
        not ip.is_global
        or ip.is_multicast
        or ip.is_unspecified
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_private
        or ip.is_reserved
    )


def _guarded_socket(addr_info: tuple[Any, ...]) -> socket.socket:
    """The connector's socket factory: the last word on where a link's connection goes."""
    family, type_, proto, _, sockaddr = addr_info
    if refused_address(str(sockaddr[0])):
        raise AddressRefused(f"{_REFUSED} {sockaddr[0]}")
    return socket.socket(family=family, type=type_, proto=proto)


def _origin(url: str) -> tuple[str, str, int] | None:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        return None
    return scheme, parts.hostname.lower(), port or (443 if scheme == "https" else 80)


def _shown(url: str) -> str:
    """A link as logs may show it: scheme, host and path (a signed link's query is a credential)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"[:200]


def _was_refused(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, AddressRefused) or _REFUSED in str(seen):
            return True
        os_error = getattr(seen, "os_error", None)
        if isinstance(os_error, BaseException) and os_error is not seen and _was_refused(os_error):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


class LinkFetcher:
    """Fetches a gateway's image links under the rules of the module docstring; ``close()`` at shutdown.

    ``trust_origin=False`` (a base URL a server gave, not the operator): the gateway's own origin gets no
    exemption, and ``guarded_session`` is what the API requests themselves go through, so a name that
    resolved to a public address when the server set it cannot lead the bot into its own network later."""

    def __init__(self, base_url: str, *, trust_origin: bool = True) -> None:
        self.gateway_origin = _origin(base_url) if trust_origin else None
        self._sessions: dict[bool, aiohttp.ClientSession] = {}

    def guarded_session(self) -> aiohttp.ClientSession:
        """A cookie-less session that connects only to public addresses."""
        return self._session(False)

    def _session(self, trusted: bool) -> aiohttp.ClientSession:
        session = self._sessions.get(trusted)
        if session is None or session.closed:
            connector = aiohttp.TCPConnector(
                limit=32, socket_factory=None if trusted else _guarded_socket, ttl_dns_cache=None
            )
            # No cookie jar (a link must not set state for the next one), no proxy from the environment (a
            # proxy would connect on the bot's behalf, past the address check).
            session = aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar(), trust_env=False)
            self._sessions[trusted] = session
        return session

    async def close(self) -> None:
        """Best effort at shutdown: a session made on another loop (the Images API's) closes with it."""
        sessions, self._sessions = list(self._sessions.values()), {}
        for session in sessions:
            with contextlib.suppress(Exception):
                await session.close()

    def check(self, url: str, request_id: str | None) -> bool:
        """True when ``url`` is on the gateway's origin; raises ``LinkRefused`` for a link not to fetch."""
        origin = _origin(url)
        if origin is None:
            raise LinkRefused("an image link that is not an http(s) URL", request_id=request_id)
        if urlsplit(url).username is not None:
            raise LinkRefused(f"image link {_shown(url)} carries credentials", request_id=request_id)
        if origin == self.gateway_origin:
            return True
        if origin[0] != "https":
            raise LinkRefused(f"image link {_shown(url)} is not https", request_id=request_id)
        return False

    async def fetch(
        self,
        url: object,
        *,
        request_id: str | None,
        max_bytes: int,
        timeout: float,  # noqa: ASYNC109 - a limit of the download, passed on to aiohttp
        connect_timeout: float,
    ) -> bytes:
        """The image bytes at ``url``. ``LinkRefused`` for a link (or a redirect) the rules forbid,
        ``DownloadFailed`` when it cannot be fetched within the limits, ``MalformedResponse`` when the
        bytes are not an image."""
        if not isinstance(url, str) or not url.lower().startswith(("https://", "http://")):
            raise MalformedResponse("an image without b64_json or an http(s) url", request_id=request_id)
        limits = aiohttp.ClientTimeout(total=timeout, sock_connect=connect_timeout)
        data = bytearray()
        for _hop in range(MAX_REDIRECTS + 1):
            shown = _shown(url)
            trusted = self.check(url, request_id)
            try:
                async with self._session(trusted).get(
                    url, headers={"User-Agent": "imagebot/0.1"}, timeout=limits, allow_redirects=False
                ) as resp:
                    if resp.status in REDIRECT_STATUSES:
                        location = resp.headers.get("Location")
                        if not location:
                            raise DownloadFailed(f"image link {shown} redirects nowhere", request_id=request_id)
                        url = urljoin(url, location)
                        continue
                    await _read(resp, shown, data, max_bytes, request_id)
                    break
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                if _was_refused(exc):
                    raise LinkRefused(
                        f"image link {shown} points at an address the bot may not fetch", request_id=request_id
                    ) from None
                raise DownloadFailed(f"image link {shown}: {type(exc).__name__}", request_id=request_id) from None
        else:
            raise DownloadFailed(f"image link {shown}: more than {MAX_REDIRECTS} redirects", request_id=request_id)
        if _sniff_content_type(bytes(data[:16])) is None:
            raise MalformedResponse(f"image link {shown} is not a PNG, JPEG or WebP", request_id=request_id)
        log.debug("downloaded %d bytes from image link %s (x-request-id=%s)", len(data), shown, request_id)
        return bytes(data)


async def _read(
    resp: aiohttp.ClientResponse, shown: str, data: bytearray, max_bytes: int, request_id: str | None
) -> None:
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
