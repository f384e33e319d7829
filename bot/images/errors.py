"""Typed errors of the Images API client.

``error_from_response`` turns an HTTP error response (status, body, headers) into the most specific
subclass; ``error_from_stream_payload`` does the same for an error that arrives inside an SSE stream.
Messages are scrubbed of anything that looks like an API key: ``str(err)`` is safe to log and to show.
"""

from __future__ import annotations

import email.utils
import json
import re
import time
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "AuthenticationFailed",
    "ConnectionFailed",
    "ContentBlocked",
    "ImagesAPIError",
    "InsufficientQuota",
    "InvalidRequest",
    "PermissionDenied",
    "RateLimited",
    "ServerError",
    "StreamError",
    "StreamStalled",
    "VerificationRequired",
    "error_from_response",
    "error_from_stream_payload",
    "redact",
]

MODERATION_CODES = frozenset({"moderation_blocked", "content_policy_violation"})

# OpenAI keys (sk-..., sk-proj-..., sess-...) and bearer tokens. OpenAI itself echoes a masked key in
# 401 messages ("Incorrect API key provided: sk-abc***xyz"); we drop even the masked remainder.
_KEY_RE = re.compile(r"\b(?:sk|sess|rk)-[A-Za-z0-9_\-*.]{4,}")
_BEARER_RE = re.compile(r"(?i)(bearer\s+)[^\s\"',]+")


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Remove API keys and bearer tokens from ``text``."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    text = _KEY_RE.sub("sk-***", text)
    return _BEARER_RE.sub(r"\1***", text)


class ImagesAPIError(Exception):
    """An error from (or on the way to) the Images API.

    ``status`` is None for errors without an HTTP status (network, mid-stream). ``details`` keeps the
    keys of the error object that have no attribute of their own (e.g. ``moderation_details``).
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        type: str | None = None,
        code: str | None = None,
        param: str | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        self.message = redact(message or "")
        self.status = status
        self.type = type
        self.code = code
        self.param = param
        self.request_id = request_id
        self.retry_after = retry_after
        self.details: dict[str, Any] = details or {}
        super().__init__(self.message)

    def __str__(self) -> str:
        bits = []
        if self.status is not None:
            bits.append(f"status={self.status}")
        for name in ("type", "code", "param", "request_id"):
            value = getattr(self, name)
            if value:
                bits.append(f"{name}={value}")
        suffix = f" ({', '.join(bits)})" if bits else ""
        return f"{self.message or type(self).__name__}{suffix}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self!s})"

    @property
    def mentions_verification(self) -> bool:
        """The message says the organization must be verified."""
        msg = self.message.lower()
        return "verif" in msg and "organization" in msg

    @property
    def refuses_streaming(self) -> bool:
        """The organization must be verified *to stream* (non-streaming may still work)."""
        return self.mentions_verification and "stream" in self.message.lower()


class InvalidRequest(ImagesAPIError):
    """400: the request is wrong (``param`` names the field)."""


class ContentBlocked(InvalidRequest):
    """The safety system refused the prompt or the output. Tell the user kindly; do not charge."""


class AuthenticationFailed(ImagesAPIError):
    """401: bad or revoked API key (operator problem)."""


class PermissionDenied(ImagesAPIError):
    """403: the key may not use this model/endpoint."""


class VerificationRequired(PermissionDenied):
    """The organization must be verified (to use the model, or only to stream it)."""


class RateLimited(ImagesAPIError):
    """429 ``rate_limit_exceeded``: retry after ``retry_after`` seconds."""


class InsufficientQuota(ImagesAPIError):
    """429 ``insufficient_quota``: out of credit. Never retried."""


class ServerError(ImagesAPIError):
    """5xx: transient server trouble."""


class ConnectionFailed(ImagesAPIError):
    """The request could not reach the API (DNS, refused, reset, TLS, timeout)."""


class StreamError(ImagesAPIError):
    """An error event mid-stream, or the stream ended/dropped without a completed event."""


class StreamStalled(StreamError):
    """No bytes arrived for the stall timeout."""


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


def _classify(status: int | None, type_: str | None, code: str | None, message: str) -> type[ImagesAPIError]:
    msg = message.lower()
    verification = "verif" in msg and "organization" in msg
    if code in MODERATION_CODES or type_ == "content_policy_violation":
        return ContentBlocked
    if status == 403 or (status == 400 and verification):
        return VerificationRequired if verification else PermissionDenied
    if status == 400 or (status is not None and 400 < status < 500 and status not in (401, 403, 429)):
        return InvalidRequest
    if status == 401:
        return AuthenticationFailed
    if status == 429:
        if code == "insufficient_quota" or type_ == "insufficient_quota":
            return InsufficientQuota
        return RateLimited
    if status is not None and status >= 500:
        return ServerError
    return ImagesAPIError


def _from_error_object(
    err: Mapping[str, Any],
    *,
    status: int | None,
    request_id: str | None,
    retry_after: float | None,
    default_cls: type[ImagesAPIError] | None = None,
) -> ImagesAPIError:
    message = str(err.get("message") or "")
    type_ = err.get("type")
    code = err.get("code")
    param = err.get("param")
    type_ = str(type_) if type_ is not None else None
    code = str(code) if code is not None else None
    param = str(param) if param is not None else None
    details = {k: v for k, v in err.items() if k not in ("message", "type", "code", "param")}
    cls = _classify(status, type_, code, message)
    if default_cls is not None and cls is ImagesAPIError:
        cls = default_cls
    if not message:
        message = f"HTTP {status}" if status is not None else (code or type_ or "Images API error")
    return cls(
        message,
        status=status,
        type=type_,
        code=code,
        param=param,
        request_id=request_id,
        retry_after=retry_after,
        details=details,
    )


def error_from_response(
    status: int,
    body: bytes | str | None,
    headers: Mapping[str, str] | None = None,
    *,
    secrets: Iterable[str] = (),
) -> ImagesAPIError:
    """Build the right error from an HTTP error response. Non-JSON bodies are tolerated."""
    request_id = _header(headers, "x-request-id")
    retry_after = parse_retry_after(headers)
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else (body or "")
    err: Mapping[str, Any] | None = None
    try:
        parsed = json.loads(text) if text.strip() else None
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        inner = parsed.get("error")
        if isinstance(inner, dict):
            err = inner
        elif isinstance(inner, str):
            err = {"message": inner}
        elif "message" in parsed:
            err = parsed
    if err is None:
        snippet = " ".join(text.split())[:300]
        err = {"message": f"HTTP {status}: {snippet}" if snippet else f"HTTP {status}"}
    exc = _from_error_object(err, status=status, request_id=request_id, retry_after=retry_after)
    secrets = [s for s in secrets if s]
    if secrets:
        exc.message = redact(exc.message, secrets)
        exc.args = (exc.message,)
    return exc


def error_from_stream_payload(
    payload: Mapping[str, Any], *, request_id: str | None = None, secrets: Iterable[str] = ()
) -> ImagesAPIError:
    """An error received inside an SSE stream: ``ContentBlocked`` for moderation, else ``StreamError``."""
    inner = payload.get("error", payload)
    err: Mapping[str, Any] = inner if isinstance(inner, Mapping) else {"message": str(inner)}
    exc = _from_error_object(err, status=None, request_id=request_id, retry_after=None)
    if not isinstance(exc, ContentBlocked):
        exc = StreamError(
            exc.message or "error event in the stream",
            type=exc.type,
            code=exc.code,
            param=exc.param,
            request_id=request_id,
            details=exc.details,
        )
    secrets = [s for s in secrets if s]
    if secrets:
        exc.message = redact(exc.message, secrets)
        exc.args = (exc.message,)
    return exc


# --- a result that is not an image ----------------------------------------------------------------------


class BrokenImage(ImagesAPIError):
    """The service said an image was done but its bytes are not a whole image (``bot/jobs.py`` checks
    every final image). The job is refunded; never retried, as the service may have billed it already."""
