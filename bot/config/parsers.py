"""Parsers of settings: the text of one environment variable -> a typed value.

Each raises ``ValueError("must ...")``; ``bot/config.py`` prefixes the variable's name to make the
one-line ``ConfigError``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from bot.config.redaction import redact
from bot.config.redaction import shown_value as shown_value  # what an error may echo of a value (settings.py)


def integer(lo: int | None = None, hi: int | None = None) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw.strip())
        except ValueError:
            raise ValueError("must be a whole number") from None
        if lo is not None and value < lo:
            raise ValueError(f"must be at least {lo}")
        if hi is not None and value > hi:
            raise ValueError(f"must be at most {hi}")
        return value

    return parse


def number(lo: float = 0.0) -> Callable[[str], float]:
    def parse(raw: str) -> float:
        try:
            value = float(raw.strip())
        except ValueError:
            raise ValueError("must be a number") from None
        if value < lo:
            raise ValueError(f"must be at least {lo}")
        return value

    return parse


def limit(raw: str) -> int | None:
    text = raw.strip().lower()
    if text in {"", "none", "unlimited", "-1"}:
        return None
    return integer(lo=0)(text)


def optional_money(raw: str) -> float | None:
    """US dollars, or empty/"none"/"unlimited" for no cap."""
    text = raw.strip().lower()
    if text in {"", "none", "unlimited"}:
        return None
    value = number(0.0)(text)
    if value != value or value == float("inf"):
        raise ValueError("must be a finite number")
    return value


def boolean(raw: str) -> bool:
    text = raw.strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError("must be true or false")


def choice(*options: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        text = raw.strip().lower()
        if text not in options:
            raise ValueError(f"must be one of {', '.join(options)}")
        return text

    return parse


def log_level(raw: str) -> str:
    return choice("debug", "info", "warning", "error")(raw).upper()


def text(raw: str) -> str:
    return raw.strip()


def url(schemes: tuple[str, ...]) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        text = raw.strip().rstrip("/")
        if not any(text.startswith(s + "://") for s in schemes) or len(text) <= len(schemes[0]) + 3:
            raise ValueError(f"must be a URL starting with {' or '.join(s + '://' for s in schemes)}")
        if "@" in text.partition("://")[2].split("/", 1)[0]:
            # The bot authenticates with its own header (the key, the token); a user:password in the URL
            # cannot be sent beside it, and would be one more place for a secret to leak from.
            raise ValueError("must not contain a user name or password (the key or token has its own setting)")
        return text

    return parse


def parse_database_url(raw: str, base_dir: Path) -> Path:
    """``sqlite:///relative/path`` (relative to ``base_dir``) or ``sqlite:////absolute/path``."""
    text = raw.strip()
    prefix = "sqlite:///"
    if not text.startswith(prefix) or len(text) == len(prefix):
        raise ValueError("must look like sqlite:///relative/path.db or sqlite:////absolute/path.db")
    rest = text[len(prefix) :]
    path = Path(rest)
    return path if path.is_absolute() else (base_dir / path)


POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def is_postgres_url(raw: str) -> bool:
    return raw.strip().startswith(POSTGRES_SCHEMES)


def without_password(url: str) -> str:
    """A URL as it may be logged: ``postgresql://user:secret@host/db?password=x`` -> ``postgresql://***@host/db?password=***``."""
    return redact(url)


def database_url(raw: str) -> str:
    """An SQLite URL (validated as ``parse_database_url`` reads it) or a PostgreSQL one."""
    text = raw.strip()
    if is_postgres_url(text):
        rest = text.partition("://")[2]
        if not rest or rest.startswith("/"):
            raise ValueError("must name a server, e.g. postgresql://imagebot:secret@db:5432/imagebot")
        return text
    try:
        parse_database_url(text, Path())
    except ValueError:
        raise ValueError(
            "must look like sqlite:///relative/path.db, sqlite:////absolute/path.db or "
            "postgresql://user:password@host:5432/database"
        ) from None
    return text


def address(raw: str) -> str:
    text = raw.strip()
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError("must look like host:port, e.g. 127.0.0.1:8080 or 0.0.0.0:8080")
    return f"{host or '0.0.0.0'}:{port}"


def shard_ids(raw: str) -> tuple[int, ...]:
    """``0-3`` or ``0,2,5`` (ranges and single ids, comma-separated)."""
    ids: set[int] = set()
    try:
        for part in raw.replace(" ", "").split(","):
            if not part:
                continue
            lo, sep, hi = part.partition("-")
            first, last = int(lo), int(hi) if sep else int(lo)
            if first < 0 or last < first:
                raise ValueError
            ids.update(range(first, last + 1))
    except ValueError:
        raise ValueError("must be shard ids like 0-3 or 0,2,5") from None
    return tuple(sorted(ids))


def prices(raw: str) -> dict[str, dict[str, float]]:
    try:
        data = json.loads(raw)
    except json.JSONDecodeError:
        raise ValueError('must be JSON like {"gpt-image-2": {"text_in": 5, "image_in": 8, "image_out": 30}}') from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise ValueError("must map model names to {text_in, image_in, image_out}")
    try:
        return {str(k): {str(p): float(x) for p, x in v.items()} for k, v in data.items()}
    except (TypeError, ValueError):
        raise ValueError("prices must be numbers") from None


def names(raw: str) -> tuple[str, ...]:
    """A comma-separated list of names (blanks and repeats dropped, order kept)."""
    out: list[str] = []
    for part in raw.split(","):
        name = part.strip()
        if name and name not in out:
            out.append(name)
    if len(out) > 20:
        raise ValueError("at most 20 names")
    return tuple(out)


def optional_int(raw: str) -> int | None:
    return None if not raw.strip() else integer(lo=1)(raw)


def megabytes(lo: int, hi: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        return integer(lo, hi)(raw) * 1024 * 1024

    return parse


def id_list(raw: str) -> tuple[int, ...]:
    """Discord ids (snowflakes), comma- or space-separated: ``123, 456``."""
    ids: list[int] = []
    for part in raw.replace(",", " ").split():
        if not part.isdigit() or not 0 < int(part) < 2**64:
            raise ValueError(f"must be Discord ids separated by commas ({part!r} is not one)")
        if int(part) not in ids:
            ids.append(int(part))
    return tuple(ids)


def fernet_key(raw: str) -> str:
    """A Fernet key: 32 bytes in URL-safe base64 (what ``Fernet.generate_key()`` prints)."""
    from cryptography.fernet import Fernet

    text = raw.strip()
    try:
        Fernet(text.encode())
    except (ValueError, TypeError):
        raise ValueError(
            "must be a Fernet key (44 characters of URL-safe base64): make one with "
            'python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'
        ) from None
    return text
