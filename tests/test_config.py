"""Settings: defaults, validation with one clear line, secrets never shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import ConfigError, load_settings, parse_database_url

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
        ("DATABASE_URL", "postgres://x", "DATABASE_URL must look like sqlite:///"),
        ("OPENAI_BASE_URL", "api.openai.com", "OPENAI_BASE_URL must be a URL"),
        ("DEV_GUILD_ID", "abc", "DEV_GUILD_ID must be a whole number"),
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
