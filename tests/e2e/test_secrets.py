"""Credentials in every URL setting never reach any output: the running bot's log (start-up line, warnings,
errors, tracebacks), its configuration errors, the doctor and the container health check."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, Rig

# Credentials where each URL setting can carry one that works: the database's user:password and ?password=,
# a signed query on the Discord endpoints. (A user:password in the http(s)/ws settings is refused outright:
# see test_a_user_and_password_in_an_endpoint_url_is_refused_without_echo.)
SECRETS = {
    "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
    "DISCORD_API_BASE": "http://127.0.0.1:9/api?token=S3CRET-DISCORD-QUERY",
    "DISCORD_GATEWAY_URL": "ws://127.0.0.1:9/?token=S3CRET-GW-TOKEN&v=10",
    "DATABASE_URL": "postgresql://imagebot:S3CRET-PG-PW@127.0.0.1:1/imagebot?password=S3CRET-PG-QUERY&sslmode=disable",
}
TOKEN = "S3CRET-DISCORD-TOKEN.abcdefghijkl.mnopqrstuvwxyz"
API_KEY = "sk-S3CRET-OPENAI-KEY-0123456789"
HASH_SECRET = "S3CRET-USER-HASH-KEY"


def env(**overrides: str) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "OPENAI_", "DATABASE_", "HEALTH_"))}
    out.update(
        {
            "PYTHONPATH": str(REPO_ROOT),
            "DISCORD_TOKEN": TOKEN,
            "OPENAI_API_KEY": API_KEY,
            "USER_HASH_SECRET": HASH_SECRET,
            "LOG_LEVEL": "DEBUG",
            **SECRETS,
        }
    )
    out.update(overrides)
    return out


async def run(args: list[str], environ: dict[str, str], cwd: Path) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        env=environ,
        cwd=cwd,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(errors="replace")


def leaked(output: str) -> list[str]:
    return sorted({word for word in output.split() for s in ("S3CRET",) if s in word})


@pytest.mark.parametrize("command", [[], ["doctor"], ["healthcheck", "--timeout", "2"]])
async def test_credentials_in_every_url_setting_are_absent_from_all_output(tmp_path: Path, command: list[str]) -> None:
    code, output = await run(command, env(), tmp_path)
    assert code != 0, output  # nothing is reachable: each command fails, and says so
    assert leaked(output) == [], output
    assert "127.0.0.1" in output or "unhealthy" in output, output  # it did say something about the endpoints


@pytest.mark.parametrize("command", [[], ["doctor"], ["healthcheck"]])
async def test_a_mistyped_url_is_echoed_only_by_its_scheme(tmp_path: Path, command: list[str]) -> None:
    bad = "postgress://imagebot:S3CRET-TYPO-PW@db:5432/imagebot"
    code, output = await run(command, env(DATABASE_URL=bad), tmp_path)
    assert code != 0 and "DATABASE_URL" in output and "postgress://" in output, output
    assert leaked(output) == [] and "db:5432" not in output, output
    code, output = await run(command, env(OPENAI_BASE_URL="htps://u:S3CRET-X@gw.example/v1"), tmp_path)
    assert code != 0 and "OPENAI_BASE_URL" in output and leaked(output) == [], output


@pytest.mark.parametrize("name", ["OPENAI_BASE_URL", "DISCORD_API_BASE", "DISCORD_GATEWAY_URL"])
async def test_a_user_and_password_in_an_endpoint_url_is_refused_without_echo(tmp_path: Path, name: str) -> None:
    scheme = "ws" if name == "DISCORD_GATEWAY_URL" else "https"
    code, output = await run(["doctor"], env(**{name: f"{scheme}://user:S3CRET-USERINFO@example.com/x"}), tmp_path)
    assert code != 0 and name in output and "user name or password" in output, output
    assert leaked(output) == [] and "example.com" not in output, output


async def test_the_running_bot_logs_no_credential_and_warns_of_cleartext(rig: Rig) -> None:
    # A working bot with a hash secret: none of its secrets in its log.
    await rig.start_bot(USER_HASH_SECRET=HASH_SECRET, DISCORD_API_BASE=rig.discord.api_base)
    await rig.stop_bot()
    log = rig.log_text()
    assert HASH_SECRET not in log and rig.discord.token not in log and "sk-test" not in log
    # The same bot pointed at a gateway elsewhere over http, and a Discord proxy elsewhere: warned at start.
    await rig.start_bot(
        wait=False,
        OPENAI_BASE_URL="http://images.example.invalid:3000/v1",
        DISCORD_API_BASE="http://discord-proxy.example.invalid/api?sig=S3CRET-PROXY-SIG",
    )
    await rig.wait_for_log("the bot token is sent there in clear", timeout=20)
    await rig.wait_for_log("the API key travels in clear", timeout=20)
    await rig.stop_bot()
    assert leaked(rig.log_text()) == [], rig.log_tail()
    rig.allow_tracebacks = True  # the unreachable proxy may end the second run with a (redacted) traceback


async def test_the_doctor_warns_of_cleartext_endpoints(tmp_path: Path) -> None:
    environ = env(
        OPENAI_BASE_URL="http://gateway.example.invalid:3000/v1",
        DISCORD_API_BASE="https://discord-proxy.example.invalid/api",
        DISCORD_GATEWAY_URL="ws://127.0.0.1:9/",
        DATABASE_URL=f"sqlite:///{tmp_path / 'bot.db'}",
    )
    _, output = await run(["doctor"], environ, tmp_path)
    warnings = [line for line in output.splitlines() if "WARNING" in line]
    assert any("OPENAI_BASE_URL" in w and "travels in clear" in w for w in warnings), output
    assert any("DISCORD_API_BASE" in w and "the bot token is sent there" in w for w in warnings), output
    assert not any("DISCORD_GATEWAY_URL" in w for w in warnings), output  # on this machine: fine
    _, output = await run(["doctor"], env(DATABASE_URL=f"sqlite:///{tmp_path / 'bot.db'}"), tmp_path)
    assert "WARNING" not in output, output  # every endpoint on this machine
