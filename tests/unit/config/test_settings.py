"""Settings: defaults, validation with one clear line, secrets never shown."""

from __future__ import annotations

import ast
from dataclasses import fields
from pathlib import Path

import pytest
from dotenv import dotenv_values

from bot.config.env_example import example_value
from bot.config.settings import (
    ENV_FILE_VARIABLE,
    ConfigError,
    Settings,
    declared,
    describe,
    load_settings,
    parse_database_url,
    render_env_example,
)

BASE = {"DISCORD_TOKEN": "tok-secret-123456", "OPENAI_API_KEY": "sk-secret-abcdef"}


def test_defaults(tmp_path: Path) -> None:
    s = load_settings(BASE, cwd=tmp_path, env_file=tmp_path / "none")
    assert s.openai_base_url == "https://api.openai.com/v1"
    assert s.image_model == "gpt-image-2" and s.partial_images == 2 and s.sync_commands == "auto"
    assert s.database_path == tmp_path / "data" / "imagebot.db"
    assert "secret" not in repr(s)


def test_env_file_and_environment_precedence(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(
        "DISCORD_TOKEN=from-file\nOPENAI_API_KEY=k\nPARTIAL_IMAGES=3\nIMAGE_MODEL=gpt-image-2.5-flare\n"
    )
    s = load_settings({"PARTIAL_IMAGES": "1"}, cwd=tmp_path, env_file=env_file)
    assert s.discord_token == "from-file" and s.partial_images == 1 and s.image_model == "gpt-image-2.5-flare"


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("PARTIAL_IMAGES", "5", "PARTIAL_IMAGES must be at most 3"),
        ("PARTIAL_IMAGES", "two", "PARTIAL_IMAGES must be a whole number"),
        ("SYNC_COMMANDS", "sometimes", "SYNC_COMMANDS must be one of auto, always, never"),
        ("DATABASE_URL", "mysql://x", "DATABASE_URL must look like sqlite:///"),
        ("DATABASE_URL", "postgresql://", "DATABASE_URL must name a server"),
        ("SHARD_IDS", "0-1", "SHARD_IDS needs SHARD_COUNT"),
        ("OPENAI_BASE_URL", "api.openai.com", "OPENAI_BASE_URL must be a URL"),
        ("DEV_GUILD_ID", "abc", "DEV_GUILD_ID must be a whole number"),
        ("BOT_MONTHLY_BUDGET_USD", "-5", "BOT_MONTHLY_BUDGET_USD must be at least 0"),
        ("BOT_MONTHLY_BUDGET_USD", "inf", "BOT_MONTHLY_BUDGET_USD must be a finite number"),
        ("BOT_USER_DAILY_LIMIT", "lots", "BOT_USER_DAILY_LIMIT must be a whole number"),
        ("ALLOWED_GUILD_IDS", "12,abc", "ALLOWED_GUILD_IDS must be Discord ids separated by commas"),
        ("SERVER_KEY_SECRET", "hunter2hunter2", "SERVER_KEY_SECRET must be a Fernet key"),
        ("OPERATOR_KEY_SERVERS", "some", "OPERATOR_KEY_SERVERS must be one of"),
    ],
)
def test_malformed_settings_give_one_line(tmp_path: Path, name: str, value: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings({**BASE, name: value}, cwd=tmp_path, env_file=tmp_path / "none")
    assert fragment in str(info.value) and "\n" not in str(info.value)


def test_missing_secrets(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="DISCORD_TOKEN is not set"):
        load_settings({"OPENAI_API_KEY": "k"}, cwd=tmp_path, env_file=tmp_path / "none")
    with pytest.raises(ConfigError, match="OPENAI_API_KEY is not set"):
        load_settings({"DISCORD_TOKEN": "t"}, cwd=tmp_path, env_file=tmp_path / "none")
    s = load_settings({"DISCORD_TOKEN": "t", "DEMO_MODE": "true"}, cwd=tmp_path, env_file=tmp_path / "none")
    assert s.demo_mode


def test_database_urls(tmp_path: Path) -> None:
    assert parse_database_url("sqlite:////abs/x.db", tmp_path) == Path("/abs/x.db")
    assert parse_database_url("sqlite:///rel/x.db", tmp_path) == tmp_path / "rel" / "x.db"


def test_a_postgresql_url_has_no_file_and_its_password_is_never_shown(tmp_path: Path) -> None:
    url = "postgresql://imagebot:hunter2hunter2@db:5432/imagebot"
    env = {"DISCORD_TOKEN": "t", "OPENAI_API_KEY": "k", "DATABASE_URL": url, "SHARD_COUNT": "4", "SHARD_IDS": "2-3"}
    s = load_settings(env, cwd=tmp_path, env_file=tmp_path / "none")
    assert s.database_url == url and s.database_path is None and s.shard_ids == (2, 3)
    assert describe(s)["database_url"] == "postgresql://***@db:5432/imagebot"
    assert "hunter2" not in repr(describe(s)) and "hunter2" not in repr(s)
    with pytest.raises(ConfigError, match="SHARD_IDS names shard 4, but SHARD_COUNT=4"):
        load_settings({**env, "SHARD_IDS": "3-4"}, cwd=tmp_path, env_file=tmp_path / "none")


# --- Each setting declared once; .env.example generated from the declarations and checked -------

ROOT = Path(__file__).resolve().parents[3]
ENV_EXAMPLE = ROOT / ".env.example"
REGENERATE = "regenerate it: .venv/bin/python -m bot.config.settings > .env.example"


def _example_entries() -> dict[str, str]:
    return {k: v or "" for k, v in dotenv_values(ENV_EXAMPLE).items()}


def test_env_example_names_every_setting_the_code_reads_and_no_other() -> None:
    names = [spec.env for _, spec in declared()]
    assert len(names) == len(set(names)), "an environment variable is declared twice"
    in_file = list(_example_entries())
    missing = [n for n in names if n not in in_file]
    unknown = [n for n in in_file if n not in names]
    assert not missing, f".env.example lacks {missing}; {REGENERATE}"
    assert not unknown, f".env.example names {unknown}, which bot/config.py does not read; {REGENERATE}"


def test_env_example_values_are_the_declared_defaults(tmp_path: Path) -> None:
    """Loading .env.example itself (plus the two secrets) gives exactly the declared defaults."""
    from_file = load_settings(BASE, cwd=tmp_path, env_file=ENV_EXAMPLE)
    defaults = load_settings(BASE, cwd=tmp_path, env_file=tmp_path / "none")
    differ = [f.name for f in fields(Settings) if getattr(from_file, f.name) != getattr(defaults, f.name)]
    assert not differ, f".env.example gives other values than the defaults for {differ}; {REGENERATE}"
    entries = _example_entries()
    for f, spec in declared():
        assert entries[spec.env] == example_value(f, spec), f"{spec.env}: {REGENERATE}"
        if spec.required:
            assert entries[spec.env] == "", f"{spec.env} is a secret: .env.example must leave it empty"


def test_env_example_is_the_generated_text() -> None:
    assert ENV_EXAMPLE.read_text(encoding="utf-8") == render_env_example(), f".env.example is stale; {REGENERATE}"


def test_example_value_round_trips_through_each_parser() -> None:
    """What .env.example writes for a default parses back to that default (or is empty for None)."""
    for f, spec in declared():
        if spec.required:
            continue
        default = f.default_factory() if callable(f.default_factory) else f.default
        text = example_value(f, spec)
        if text == "":
            assert default is None or default in ({}, ()), f"{spec.env}: default {default!r} written as empty"
        else:
            assert spec.parse(text) == default, f"{spec.env}: {text!r} does not parse to {default!r}"
        assert spec.doc.strip(), f"{spec.env} has no documentation"


def test_settings_defaults_equal_loaded_defaults() -> None:
    """The dataclass defaults are the loader's defaults: no second copy anywhere."""
    built = Settings(discord_token=BASE["DISCORD_TOKEN"], openai_api_key=BASE["OPENAI_API_KEY"])
    loaded = load_settings(BASE, cwd=Path(), env_file=Path("/nonexistent/.env"))
    assert built == loaded
    assert built.database_path == Path("data/imagebot.db") and built.log_level == "INFO"


_READS = ("environ.get", "getenv", "environ.setdefault", "environ.pop")


def environment_reads(source: str) -> set[str]:
    """Names of environment variables a Python source reads with a literal key."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        key: ast.expr | None = None
        if isinstance(node, ast.Call) and node.args and ast.unparse(node.func).endswith(_READS):
            key = node.args[0]
        elif isinstance(node, ast.Subscript) and ast.unparse(node.value).endswith("environ"):
            key = node.slice
        if isinstance(key, ast.Constant) and isinstance(key.value, str):
            found.add(key.value)
    return found


def test_environment_reads_finds_each_form() -> None:
    source = 'import os\nos.environ.get("A")\nos.getenv("B", "x")\nos.environ["C"]\nenv = {}\nenv.get("D")\n'
    assert environment_reads(source) == {"A", "B", "C"}


def test_the_code_reads_no_environment_variable_outside_the_declarations() -> None:
    allowed = {spec.env for _, spec in declared()} | {ENV_FILE_VARIABLE}
    stray = {}
    for path in sorted([*(ROOT / "bot").rglob("*.py"), *(ROOT / "cogs").rglob("*.py")]):
        names = environment_reads(path.read_text(encoding="utf-8")) - allowed
        if names:
            stray[str(path.relative_to(ROOT))] = sorted(names)
    assert not stray, f"declare these as settings in bot/config.py instead of reading os.environ: {stray}"
    assert ENV_FILE_VARIABLE in ENV_EXAMPLE.read_text(encoding="utf-8")


def test_secrets_never_appear_in_errors_or_descriptions(tmp_path: Path) -> None:
    s = load_settings(BASE, cwd=tmp_path, env_file=tmp_path / "none")
    for secret in BASE.values():
        assert secret not in str(describe(s)) and secret not in repr(s)
    with pytest.raises(ConfigError) as info:
        load_settings({**BASE, "MAX_INPUT_MB": "12x"}, cwd=tmp_path, env_file=tmp_path / "none")
    assert str(info.value) == "MAX_INPUT_MB must be a whole number (got '12x')"


def test_derived_and_scaled_values(tmp_path: Path) -> None:
    s = load_settings(
        {**BASE, "DATABASE_URL": "sqlite:////srv/x.db", "MAX_INPUT_MB": "10", "LOG_LEVEL": "debug"},
        cwd=tmp_path,
        env_file=tmp_path / "none",
    )
    assert s.database_path == Path("/srv/x.db") and s.database_url == "sqlite:////srv/x.db"
    assert s.max_input_bytes == 10 * 1024 * 1024 and s.log_level == "DEBUG"
    assert load_settings(BASE, cwd=tmp_path, env_file=tmp_path / "none").openai_api_key == BASE["OPENAI_API_KEY"]
    caps = load_settings(
        {**BASE, "BOT_USER_DAILY_LIMIT": "40", "BOT_MONTHLY_BUDGET_USD": "12.5"},
        cwd=tmp_path,
        env_file=tmp_path / "none",
    )
    assert caps.bot_user_daily_limit == 40 and caps.bot_monthly_budget_usd == 12.5
    on = load_settings(BASE, cwd=tmp_path, env_file=tmp_path / "none")
    assert on.bot_user_daily_limit == 50 and on.bot_monthly_budget_usd == 20.0  # finite unless turned off
    off = load_settings(
        {**BASE, "BOT_USER_DAILY_LIMIT": "unlimited", "BOT_MONTHLY_BUDGET_USD": "unlimited"},
        cwd=tmp_path,
        env_file=tmp_path / "none",
    )
    assert off.bot_user_daily_limit is None and off.bot_monthly_budget_usd is None  # "unlimited": no cap, explicitly
    ids = load_settings({**BASE, "ALLOWED_GUILD_IDS": "12, 34 12"}, cwd=tmp_path, env_file=tmp_path / "none")
    assert ids.allowed_guild_ids == (12, 34) and on.allowed_guild_ids == () and on.operator_key_servers == "auto"
    assert on.server_key_secret is None and on.shutdown_grace == 5.0
    demo = load_settings({"DISCORD_TOKEN": "t", "DEMO_MODE": "yes"}, cwd=tmp_path, env_file=tmp_path / "none")
    assert demo.openai_api_key == "demo"
