"""The one redaction function, and the log filter that puts every record (traceback included) through it."""

from __future__ import annotations

import io
import logging

import pytest

from bot.config.redaction import RedactingFilter, redact, scheme_only
from bot.ops.job_events import JsonFormatter


@pytest.mark.parametrize(
    ("text", "gone"),
    [
        ("postgresql://imagebot:hunter22@db:5432/x", "hunter22"),
        ("postgresql://db/x?sslmode=require&password=hunter22", "hunter22"),
        ("host=db user=imagebot password=hunter22 dbname=x", "hunter22"),
        ("https://cdn.example/a.png?X-Amz-Signature=abcdef123&X-Amz-Credential=AKIA123", "abcdef123"),
        ("https://cdn.example/a.png?X-Amz-Signature=abcdef123&X-Amz-Credential=AKIA123", "AKIA123"),
        ("wss://proxy/?token=tok123456&v=10", "tok123456"),
        ("http://gw/v1?api_key=key123456", "key123456"),
        ("Incorrect API key provided: sk-proj-abc***xyz", "abc***xyz"),
        ("Authorization: Bearer abc.def.ghi123", "abc.def.ghi123"),
        ("Authorization: Bot MTIz.abc.defghijkl", "MTIz.abc.defghijkl"),
    ],
)
def test_credentials_are_removed(text: str, gone: str) -> None:
    out = redact(text)
    assert gone not in out and "***" in out


def test_explicit_secrets_and_ordinary_text() -> None:
    assert redact("token is abcdefgh-123", ["abcdefgh-123"]) == "token is ***"
    assert redact("12 images, 3 jobs, https://example.com/a/b") == "12 images, 3 jobs, https://example.com/a/b"
    for plain in ("stopping the bot gracefully.", "Bearer authentication failed", "the bot made 12345678 images"):
        assert redact(plain) == plain
    token = "MTA5ODc2NTQzMjEwOTg3NjU0.GxYz12.abcdefghijklmnopqrstuvwxyz012345"
    assert token not in redact(f"logging in with {token}")
    assert scheme_only("postgress://u:p@h/x") == "'postgress://…'" and "u:p" not in scheme_only("x:p@h")


def _record(msg: str, *args: object, exc: BaseException | None = None) -> logging.LogRecord:
    exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else None
    return logging.LogRecord("bot", logging.ERROR, __file__, 1, msg, args, exc_info)


def test_the_log_filter_redacts_messages_args_and_tracebacks() -> None:
    try:
        raise ConnectionError("cannot connect to postgresql://u:hunter22@db/x?password=hunter33 with sk-live-1234567")
    except ConnectionError as exc:
        caught = exc
    secret_filter = RedactingFilter(["the-discord-token-1234"])
    for formatter in (logging.Formatter("%(message)s"), JsonFormatter()):
        record = _record("start %s with %s", "the-discord-token-1234", "http://gw/?key=kkkk1234", exc=caught)
        assert secret_filter.filter(record)
        out = io.StringIO()
        handler = logging.StreamHandler(out)
        handler.setFormatter(formatter)
        handler.emit(record)
        text = out.getvalue()
        assert "Traceback" in text or "exception" in text
        for secret in ("the-discord-token-1234", "kkkk1234", "hunter22", "hunter33", "sk-live-1234567"):
            assert secret not in text, text
