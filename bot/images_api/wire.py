"""Reading what a service's answer says besides its body: request ids, ``Retry-After``, ``x-should-retry``; and
scrubbing a service's message before it is kept (no API keys, no image bytes, a bounded length)."""

from __future__ import annotations

import email.utils
import re
import time
from collections.abc import Mapping

from bot.config.redaction import redact

__all__ = ["cap_message", "parse_retry_after", "redact", "request_id_from"]  # redact: bot/config/redaction.py

# What of a service's message reaches a log line: gateways echo whole bodies (LiteLLM: an SSE stream's base64).
MAX_MESSAGE_CHARS = 400
_BASE64_RUN = re.compile(r"[A-Za-z0-9+/=_\-]{120,}")
# A gateway could not read its upstream's body: the upstream answered (and billed) already.
REQUEST_ID_HEADERS = ("x-request-id", "x-oneapi-request-id", "x-litellm-call-id")
_REQUEST_ID_TEXT = re.compile(r"\(request id: ?([A-Za-z0-9_\-.:]{4,128})\)", re.IGNORECASE)


def cap_message(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """``text`` on one line, without runs of base64 (image bytes), cut to ``limit`` characters: what may be
    logged."""
    text = " ".join(_BASE64_RUN.sub(lambda m: f"<{len(m.group(0))} base64 chars>", text).split())  # one line
    if len(text) > limit:
        text = f"{text[:limit]}… <{len(text) - limit} more chars>"
    return text


def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    if not headers:
        return None
    value = headers.get(name)
    if value is None:
        lname = name.lower()
        for key, val in headers.items():
            if key.lower() == lname:
                return val
    return value


def request_id_from(headers: Mapping[str, str] | None, message: str = "") -> str | None:
    """The request id of an answer: a header (OpenAI, new-api/one-api, LiteLLM) or new-api's
    "(request id: …)" text in the error message."""
    for name in REQUEST_ID_HEADERS:
        value = _header(headers, name)
        if value:
            return value
    match = _REQUEST_ID_TEXT.search(message or "")
    return match.group(1) if match else None


def _should_retry(headers: Mapping[str, str] | None) -> bool | None:
    value = (_header(headers, "x-should-retry") or "").strip().lower()
    return True if value == "true" else False if value == "false" else None


def parse_retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``Retry-After`` (seconds or HTTP date)."""
    raw_ms = _header(headers, "retry-after-ms")
    if raw_ms:
        try:
            return max(0.0, float(raw_ms) / 1000.0)
        except ValueError:
            pass
    raw = _header(headers, "retry-after")
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
