"""``python -m bot doctor`` against the fake Discord and the fake Images API: every check, passing and failing.

The doctor runs as a subprocess with the bot's environment (``Rig.base_env``); the bot itself is not started.
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys
from dataclasses import replace
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from bot.demo.discord.payloads import ATTACH_FILES, BOT_ROLE_ID, EMBED_LINKS, VIEW_CHANNEL
from bot.ops.doctor_api import recognise_gateway
from bot.storage.db import migrations
from tests.conftest import REPO_ROOT, Rig

API_KEY = "sk-doctor-right-key-0123456789"
NEEDED = (1 << 10) | (1 << 11) | (1 << 14) | (1 << 15) | (1 << 16) | (1 << 38)  # the five + threads


async def doctor(rig: Rig, **env: str | None) -> tuple[int, str]:
    full = rig.base_env()
    full["OPENAI_API_KEY"] = API_KEY
    for k, v in env.items():
        if v is None:
            full.pop(k, None)
        else:
            full[k] = v
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "doctor",
        cwd=REPO_ROOT,
        env=full,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 30)
    text = out.decode()
    assert "Traceback" not in text, text
    assert proc.returncode is not None
    return proc.returncode, text


def lines(text: str, status: str, name: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(f"{status:<4} {name}")]


async def test_all_checks_pass_and_the_invite_asks_for_exactly_the_needed_permissions(rig: Rig) -> None:
    rig.images.api_key = API_KEY
    code, out = await doctor(rig)
    assert code == 0, out
    assert lines(out, "ok", "settings")
    [caps] = lines(out, "note", "settings")
    assert "no bot-wide spending cap" in caps and "BOT_MONTHLY_BUDGET_USD" in caps
    assert lines(out, "ok", "discord") and "logged in as imagebot" in out
    assert lines(out, "ok", "servers") and rig.discord.guild_name in out
    assert lines(out, "ok", f"server {rig.discord.guild_name}")
    assert lines(out, "ok", "images api") and "model gpt-image-2 is available" in out
    assert lines(out, "ok", "database")
    assert "FAIL" not in out and out.strip().endswith("all checks passed")
    [invite] = [line.split(" ", 1)[1] for line in out.splitlines() if line.startswith("invite: ")]
    url = urlsplit(invite)
    assert (url.scheme, url.netloc, url.path) == ("https", "discord.com", "/oauth2/authorize")
    assert "scope=bot+applications.commands" in url.query
    q = parse_qs(url.query)
    assert q["client_id"] == [str(rig.discord.application_id)]
    assert int(q["permissions"][0]) == NEEDED
    # No secret is ever printed, and the doctor generated no image.
    assert rig.discord.token not in out and API_KEY not in out
    assert not [r for r in rig.images.requests if "/images/" in r.path]


async def test_the_bot_wide_caps_are_named(rig: Rig) -> None:
    rig.images.api_key = API_KEY
    code, out = await doctor(rig, BOT_USER_DAILY_LIMIT="40", BOT_MONTHLY_BUDGET_USD="50")
    assert code == 0, out
    [caps] = lines(out, "note", "settings")
    assert caps.endswith("bot-wide caps, all servers together: 40 images per person per UTC day, $50.00 per UTC month")


async def test_a_bad_token_is_reported_with_the_fix(rig: Rig) -> None:
    rig.images.api_key = API_KEY
    code, out = await doctor(rig, DISCORD_TOKEN="not-the-token-of-this-bot")
    assert code == 1
    [line] = lines(out, "FAIL", "discord")
    assert "401" in line and "Reset Token" in line
    assert "not-the-token-of-this-bot" not in out
    assert lines(out, "ok", "images api") and lines(out, "ok", "database")  # the other checks still ran


async def test_a_channel_lacking_permissions_is_named_with_what_is_missing(rig: Rig) -> None:
    rig.images.api_key = API_KEY
    fd = rig.discord
    art = fd.world.channels[fd.other_channel_id]
    art["permission_overwrites"] = [{"id": str(BOT_ROLE_ID), "type": 0, "allow": "0", "deny": str(ATTACH_FILES)}]
    code, out = await doctor(rig)
    assert code == 1, out
    [line] = lines(out, "FAIL", f"server {fd.guild_name} #art")
    assert "missing Attach Files" in line and "Embed Links" not in line and "imagebot" in line
    assert not lines(out, "FAIL", f"server {fd.guild_name} #general")

    # A member overwrite can give it back; a hidden channel is a note, not a failure.
    art["permission_overwrites"].append({"id": str(fd.bot_id), "type": 1, "allow": str(ATTACH_FILES), "deny": "0"})
    general = fd.world.channels[fd.channel_id]
    general["permission_overwrites"] = [{"id": str(fd.guild_id), "type": 0, "allow": "0", "deny": str(VIEW_CHANNEL)}]
    code, out = await doctor(rig)
    assert code == 0, out
    [note] = lines(out, "note", f"server {fd.guild_name}")
    assert "#general" in note and "View Channel" in note


async def test_server_wide_missing_permissions(rig: Rig) -> None:
    rig.images.api_key = API_KEY
    fd = rig.discord
    for name in ("everyone", "bot"):
        fd.roles[name] = replace(fd.roles[name], permissions=fd.roles[name].permissions & ~EMBED_LINKS)
    code, out = await doctor(rig)
    assert code == 1
    [line] = lines(out, "FAIL", f"server {fd.guild_name}")
    assert "Embed Links server-wide" in line and "Roles" in line


async def test_a_rejected_api_key(rig: Rig) -> None:
    rig.images.api_key = API_KEY
    code, out = await doctor(rig, OPENAI_API_KEY="sk-wrong-key-0123456789")
    assert code == 1
    [line] = lines(out, "FAIL", "images api")
    assert "rejected OPENAI_API_KEY" in line and "401" in line
    assert "sk-wrong-key-0123456789" not in out


async def test_an_unknown_model_lists_what_is_offered(rig: Rig) -> None:
    rig.images.api_key = API_KEY
    code, out = await doctor(rig, IMAGE_MODEL="gpt-image-9")
    assert code == 1
    [line] = lines(out, "FAIL", "images api")
    assert "gpt-image-9 is not available" in line and "gpt-image-1" in line and "set IMAGE_MODEL" in line


async def test_without_models_routes_it_falls_back_to_a_request_only_validation_answers(rig: Rig) -> None:
    rig.images.api_key = API_KEY
    rig.images.models = None  # GET /v1/models answers 404, as some gateways do
    code, out = await doctor(rig)
    assert code == 0, out
    [line] = lines(out, "ok", "images api")
    assert "not verified" in line
    [probe] = [r for r in rig.images.requests if r.path.endswith("/images/generations")]
    assert probe.json["n"] == 0  # can never produce an image
    assert not rig.images.results
    rig.images.validation_errors.clear()  # the probe is invalid on purpose

    code, out = await doctor(rig, OPENAI_API_KEY="sk-wrong-key-0123456789")
    assert code == 1 and "rejected OPENAI_API_KEY" in lines(out, "FAIL", "images api")[0]


async def test_an_unwritable_or_foreign_database(rig: Rig, tmp_path: Path) -> None:
    rig.images.api_key = API_KEY
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    code, out = await doctor(rig, DATABASE_URL=f"sqlite:///{blocker}/imagebot.db")
    assert code == 1
    [line] = lines(out, "FAIL", "database")
    assert "cannot create" in line and "is not a directory" in line

    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not sqlite" * 100)
    code, out = await doctor(rig, DATABASE_URL=f"sqlite:///{garbage}")
    assert code == 1 and "not an imagebot database" in lines(out, "FAIL", "database")[0]

    old = tmp_path / "old.db"
    con = sqlite3.connect(old)
    con.execute("PRAGMA user_version = 1")
    con.close()
    latest = max(v for v, _, _ in migrations())
    code, out = await doctor(rig, DATABASE_URL=f"sqlite:///{old}")
    assert code == 1
    [line] = lines(out, "FAIL", "database")
    assert f"schema version 1, this bot needs {latest}" in line and "start the bot once" in line


async def test_a_public_application_is_a_warning_in_plain_words(rig: Rig) -> None:
    rig.images.api_key = API_KEY
    rig.discord.world.bot_public = True
    caps_on = {"BOT_USER_DAILY_LIMIT": None, "BOT_MONTHLY_BUDGET_USD": None}  # the shipped defaults
    code, out = await doctor(rig, **caps_on)
    assert code == 0, out  # a warning, not a failure
    [warn] = lines(out, "warn", "access")
    assert "the application is public: anyone with its invite link can add the bot" in warn
    assert "none listed yet" in warn and "turn Public Bot off" in warn and "caps off" not in warn

    code, out = await doctor(rig, ALLOWED_GUILD_IDS=str(rig.discord.guild_id))  # the rig turns both caps off
    [warn] = lines(out, "warn", "access")
    assert "1 server(s) in ALLOWED_GUILD_IDS" in warn and "you turned both bot-wide caps off" in warn

    rig.discord.world.bot_public = False
    code, out = await doctor(rig)
    assert code == 0 and not lines(out, "warn", "access")
    [ok] = lines(out, "ok", "access")
    assert "private (Public Bot off)" in ok


async def test_a_database_migrated_by_the_bot_passes(rig: Rig) -> None:
    rig.images.api_key = API_KEY
    await rig.start_bot(OPENAI_API_KEY=API_KEY)
    code, out = await doctor(rig)  # while the bot runs: the write probe waits for no one and changes nothing
    assert code == 0, out
    assert "writable and migrated" in lines(out, "ok", "database")[0]


async def test_bad_settings_fail_in_one_line() -> None:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO_ROOT), "IMAGEBOT_ENV_FILE": "/nonexistent"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "doctor", env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await proc.communicate()
    assert proc.returncode == 1
    assert out.decode().startswith("FAIL settings: DISCORD_TOKEN is not set")
    assert b"Traceback" not in err


def test_gateway_replies_are_recognised() -> None:
    assert recognise_gateway({"X-Oneapi-Request-Id": "2025"}) == "new-api or one-api"
    new_api = {"error": {"message": "无效的令牌 (request id: 1)", "type": "new_api_error", "code": ""}}
    assert recognise_gateway({"X-Oneapi-Request-Id": "1"}, new_api) == "new-api"
    assert recognise_gateway({}, {"error": {"message": "x", "type": "one_api_error"}}) == "one-api"
    assert recognise_gateway({"x-litellm-call-id": "abc", "x-litellm-version": "1.6"}) == "LiteLLM"
    assert recognise_gateway({"openai-processing-ms": "12", "x-request-id": "req_1"}) == "OpenAI"
    assert recognise_gateway({"content-type": "application/json"}) is None


async def test_an_unreachable_discord(rig: Rig) -> None:
    rig.images.api_key = API_KEY
    code, out = await doctor(rig, DISCORD_API_BASE="http://127.0.0.1:9/api/v10")
    assert code == 1
    [line] = lines(out, "FAIL", "discord")
    assert "cannot reach Discord at http://127.0.0.1:9/api/v10" in line
    assert "client_id=<application id>" in out  # the invite still says what to ask for
