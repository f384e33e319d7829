"""Settings: one typed object read from the environment and an optional ``.env`` file.

Every setting is documented in ``.env.example``. A missing or malformed value raises
``ConfigError`` with one clear line; ``python -m bot`` prints it and exits with status 2.
Secrets (the Discord token and the API key) are kept out of ``repr`` so they are never logged.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

from dotenv import dotenv_values

T = TypeVar("T")


class ConfigError(Exception):
    """A setting is missing or malformed; the message is one line for the operator."""


@dataclass(frozen=True, slots=True)
class Settings:
    discord_token: str = field(repr=False)
    openai_api_key: str = field(repr=False)
    openai_base_url: str = "https://api.openai.com/v1"
    image_model: str = "gpt-image-2"
    partial_images: int = 2
    database_path: Path = Path("data/imagebot.db")
    discord_api_base: str | None = None
    discord_gateway_url: str | None = None
    sync_commands: str = "auto"  # auto | always | never
    dev_guild_id: int | None = None
    demo_mode: bool = False
    log_level: str = "INFO"
    # Quotas: the bot-wide defaults when a server sets nothing (None = unlimited).
    default_daily_limit: int | None = 25
    default_monthly_limit: int | None = 300
    # Work scheduling and Discord pacing.
    max_concurrent_images: int = 8
    max_queue_per_user: int = 3
    preview_min_interval: float = 1.0
    status_grace: float = 0.7
    preview_max_side: int = 512
    # Images API behaviour.
    moderation: str | None = None  # auto | low; None = the API default
    output_compression: int | None = None
    api_max_retries: int = 3
    api_stall_timeout: float = 180.0
    api_timeout: float = 600.0
    price_overrides: dict[str, dict[str, float]] = field(default_factory=dict)
    # Inputs for edits.
    max_input_bytes: int = 25 * 1024 * 1024
    max_input_side: int = 2048
    max_input_pixels: int = 40_000_000
    # Operations.
    shutdown_grace: float = 20.0  # seconds running jobs may finish after SIGTERM before they are cancelled
    health_address: str | None = None  # host:port of the /healthz and /metrics endpoint; None = off
    log_format: str = "text"  # text | json
    log_prompts: bool = False  # prompt text in info-level job logs
    demo_gateway: str = "openai"  # demo mode: which gateway the built-in fake imitates
    # Scaling out (several processes share one PostgreSQL database).
    database_url: str = "sqlite:///data/imagebot.db"
    shard_count: int | None = None
    shard_ids: tuple[int, ...] | None = None

    def __repr__(self) -> str:  # never print secrets
        shown = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in fields(self) if f.name not in _SECRETS)
        return f"Settings({shown})"


_SECRETS = {"discord_token", "openai_api_key"}


def _int(lo: int | None = None, hi: int | None = None) -> Callable[[str], int]:
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


def _float(lo: float = 0.0) -> Callable[[str], float]:
    def parse(raw: str) -> float:
        try:
            value = float(raw.strip())
        except ValueError:
            raise ValueError("must be a number") from None
        if value < lo:
            raise ValueError(f"must be at least {lo}")
        return value

    return parse


def _limit(raw: str) -> int | None:
    text = raw.strip().lower()
    if text in {"", "none", "unlimited", "-1"}:
        return None
    return _int(lo=0)(text)


def _bool(raw: str) -> bool:
    text = raw.strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError("must be true or false")


def _choice(*options: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        text = raw.strip().lower()
        if text not in options:
            raise ValueError(f"must be one of {', '.join(options)}")
        return text

    return parse


def _url(schemes: tuple[str, ...]) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        text = raw.strip().rstrip("/")
        if not any(text.startswith(s + "://") for s in schemes) or len(text) <= len(schemes[0]) + 3:
            raise ValueError(f"must be a URL starting with {' or '.join(s + '://' for s in schemes)}")
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


def _address(raw: str) -> str:
    text = raw.strip()
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError("must look like host:port, e.g. 127.0.0.1:8080 or 0.0.0.0:8080")
    return f"{host or '0.0.0.0'}:{port}"


def _shard_ids(raw: str) -> tuple[int, ...]:
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


def _prices(raw: str) -> dict[str, dict[str, float]]:
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


def _optional_int(raw: str) -> int | None:
    return None if not raw.strip() else _int(lo=1)(raw)


def load_settings(
    environ: Mapping[str, str] | None = None, *, env_file: Path | None = None, cwd: Path | None = None
) -> Settings:
    """Read settings from ``environ`` (default ``os.environ``) over an optional ``.env`` file.

    Real environment variables win over the file. Raises ``ConfigError`` with one line.
    """
    cwd = cwd or Path.cwd()
    env: dict[str, str] = {}
    dotenv_path = env_file or Path(os.environ.get("IMAGEBOT_ENV_FILE", cwd / ".env"))
    if dotenv_path.is_file():
        env.update({k: v for k, v in dotenv_values(dotenv_path).items() if v is not None})
    env.update(os.environ if environ is None else environ)

    def get(name: str, parse: Callable[[str], T], default: T) -> T:
        raw = env.get(name)
        if raw is None or raw.strip() == "":
            return default
        try:
            return parse(raw)
        except ValueError as exc:
            raise ConfigError(f"{name} {exc} (got {_shown(name, raw)})") from None

    demo = get("DEMO_MODE", _bool, False)
    token = env.get("DISCORD_TOKEN", "").strip()
    if not token:
        raise ConfigError("DISCORD_TOKEN is not set: put your bot token in .env (see .env.example)")
    api_key = env.get("OPENAI_API_KEY", "").strip()
    if not api_key and not demo:
        raise ConfigError(
            "OPENAI_API_KEY is not set: put your key in .env, or set DEMO_MODE=true to try the bot "
            "with the built-in fake image service"
        )

    def db_path(raw: str) -> Path:
        return parse_database_url(raw, cwd)

    model = get("IMAGE_MODEL", str.strip, "gpt-image-2")
    if not model:
        raise ConfigError("IMAGE_MODEL must not be empty")
    return Settings(
        discord_token=token,
        openai_api_key=api_key or "demo",
        openai_base_url=get("OPENAI_BASE_URL", _url(("https", "http")), "https://api.openai.com/v1"),
        image_model=model,
        partial_images=get("PARTIAL_IMAGES", _int(0, 3), 2),
        database_path=get("DATABASE_URL", db_path, cwd / "data" / "imagebot.db"),
        discord_api_base=get("DISCORD_API_BASE", _url(("https", "http")), None),
        discord_gateway_url=get("DISCORD_GATEWAY_URL", _url(("wss", "ws")), None),
        sync_commands=get("SYNC_COMMANDS", _choice("auto", "always", "never"), "auto"),
        dev_guild_id=get("DEV_GUILD_ID", _optional_int, None),
        demo_mode=demo,
        log_level=get("LOG_LEVEL", _choice("debug", "info", "warning", "error"), "info").upper(),
        default_daily_limit=get("DEFAULT_DAILY_LIMIT", _limit, 25),
        default_monthly_limit=get("DEFAULT_MONTHLY_LIMIT", _limit, 300),
        max_concurrent_images=get("MAX_CONCURRENT_IMAGES", _int(1, 256), 8),
        max_queue_per_user=get("MAX_QUEUE_PER_USER", _int(1, 100), 3),
        preview_min_interval=get("PREVIEW_MIN_INTERVAL", _float(0.0), 1.0),
        status_grace=get("STATUS_GRACE", _float(0.0), 0.7),
        preview_max_side=get("PREVIEW_MAX_SIDE", _int(64, 2048), 512),
        moderation=get("MODERATION", _choice("auto", "low"), None),
        output_compression=get("OUTPUT_COMPRESSION", _int(0, 100), None),
        api_max_retries=get("API_MAX_RETRIES", _int(0, 10), 3),
        api_stall_timeout=get("API_STALL_TIMEOUT", _float(1.0), 180.0),
        api_timeout=get("API_TIMEOUT", _float(1.0), 600.0),
        price_overrides=get("PRICE_OVERRIDES", _prices, {}),
        max_input_bytes=get("MAX_INPUT_MB", lambda r: _int(1, 50)(r) * 1024 * 1024, 25 * 1024 * 1024),
        max_input_side=get("MAX_INPUT_SIDE", _int(256, 8192), 2048),
        max_input_pixels=get("MAX_INPUT_PIXELS", _int(1_000_000, 200_000_000), 40_000_000),
        shutdown_grace=get("SHUTDOWN_GRACE", _float(0.0), 20.0),
        health_address=get("HEALTH_ADDRESS", _address, None),
        log_format=get("LOG_FORMAT", _choice("text", "json"), "text"),
        log_prompts=get("LOG_PROMPTS", _bool, False),
        demo_gateway=get("DEMO_GATEWAY", _choice("openai", "new-api", "one-api", "litellm"), "openai"),
        database_url=get("DATABASE_URL", str.strip, "sqlite:///data/imagebot.db"),
        shard_count=get("SHARD_COUNT", _optional_int, None),
        shard_ids=get("SHARD_IDS", _shard_ids, None),
    )


def _shown(name: str, raw: str) -> str:
    if name in {"DISCORD_TOKEN", "OPENAI_API_KEY"}:
        return "a hidden value"
    text = raw.strip()
    return repr(text if len(text) <= 60 else text[:57] + "...")


def describe(settings: Settings) -> dict[str, Any]:
    """The settings for a start-up log line, without secrets."""
    return {f.name: getattr(settings, f.name) for f in fields(settings) if f.name not in _SECRETS}
