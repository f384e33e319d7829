"""Typed errors of the Images API client.

``error_from_response`` turns an HTTP error response (status, body, headers) into the most specific
subclass; ``error_from_stream_payload`` does the same for an error that arrives inside an SSE stream.
Messages are scrubbed of anything that looks like an API key: ``str(err)`` is safe to log and to show.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from .wire import _header, _should_retry, cap_message, parse_retry_after, redact, request_id_from

__all__ = [
    "AuthenticationFailed",
    "ConnectionFailed",
    "ContentBlocked",
    "DownloadFailed",
    "EditsNotSupported",
    "GatewayCannotStream",
    "GatewayCooldown",
    "ImagesAPIError",
    "InsufficientQuota",
    "InvalidRequest",
    "MalformedResponse",
    "ModelUnavailable",
    "PermissionDenied",
    "RateLimited",
    "ServerError",
    "StreamError",
    "StreamStalled",
    "UnsafeImage",
    "VerificationRequired",
    "error_from_response",
    "error_from_stream_payload",
    "redact",
    "request_id_from",
]

# Safety refusals: OpenAI's codes and new-api's prompt filter (500 in older versions, 400 in newer).
MODERATION_CODES = frozenset({"moderation_blocked", "content_policy_violation", "sensitive_words_detected"})
# Out of credit: OpenAI (429), new-api (403; older versions 401 with a Chinese text), LiteLLM (429 + text).
QUOTA_CODES = frozenset({"insufficient_quota", "insufficient_user_quota", "pre_consume_token_quota_failed"})
_QUOTA_TEXT = ("额度", "exceeded your current quota", "insufficient quota", "insufficient_quota", "quota exhausted")
# The gateway has no channel/deployment for the model (new-api 503 "无可用渠道", OpenAI 404).
MODEL_CODES = frozenset({"model_not_found", "model_not_available"})
_MODEL_TEXT = ("无可用渠道", "no available channel", "invalid model name")
# LiteLLM words what OpenAI says with a code: the safety refusal keeps its text (and its type), not its code.
_SAFETY_TEXT = ("rejected by the safety system", "moderation_blocked", "content_policy_violation")
# A LiteLLM proxy without a database answers an unknown client key with this 400.
_KEY_TYPES = frozenset({"no_db_connection", "auth_error"})
_KEY_TEXT = ("no connected db", "authentication error, no api key passed in")
# LiteLLM's router has put every deployment of the model group in cooldown after a failure: not sent upstream.
COOLDOWN_CODES = frozenset({"all_deployments_in_cooldown"})
_COOLDOWN_TEXT = "all deployments for selected model are in cooldown"
_COOLDOWN_WAIT = re.compile(r"try again in (\d+(?:\.\d+)?) ?s", re.IGNORECASE)
BODY_PARSE_CODES = frozenset(
    {"unmarshal_response_body_failed", "read_response_body_failed", "bad_response_body", "bad_response"}
)
NOT_IMPLEMENTED_CODES = frozenset({"api_not_implemented", "not_implemented"})
# Error types that say a gateway, not OpenAI, wrote the answer.
GATEWAY_TYPES = frozenset({"new_api_error", "one_api_error", "upstream_error"})
_GATEWAY_HEADERS = ("x-oneapi-request-id", "x-litellm-call-id")


# Headers carrying a request id: OpenAI, new-api/one-api, LiteLLM (first found wins).
class ImagesAPIError(Exception):
    """An error from (or on the way to) the Images API.

    ``status`` is None for errors without an HTTP status (network, mid-stream). ``details`` keeps the
    keys of the error object that have no attribute of their own (e.g. ``moderation_details``).
    ``litellm``: a LiteLLM proxy answered (it retries its upstream itself; see ``bot/images_api/client.py``).
    """

    litellm = False

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
        should_retry: bool | None = None,
        from_gateway: bool = False,
    ) -> None:
        self.message = redact(cap_message(message or ""))
        self.should_retry = should_retry  # the ``x-should-retry`` header, when sent
        self.from_gateway = from_gateway  # a gateway (new-api, one-api, LiteLLM), not OpenAI, answered
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

    @property
    def cannot_stream(self) -> str | None:
        """Why this answer to a stream request says the service cannot stream images (None: it does not).

        A 400 naming ``stream``, ``partial_images``, ``extra_body`` or an unknown parameter (LiteLLM forwards
        the stream fields as ``extra_body``), or a 5xx whose code says the gateway could not read its
        upstream's body (one-api reads an SSE answer as JSON)."""
        if self.refuses_streaming:
            return "the organization must be verified to stream"
        if self.status is not None and self.status >= 500 and self.code in BODY_PARSE_CODES:
            return f"the gateway could not read the upstream's streamed answer ({self.code})"
        if self.status == 400 and not isinstance(self, ContentBlocked):
            text = f"{self.param or ''} {self.message}".lower()
            for word in ("partial_images", "extra_body", "stream"):
                if word in text:
                    return f"a 400 naming {word}"
            if self.code == "unknown_parameter" or "unknown parameter" in text or "unrecognized" in text:
                return "a 400 naming an unknown parameter"
        return None

    def names_field(self, fields: Iterable[str]) -> str | None:
        """The first of ``fields`` a 400 names (as ``param`` or in its text), for dropping it."""
        if self.status != 400 or isinstance(self, ContentBlocked):
            return None
        text = self.message.lower()
        for name in fields:
            if self.param == name or re.search(rf"(?<![a-z_]){re.escape(name)}(?![a-z_])", text):
                return name
        return None


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


class GatewayCooldown(RateLimited):
    """LiteLLM's 429 ``all_deployments_in_cooldown``: the proxy refused before asking its upstream (nothing
    billed) because the model group failed a moment ago; ``retry_after`` is the wait it names."""


class GatewayCannotStream(ImagesAPIError):
    """The gateway failed a stream request in a way that may have been billed (it fails streaming images):
    previews are off for it from now on, and this request was not tried again (see ``ImagesClient``)."""


class InsufficientQuota(ImagesAPIError):
    """Out of credit (OpenAI 429 ``insufficient_quota``; a gateway's quota code or text on 401/403/429).
    The owner's problem. Never retried."""


class ModelUnavailable(ImagesAPIError):
    """The service offers no such model (``IMAGE_MODEL``): a configuration error. Never retried."""


class EditsNotSupported(ImagesAPIError):
    """The service does not implement ``/images/edits`` (one-api: 501 ``api_not_implemented``)."""


class MalformedResponse(ImagesAPIError):
    """The service's answer could not be read (half an event, JSON that is not JSON): its fault."""


class LinkRefused(MalformedResponse):
    """The answer named an image link the bot may not fetch: not https off the gateway's origin, or an address
    on a private, loopback or other non-public network (``bot/images_api/links.py``). Never retried."""


class ResponseTooLarge(MalformedResponse):
    """A JSON body, error body or stream event larger than any answer for the largest image the model can
    return (``bot/images_api/limits.py``): reading stopped there, and only that job fails."""


class ServerError(ImagesAPIError):
    """5xx: server trouble (retried only when it comes from OpenAI itself, see ``bot/images/client.py``)."""


class ConnectionFailed(ImagesAPIError):
    """The request could not reach the API (DNS, refused, reset, TLS, timeout).

    ``nothing_sent``: the connection was never made (refused, DNS, connect timeout), so the request
    cannot have been billed; only then is it retried."""

    nothing_sent = False


class DownloadFailed(ImagesAPIError):
    """The service answered with an image link (``url``) that could not be fetched within the limits."""


class StreamError(ImagesAPIError):
    """An error event mid-stream, or the stream ended/dropped without a completed event.

    ``before_first_event``: it broke before any event arrived (nothing was generated yet)."""

    before_first_event = False


class StreamStalled(StreamError):
    """No bytes arrived for the stall timeout."""


def _classify(status: int | None, type_: str | None, code: str | None, message: str) -> type[ImagesAPIError]:
    msg = message.lower()
    verification = "verif" in msg and "organization" in msg
    if code in MODERATION_CODES or type_ == "content_policy_violation":
        return ContentBlocked
    if status in (400, None) and any(t in msg for t in _SAFETY_TEXT):
        return ContentBlocked
    if code in COOLDOWN_CODES or type_ in COOLDOWN_CODES or _COOLDOWN_TEXT in msg:
        return GatewayCooldown
    if status in (400, 401) and (type_ in _KEY_TYPES or any(t in msg for t in _KEY_TEXT)):
        return AuthenticationFailed
    if status in (401, 402, 403, 429, None) and (
        code in QUOTA_CODES or type_ == "insufficient_quota" or any(t in msg for t in _QUOTA_TEXT)
    ):
        return InsufficientQuota
    if code in MODEL_CODES or any(t in msg for t in _MODEL_TEXT):
        return ModelUnavailable
    if status == 501 or code in NOT_IMPLEMENTED_CODES:
        return EditsNotSupported
    if status == 403 or (status == 400 and verification):
        return VerificationRequired if verification else PermissionDenied
    if status == 400 or (status is not None and 400 < status < 500 and status not in (401, 403, 429)):
        return InvalidRequest
    if status == 401:
        return AuthenticationFailed
    if status == 429:
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
    headers: Mapping[str, str] | None = None,
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
    if cls is GatewayCooldown and retry_after is None:
        wait = _COOLDOWN_WAIT.search(message)
        retry_after = float(wait.group(1)) if wait else None
    if default_cls is not None and cls is ImagesAPIError:
        cls = default_cls
    if not message:
        message = f"HTTP {status}" if status is not None else (code or type_ or "Images API error")
    gateway = (
        type_ in GATEWAY_TYPES
        or any(_header(headers, h) for h in _GATEWAY_HEADERS)
        or (code is not None and code.isdigit())  # LiteLLM puts the HTTP status in ``code``
        or message.startswith("litellm.")
        or cls is GatewayCooldown
    )
    exc = cls(
        message,
        status=status,
        type=type_,
        code=code,
        param=param or None,
        request_id=request_id or request_id_from(None, message),
        retry_after=retry_after,
        details=details,
        should_retry=_should_retry(headers),
        from_gateway=gateway,
    )
    exc.litellm = (
        any(k.lower().startswith("x-litellm") for k in headers or {})
        or message.startswith("litellm.")
        or "\nLiteLLM: " in message
        or type_ in _KEY_TYPES
        or cls is GatewayCooldown
    )
    return exc


def error_from_response(
    status: int,
    body: bytes | str | None,
    headers: Mapping[str, str] | None = None,
    *,
    secrets: Iterable[str] = (),
) -> ImagesAPIError:
    """Build the right error from an HTTP error response. Non-JSON bodies are tolerated."""
    request_id = request_id_from(headers)
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
    exc = _from_error_object(err, status=status, request_id=request_id, retry_after=retry_after, headers=headers)
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
    if not isinstance(exc, ContentBlocked | InsufficientQuota | ModelUnavailable):
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


class ImageTooLarge(BrokenImage):
    """A final image whose header names far more pixels than the model returns: refused before decoding."""


class UnsafeImage(BrokenImage):
    """An SVG the bot will not pass on: it declares entities or a DTD, is too large, or has absurd
    proportions. Refunded like a broken image, worded on its own."""


RETRY_STATUSES = frozenset({502, 503, 504})


def cannot_have_been_billed(err: ImagesAPIError) -> bool:
    """May ``err`` be retried without risking a second bill? Only a connection that was never made, a 429
    rate limit, and 502/503/504 from OpenAI itself: a gateway's 5xx may come after its upstream answered
    (and billed); nothing the service marked ``x-should-retry: false`` is retried either."""
    if err.should_retry is False:
        return False
    if isinstance(err, ConnectionFailed):
        return err.nothing_sent
    if isinstance(err, RateLimited):
        return err.retry_after is not None or err.code == "rate_limit_exceeded"
    if isinstance(err, ServerError):
        return err.status in RETRY_STATUSES and not err.from_gateway and err.code not in BODY_PARSE_CODES
    return False
