"""Settings: one typed object read from the environment and an optional ``.env`` file.

Each setting is declared once, as a field of ``Settings``: its environment variable, parser, default
and documentation. ``load_settings`` reads the fields' declarations; ``.env.example`` is generated from them
(``python -m bot env-example > .env.example``; ``tests/unit/config/test_settings.py`` fails when it is stale).
A missing or malformed value raises ``ConfigError`` with one clear line; ``python -m bot`` prints it
and exits with status 2. Secrets (the Discord token, the API key, SERVER_KEY_SECRET) are kept out of ``repr`` and
error messages so they are never logged.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import Field, dataclass, field, fields
from pathlib import Path
from typing import Any

from dotenv import dotenv_values

from bot.config import env_example
from bot.config import parsers as parse
from bot.config.env_example import example_value
from bot.config.parsers import is_postgres_url, parse_database_url
from bot.config.spec import ConfigError, Spec, required, secret_setting, setting

__all__ = ["ConfigError", "Settings", "declared", "describe", "example_value", "load_settings", "render_env_example"]

# Read from the real environment only (it names the file the other settings come from).
ENV_FILE_VARIABLE = "IMAGEBOT_ENV_FILE"


_DEFAULT_DATABASE_URL = "sqlite:///data/imagebot.db"
DEFAULT_BOT_USER_DAILY_LIMIT, DEFAULT_BOT_MONTHLY_BUDGET_USD = 50, 20.0  # finite: no cap is an explicit "unlimited"
DEFAULT_SHUTDOWN_GRACE = 5.0  # plus the stopped jobs' few seconds, under Docker's 10 s stop timeout
_DEFAULT_DATABASE_PATH = parse_database_url(_DEFAULT_DATABASE_URL, Path())  # relative to the working directory


@dataclass(frozen=True, slots=True)
class Settings:
    discord_token: str = field(
        repr=False,
        metadata=required(
            "DISCORD_TOKEN",
            "The bot token from https://discord.com/developers/applications → your app → Bot → Reset Token.",
            "put your bot token in .env (see .env.example)",
            section="Required",
        ),
    )
    openai_api_key: str = field(
        repr=False,
        metadata=required(
            "OPENAI_API_KEY",
            "Your OpenAI API key (or the key of an OpenAI-compatible gateway). Not needed when DEMO_MODE=true.",
            "put your key in .env, or set DEMO_MODE=true to try the bot with the built-in fake image service",
        ),
    )
    # Images API behaviour.
    openai_base_url: str = setting(
        "OPENAI_BASE_URL",
        parse.url(("https", "http")),
        "https://api.openai.com/v1",
        "Base URL of the Images API. Point it at any OpenAI-compatible gateway (e.g. new-api) to use that instead. "
        "GATEWAY: new-api, one-api and the LiteLLM proxy work as they are (see docs/setup/gateways.md): "
        "the bot notices a gateway that cannot stream images, falls back to plain requests for that URL, and never "
        "retries a gateway's 5xx (its upstream may already have charged you). new-api: set STREAMING_TIMEOUT=300 "
        "(or more) and STREAM_SCANNER_MAX_BUFFER_MB=64 (or more) on the gateway; one-api cannot edit images.",
        section="Images API",
    )
    image_model: str = setting(
        "IMAGE_MODEL",
        parse.text,
        "gpt-image-2",
        "The image model. gpt-image-2 and later accept free sizes; unknown names (gateway aliases) work with "
        "conservative defaults (the three classic sizes, no transparency).",
    )
    image_models: tuple[str, ...] | None = setting(
        "IMAGE_MODELS",
        parse.names,
        None,
        "More models moderators may allow in their server (/quota models), comma-separated, e.g. "
        "gpt-image-2.5-sunburst,gpt-image-2.6-flare. IMAGE_MODEL is always one of them and the default; "
        "empty = IMAGE_MODEL only. With more than one allowed, /imagine and /edit offer a model option.",
    )
    partial_images: int = setting(
        "PARTIAL_IMAGES",
        parse.integer(0, 3),
        2,
        "Partial frames streamed per image as live previews, 0-3. 0 turns streaming off.",
    )
    moderation: str | None = setting(
        "MODERATION",
        parse.choice("auto", "low"),
        None,
        "Content moderation strictness for generations: auto (OpenAI's default) or low. Empty = API default.",
    )
    output_compression: int | None = setting(
        "OUTPUT_COMPRESSION",
        parse.integer(0, 100),
        None,
        "JPEG/WebP compression level 0-100 sent with those formats. Empty = API default (100).",
    )
    api_max_retries: int = setting(
        "API_MAX_RETRIES",
        parse.integer(0, 10),
        3,
        "Retries of failures that cannot have cost anything: a connection never made, 429 rate limits, 502/503/504 "
        "from OpenAI itself, a stream cut before its first event. Never refusals, out of credit or a gateway's 5xx.",
    )
    api_stall_timeout: float = setting(
        "API_STALL_TIMEOUT",
        parse.number(1.0),
        180.0,
        "Seconds without a byte from a streaming response before it is treated as stalled.",
    )
    api_timeout: float = setting(
        "API_TIMEOUT",
        parse.number(1.0),
        600.0,
        "Seconds a whole image request may take (high quality can take minutes).",
    )
    price_overrides: dict[str, dict[str, float]] = setting(  # noqa: RUF009 (setting() copies a dict per instance)
        "PRICE_OVERRIDES",
        parse.prices,
        {},
        "Prices in USD per 1M tokens, to override the built-in table, as JSON keyed by model name, e.g. "
        '{"gpt-image-2": {"text_in": 5, "image_in": 8, "image_out": 30}}',
    )
    demo_mode: bool = setting(
        "DEMO_MODE",
        parse.boolean,
        False,
        "true = use the built-in fake image service (Pillow-drawn pictures) instead of OpenAI: try the bot for free.",
    )
    demo_gateway: str = setting(
        "DEMO_GATEWAY",
        parse.choice("openai", "new-api", "one-api", "litellm"),
        "openai",
        "In demo mode, the gateway the built-in fake imitates: openai, new-api, one-api or litellm.",
    )
    # Storage. ``database_path`` is not read itself: ``load_settings`` derives it from an SQLite
    # DATABASE_URL (None for PostgreSQL).
    database_url: str = setting(
        "DATABASE_URL",
        parse.database_url,
        _DEFAULT_DATABASE_URL,
        "SQLite database: sqlite:///relative/path.db (relative to the working directory) or "
        "sqlite:////absolute/path.db. The Docker image sets sqlite:////data/imagebot.db (the /data volume). "
        "Several processes share one PostgreSQL database instead: postgresql://user:password@host:5432/database "
        "(see docs/operations/scaling-out.md).",
        section="Storage",
    )
    database_path: Path | None = _DEFAULT_DATABASE_PATH
    # Quotas: the bot-wide defaults when a server sets nothing (None = unlimited).
    default_daily_limit: int | None = setting(
        "DEFAULT_DAILY_LIMIT",
        parse.limit,
        25,
        'Images per user per day when a server sets nothing: a number (0 blocks) or "unlimited".',
        section="Quotas (bot-wide defaults; moderators override them per server, role and user)",
    )
    default_monthly_limit: int | None = setting(
        "DEFAULT_MONTHLY_LIMIT",
        parse.limit,
        300,
        'Images per user per month when a server sets nothing: a number (0 blocks) or "unlimited".',
    )
    # Bot-wide caps: every server together, which is what the operator's API key pays for.
    bot_user_daily_limit: int | None = setting(
        "BOT_USER_DAILY_LIMIT",
        parse.limit,
        DEFAULT_BOT_USER_DAILY_LIMIT,
        "Images one person may make per UTC day in all servers and DMs together (more servers give nobody more): "
        'a number (0 blocks) or "unlimited" (no cap, on purpose). Images a server\'s own key pays do not count.',
        section="Bot-wide caps (all servers together: what your API key pays for)",
    )
    bot_monthly_budget_usd: float | None = setting(
        "BOT_MONTHLY_BUDGET_USD",
        parse.optional_money,
        DEFAULT_BOT_MONTHLY_BUDGET_USD,
        "US dollars your key may spend per UTC month in all servers together (estimated while a job runs); reached, "
        'servers using your key are refused until the month turns. "unlimited": no cap. Own keys don\'t count.',
    )
    allowed_guild_ids: tuple[int, ...] = setting(
        "ALLOWED_GUILD_IDS",
        parse.id_list,
        (),
        "Servers (comma-separated ids) that use your API key even while the application is public; the owner "
        "approves more at run time with /operator approve.",
        section="Servers: who your API key pays for (see docs/setup/public-or-private.md)",
    )
    operator_key_servers: str = setting(
        "OPERATOR_KEY_SERVERS",
        parse.choice("auto", "approved", "none"),
        "auto",
        "Which servers use your API key. auto: while the application is private (Developer Portal → Bot → Public "
        "Bot off) every server it is in; while it is public only ALLOWED_GUILD_IDS and approved servers. "
        "approved: only those, whatever the switch says. none: nobody, every server brings its own key.",
    )
    server_key_secret: str | None = secret_setting(
        "SERVER_KEY_SECRET",
        parse.fernet_key,
        "A secret that encrypts the API keys servers bring (/apikey set). Make one with: python -c "
        '"from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())". Keep it: '
        "without it the stored keys cannot be read. Empty: servers cannot store a key.",
    )
    allow_private_base_urls: bool = setting(
        "ALLOW_PRIVATE_BASE_URLS",
        parse.boolean,
        False,
        "true = a server's own key may use an http:// base URL or a private network's (a gateway on your own "
        "network). Off: only https:// on the public internet, so nobody points the bot inside your network.",
    )
    # Work scheduling and Discord pacing.
    max_concurrent_images: int = setting(
        "MAX_CONCURRENT_IMAGES",
        parse.integer(1, 256),
        8,
        "Image streams running at once (others wait in a fair queue, round-robin between users).",
        section="Load and pacing",
    )
    max_queue_per_user: int = setting(
        "MAX_QUEUE_PER_USER", parse.integer(1, 100), 3, "Jobs one user may have queued or running at once."
    )
    preview_min_interval: float = setting(
        "PREVIEW_MIN_INTERVAL",
        parse.number(0.0),
        1.0,
        "Minimum seconds between two preview edits of one message (keeps the bot inside Discord's limits).",
    )
    status_grace: float = setting(
        "STATUS_GRACE",
        parse.number(0.0),
        0.7,
        'Seconds a "generating" status waits so that it can go out together with the first frame.',
    )
    preview_max_side: int = setting(
        "PREVIEW_MAX_SIDE",
        parse.integer(64, 2048),
        512,
        "Longest side in pixels of the preview JPEGs shown while an image streams.",
    )
    # Inputs for edits.
    max_input_bytes: int = setting(
        "MAX_INPUT_MB",
        parse.megabytes(1, 50),
        25 * 1024 * 1024,
        "Largest attachment accepted for edits, in MB (checked before downloading).",
        section="Editing",
        example="25",
    )
    max_input_side: int = setting(
        "MAX_INPUT_SIDE",
        parse.integer(256, 8192),
        2048,
        "Input images are downscaled to this longest side before upload.",
    )
    max_input_pixels: int = setting(
        "MAX_INPUT_PIXELS",
        parse.integer(1_000_000, 200_000_000),
        40_000_000,
        "Images with more pixels than this are refused (decompression-bomb guard).",
    )
    edit_cache_bytes: int = setting(
        "EDIT_CACHE_MB",
        parse.megabytes(0, 4096),
        48 * 1024 * 1024,
        "Memory budget in MB for the prepared inputs of recent edits, kept so that Reroll needs no download "
        "(least recently used dropped first; 0 = keep none). The default fits a 512 MB container.",
        example="48",
    )
    # Discord.
    sync_commands: str = setting(
        "SYNC_COMMANDS",
        parse.choice("auto", "always", "never"),
        "auto",
        "Slash command sync at start: auto (only when the definitions changed since the last sync), always, never.",
        section="Discord",
    )
    dev_guild_id: int | None = setting(
        "DEV_GUILD_ID",
        parse.optional_int,
        None,
        "Sync to this one server instead of globally, for instant updates while developing.",
    )
    discord_api_base: str | None = setting(
        "DISCORD_API_BASE",
        parse.url(("https", "http")),
        None,
        "Override of Discord's REST API base for a REST proxy (and the test suite's fake Discord). "
        "Leave empty normally.",
    )
    discord_gateway_url: str | None = setting(
        "DISCORD_GATEWAY_URL",
        parse.url(("wss", "ws")),
        None,
        "Override of Discord's gateway URL for a gateway proxy (and the test suite's fake Discord). "
        "Leave empty normally.",
    )
    # Logging.
    log_level: str = setting(
        "LOG_LEVEL",
        parse.log_level,
        "INFO",
        "debug, info, warning or error. Secrets are never logged.",
        section="Logging",
        example="info",
    )
    log_format: str = setting(
        "LOG_FORMAT",
        parse.choice("text", "json"),
        "text",
        "Log format: text (one readable line per event) or json (one JSON object per line).",
    )
    user_hash_secret: str | None = secret_setting(
        "USER_HASH_SECRET",
        parse.text,
        "Key of the HMAC that turns a Discord id into the `user` sent to the Images API. Empty: derived from "
        "DISCORD_TOKEN (a new token gives everyone new ids); set a long random value to keep them across tokens.",
    )
    log_prompts: bool = setting(
        "LOG_PROMPTS",
        parse.boolean,
        False,
        "true = include prompt text in info-level job logs (off by default: prompts can be private).",
    )
    # Operations.
    shutdown_grace: float = setting(
        "SHUTDOWN_GRACE",
        parse.number(0.0),
        DEFAULT_SHUTDOWN_GRACE,
        "Seconds running jobs may finish after SIGTERM/SIGINT before they are cancelled and refunded. The default "
        "fits Docker's 10 s stop timeout; raise both together (docker run --stop-timeout, stop_grace_period).",
        section="Operations",
    )
    health_address: str | None = setting(
        "HEALTH_ADDRESS",
        parse.address,
        None,
        "host:port for the /healthz and /metrics HTTP endpoint (e.g. 127.0.0.1:8080). Empty = off. "
        "The Docker health check uses it when set, else it checks the database.",
    )
    prompt_retention_days: int = setting(
        "PROMPT_RETENTION_DAYS",
        parse.integer(0, 36500),
        90,
        "Days the database keeps what people typed (prompts) and the addresses of their input images; after "
        "that they are erased from the job's row, once an hour, and the money figures stay. 0 = keep forever.",
    )
    # Scaling out (several processes share one database).
    shard_count: int | None = setting(
        "SHARD_COUNT",
        parse.optional_int,
        None,
        "Total shards across all processes. Empty = one process with Discord's recommended shard count.",
        section="Scaling out",
    )
    shard_ids: tuple[int, ...] | None = setting(
        "SHARD_IDS", parse.shard_ids, None, "The shards this process serves (e.g. 0-3). Empty = all of SHARD_COUNT."
    )
    instance_lease_seconds: float = setting(
        "INSTANCE_LEASE_SECONDS",
        parse.number(1.0),
        30.0,
        "Seconds a process's lease in the database lasts (renewed every third of it). When a process dies, "
        "its jobs are refunded and its image slots freed this long after. Leave it unless you know why.",
    )

    def __repr__(self) -> str:  # never print secrets
        shown = ", ".join(f"{name}={value!r}" for name, value in describe(self).items())
        return f"Settings({shown})"


def declared() -> list[tuple[Field[Any], Spec]]:
    """Every field of ``Settings`` read from the environment, with its declaration, in order."""
    return [(f, f.metadata["setting"]) for f in fields(Settings) if "setting" in f.metadata]


_SECRETS = {f.name for f, spec in declared() if spec.secret}
_DEFAULTS = {f.name: f.default for f in fields(Settings)}


def load_settings(
    environ: Mapping[str, str] | None = None, *, env_file: Path | None = None, cwd: Path | None = None
) -> Settings:
    """Read settings from ``environ`` (default ``os.environ``) over an optional ``.env`` file.

    Real environment variables win over the file. Raises ``ConfigError`` with one line.
    """
    cwd = cwd or Path.cwd()
    env: dict[str, str] = {}
    dotenv_path = env_file or Path(os.environ.get(ENV_FILE_VARIABLE, cwd / ".env"))
    if dotenv_path.is_file():
        env.update({k: v for k, v in dotenv_values(dotenv_path).items() if v is not None})
    env.update(os.environ if environ is None else environ)

    values: dict[str, Any] = {}
    missing: list[Spec] = []
    for f, spec in declared():
        raw = env.get(spec.env)
        if raw is None or raw.strip() == "":
            if spec.required:
                missing.append(spec)
            continue  # the declared default
        try:
            values[f.name] = spec.parse(raw)
        except ValueError as exc:
            shown = "a hidden value" if spec.secret else parse.shown_value(raw)
            raise ConfigError(f"{spec.env} {exc} (got {shown})") from None
    demo = values.get("demo_mode", _DEFAULTS["demo_mode"])
    for spec in missing:
        if spec.env == "OPENAI_API_KEY" and demo:
            values["openai_api_key"] = "demo"
            continue
        raise ConfigError(f"{spec.env} is not set: {spec.required}")
    url = values.get("database_url", _DEFAULT_DATABASE_URL)
    values["database_path"] = None if is_postgres_url(url) else parse_database_url(url, cwd)
    shard_count, shard_ids = values.get("shard_count"), values.get("shard_ids")
    if shard_ids and shard_count is None:
        raise ConfigError("SHARD_IDS needs SHARD_COUNT (the total number of shards across all processes)")
    if shard_ids and shard_count is not None and max(shard_ids) >= shard_count:
        raise ConfigError(
            f"SHARD_IDS names shard {max(shard_ids)}, but SHARD_COUNT={shard_count} has shards 0-{shard_count - 1}"
        )
    return Settings(**values)


def describe(settings: Settings) -> dict[str, Any]:
    """The settings for a start-up log line, without secrets (nor a database password)."""
    shown = {f.name: getattr(settings, f.name) for f in fields(settings) if f.name not in _SECRETS}
    return {name: parse.without_password(v) if isinstance(v, str) else v for name, v in shown.items()}


def render_env_example() -> str:
    """The text of ``.env.example``: every setting with its documentation and default."""
    return env_example.render(declared(), ENV_FILE_VARIABLE)


if __name__ == "__main__":
    sys.stdout.write(render_env_example())
