"""The end-to-end rig: the fake Discord, the fake Images API and the real bot (``python -m bot``) as a process.

Usage::

    async def test_something(rig: Rig) -> None:
        await rig.start_bot()                      # or rig.start_bot(PARTIAL_IMAGES="0")
        fd = rig.discord
        h = await fd.inject_interaction(fd.slash("imagine", {"prompt": "a cat"}))
        await h.wait_for(lambda h: h.original and h.original["attachments"])

At teardown the rig stops everything and fails the test if the fake recorded schema violations, messages
with content but without ``allowed_mentions: {"parse": []}``, or a "Traceback" in the bot log (set
``rig.allow_tracebacks = True`` in tests that expect one). ``tests/README.md`` tells the whole story.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.demo.discord import FakeDiscord
from bot.demo.images import FakeImagesAPI
from bot.demo.processes import terminate

REPO_ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT = 20.0
STOP_TIMEOUT = 8.0


class BotStartError(AssertionError):
    pass


class Rig:
    """Owns the fakes and the bot process for one test."""

    def __init__(self, discord: FakeDiscord, images: Any, images_base: str, tmp_path: Path) -> None:
        self.discord = discord
        self.images = images
        self.images_base = images_base
        self.tmp_path = tmp_path
        self.workdir = tmp_path / "cwd"
        self.workdir.mkdir(exist_ok=True)
        self.db_path = tmp_path / "bot.storage.db"
        self.log_path = tmp_path / "bot.log"
        self.bot_command: list[str] = [sys.executable, "-m", "bot"]
        self.allow_tracebacks = False
        self.proc: asyncio.subprocess.Process | None = None
        self.returncodes: list[int] = []
        self._log_file: Any = None
        self._env_overrides: dict[str, str | None] = {}

    # ---------------------------------------------------------------------------------- process
    def base_env(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("DISCORD_", "OPENAI_", "IMAGEBOT_")) and k not in ("DATABASE_URL",)
        }
        pythonpath = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
        env.update(
            {
                "PYTHONPATH": pythonpath,
                "PYTHONUNBUFFERED": "1",
                "DISCORD_TOKEN": self.discord.token,
                "OPENAI_API_KEY": "sk-test",
                "OPENAI_BASE_URL": self.images_base,
                "DISCORD_API_BASE": self.discord.api_base,
                "DISCORD_GATEWAY_URL": self.discord.gateway_url,
                "DATABASE_URL": f"sqlite:///{self.db_path}",
                "SYNC_COMMANDS": "always",
                "PARTIAL_IMAGES": "2",
                "LOG_LEVEL": "DEBUG",
                "PREVIEW_MIN_INTERVAL": "0.05",
                "SHUTDOWN_GRACE": "1",
                # The shipped bot-wide caps are finite; the tests that need them set them.
                "BOT_USER_DAILY_LIMIT": "unlimited",
                "BOT_MONTHLY_BUDGET_USD": "unlimited",
            }
        )
        return env

    async def start_bot(
        self,
        *,
        wait: bool = True,
        timeout: float = STARTUP_TIMEOUT,  # noqa: ASYNC109
        **env_overrides: str | None,
    ) -> None:
        """Start the bot process (env overrides: a None value removes the variable) and, unless
        ``wait=False``, wait for its IDENTIFY and, when SYNC_COMMANDS is "always", its command sync."""
        assert self.proc is None or self.proc.returncode is not None, "bot already running"
        self._env_overrides = dict(env_overrides)
        env = self.base_env()
        for k, v in env_overrides.items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = str(v)
        fd = self.discord
        identifies_before = len(fd.identifies)
        requests_before = len(fd.requests)
        if self._log_file is None:
            self._log_file = self.log_path.open("ab")
        self._log_file.write(f"\n===== rig: starting {' '.join(self.bot_command)} =====\n".encode())
        self._log_file.flush()
        self.proc = await asyncio.create_subprocess_exec(
            *self.bot_command,
            cwd=self.workdir,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=asyncio.subprocess.STDOUT,
        )
        if not wait:
            return
        wants_sync = env.get("SYNC_COMMANDS", "") == "always"
        await self._wait_started(identifies_before, requests_before, wants_sync, timeout)

    async def _wait_started(self, identifies_before: int, since: int, wants_sync: bool, timeout: float) -> None:  # noqa: ASYNC109
        fd = self.discord
        proc = self.proc
        assert proc is not None

        def synced() -> bool:
            return any(
                r.method == "PUT" and r.path.endswith("/commands") and r.status == 200 for r in fd.requests[since:]
            )

        def ready() -> bool:
            return len(fd.identifies) > identifies_before and (not wants_sync or synced())

        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not ready():
            if proc.returncode is not None:
                raise BotStartError(f"bot exited with code {proc.returncode} before it was ready\n{self.log_tail()}")
            if loop.time() > deadline:
                what = "IDENTIFY" if len(fd.identifies) <= identifies_before else "command sync (PUT)"
                raise BotStartError(f"bot not ready after {timeout}s (no {what})\n{self.log_tail()}")
            with contextlib.suppress(AssertionError):
                await fd.wait_for(ready, timeout=0.1)

    async def stop_bot(self, timeout: float = STOP_TIMEOUT) -> int | None:  # noqa: ASYNC109
        """SIGTERM, wait, then SIGKILL. Returns the exit code (None if no process)."""
        if self.proc is None:
            return None
        code = await terminate(self.proc, timeout)
        self.returncodes.append(code)
        return code

    async def kill_bot(self) -> int | None:
        """SIGKILL (a crash): no chance to clean up."""
        proc = self.proc
        if proc is None:
            return None
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        await proc.wait()
        assert proc.returncode is not None
        self.returncodes.append(proc.returncode)
        return proc.returncode

    async def restart_bot(self, *, kill: bool = False, **env_overrides: str | None) -> None:
        """Stop (or kill) and start again with the same database and the previous overrides."""
        if kill:
            await self.kill_bot()
        else:
            await self.stop_bot()
        await self.start_bot(**{**self._env_overrides, **env_overrides})  # type: ignore[arg-type]

    @property
    def bot_running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    # ------------------------------------------------------------------------------------- logs
    def log_text(self) -> str:
        if self._log_file is not None:
            self._log_file.flush()
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = 60) -> str:
        tail = self.log_text().splitlines()[-lines:]
        return "----- bot log (tail) -----\n" + "\n".join(tail)

    async def wait_for_log(self, needle: str, timeout: float = 10) -> None:  # noqa: ASYNC109
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while needle not in self.log_text():
            if loop.time() > deadline:
                raise AssertionError(f"{needle!r} not in bot log after {timeout}s\n{self.log_tail()}")
            await asyncio.sleep(0.05)

    def close(self) -> None:
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None


@contextlib.asynccontextmanager
async def running_rig(
    tmp_path: Path, *, images_port: int = 0, api_base: str | None = None
) -> AsyncIterator[tuple[Rig, list[str]]]:
    """A started fake Discord and fake Images API (on ``images_port``; the bot is pointed at ``api_base``, a
    proxy in front of it, when given), stopped afterwards. The list it yields is filled at the end with what
    went wrong in every test: schema and mention violations, a Traceback the test did not expect."""
    fd = FakeDiscord()
    await fd.start()
    images = FakeImagesAPI()
    images_base = await images.start(port=images_port)
    r = Rig(fd, images, api_base or images_base, tmp_path)
    problems: list[str] = []
    try:
        yield r, problems
    finally:
        try:
            await r.stop_bot()
        finally:
            await images.stop()
            await fd.stop()
            r.close()
        if fd.validation_errors:
            problems.append("schema violations:\n  " + "\n  ".join(fd.validation_errors[:20]))
        if fd.mention_violations:
            problems.append(f"messages without allowed_mentions parse=[]: {fd.mention_violations[:5]}")
        if "Traceback" in r.log_text() and not r.allow_tracebacks:
            problems.append("Traceback in the bot log (set rig.allow_tracebacks = True if expected)")


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    """A started fake Discord and fake Images API; the test starts the bot (``await rig.start_bot()``)."""
    async with running_rig(tmp_path) as (r, problems):
        yield r
    if problems:
        pytest.fail("\n".join(problems) + "\n" + r.log_tail(80), pytrace=False)
