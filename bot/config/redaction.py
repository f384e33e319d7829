"""The one redaction function: what may be shown of a text that could carry a credential.

Used by every log line (messages and tracebacks alike, ``bot/__main__.py``'s log filter), by every error
that quotes a service (``bot/images_api/errors.py``), by the start-up settings line, the doctor and the
health check. It removes the secrets it is given (the Discord token, the API key, the keyed-hash secret),
OpenAI-style keys and bearer tokens, the userinfo of any URL (``scheme://user:password@host``) and the value
of any password, key, token, secret or signature parameter (``?password=...``, ``&sig=...``, and libpq's
``password=...`` keyword form).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

__all__ = ["RedactingFilter", "redact", "scheme_only", "shown_value"]

MASK = "***"

_KEY_RE = re.compile(r"\b(?:sk|sess|rk)-[A-Za-z0-9_\-*.]{4,}")  # OpenAI keys, even masked ("sk-abc***xyz")
# An Authorization value: a scheme, then a credential with a digit or an inner dot in it (so "Bearer
# authentication" and "the bot gracefully." stay as they are).
_BEARER_RE = re.compile(
    r"(?i)\b(bearer|bot|basic)(\s+)(?=[A-Za-z0-9_\-~+/=]*(?:\d|\.[A-Za-z0-9]))[A-Za-z0-9_\-.~+/=]{8,}"
)
# A Discord bot token anywhere (three base64url parts: the bot's id, a timestamp, an HMAC).
_DISCORD_TOKEN_RE = re.compile(r"\b[A-Za-z0-9_\-]{23,28}\.[A-Za-z0-9_\-]{6,7}\.[A-Za-z0-9_\-]{27,}")
_USERINFO_RE = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)[^/\s@?#'\"<>]+@")
_PARAM_RE = re.compile(
    r"(?i)(^|[?&;\s,(\"'])"
    r"((?:[a-z0-9_\-]*[_\-])?(?:password|passwd|pwd|pass|secret|token|key|apikey|sig|signature|credential|auth))"
    r"(=)([^&;\s#\"',)]*)"
)


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` without the ``secrets`` (any of 4 characters or more) and without anything that looks like a
    credential (see the module docstring)."""
    for secret in secrets:
        if secret and len(secret) >= 4 and secret in text:
            text = text.replace(secret, MASK)
    if "://" in text and "@" in text:
        text = _USERINFO_RE.sub(rf"\1{MASK}@", text)
    if "=" in text:
        text = _PARAM_RE.sub(lambda m: f"{m.group(1)}{m.group(2)}={MASK}" if m.group(4) else m.group(0), text)
    text = _KEY_RE.sub("sk-" + MASK, text)
    if "." in text:
        text = _DISCORD_TOKEN_RE.sub(MASK, text)
    return _BEARER_RE.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)


def scheme_only(raw: str) -> str:
    """What may be echoed of a value that failed to parse as a URL: its scheme, or nothing at all."""
    scheme, sep, _ = raw.strip().partition("://")
    if sep and re.fullmatch(r"[A-Za-z][A-Za-z0-9+.\-]{0,19}", scheme):
        return f"'{scheme}://…'"
    return "a value that is not a URL"


def shown_value(raw: str) -> str:
    """A setting's value that failed to parse, as its error may echo it: a URL only by its scheme (the rest may
    hold a password), anything else cut short and redacted."""
    text = raw.strip()
    if "://" in text or "@" in text:
        return scheme_only(text)
    return redact(repr(text if len(text) <= 60 else text[:57] + "..."))


class RedactingFilter(logging.Filter):
    """Every log record through the one redaction function (``redact``): its message, its traceback
    (the text of an exception is often a URL or a service's answer) and its stack."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if len(s) >= 8]
        self._formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        clean = redact(msg, self.secrets)
        if clean != msg:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self.secrets)
            record.exc_info = None  # formatters print exc_text; they would re-format exc_info unredacted
        if record.stack_info:
            record.stack_info = redact(record.stack_info, self.secrets)
        return True
