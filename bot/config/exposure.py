"""Settings that send a credential where others may read it: said loudly by the doctor and at start-up.

``OPENAI_BASE_URL`` over plain ``http`` sends the API key in clear to anything between the bot and the
gateway; a Discord endpoint override (``DISCORD_API_BASE``, ``DISCORD_GATEWAY_URL``) receives the bot token,
and in clear when it is ``http``/``ws``. Both are fine on this machine (a gateway or proxy beside the bot on
loopback); anywhere else they deserve a warning.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from bot.config.redaction import redact
from bot.config.settings import Settings

__all__ = ["cleartext_warnings", "is_local_host"]


def is_local_host(host: str | None) -> bool:
    """Loopback only: ``localhost`` and 127.0.0.0/8 or ::1."""
    if not host:
        return False
    if host.lower() == "localhost" or host.lower().endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _host(url: str) -> tuple[str, str | None]:
    try:
        parts = urlsplit(url)
        return parts.scheme.lower(), parts.hostname
    except ValueError:
        return "", None


def cleartext_warnings(settings: Settings) -> list[str]:
    """One line per setting that exposes a credential (empty when none does)."""
    out: list[str] = []
    scheme, host = _host(settings.openai_base_url)
    if not settings.demo_mode and scheme == "http" and not is_local_host(host):
        out.append(
            f"OPENAI_BASE_URL {redact(settings.openai_base_url)} is plain http to another machine: the API key "
            "travels in clear. Use https, or keep the gateway on this machine or a private network you trust"
        )
    for name, url in (
        ("DISCORD_API_BASE", settings.discord_api_base),
        ("DISCORD_GATEWAY_URL", settings.discord_gateway_url),
    ):
        if not url:
            continue
        scheme, host = _host(url)
        if is_local_host(host):
            continue
        clear = " in clear" if scheme in ("http", "ws") else ""
        out.append(
            f"{name} {redact(url)} is not Discord and not this machine: the bot token is sent there{clear}. "
            "Unset it unless you run a Discord proxy you trust"
        )
    return out
