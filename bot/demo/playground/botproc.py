"""The real bot as a subprocess (``python -m bot run``) pointed at the local Discord and an image service."""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from bot.demo.processes import terminate

# Settings of the person's own deployment that must not leak into the playground's bot: the real Discord
# token and endpoints, another database, an .env file elsewhere. OpenAI's are passed on only on purpose.
_OWN_PREFIXES = ("DISCORD_", "OPENAI_", "IMAGEBOT_")
_OWN_NAMES = ("DATABASE_URL", "HEALTH_ADDRESS", "DEMO_MODE", "SHARD_IDS", "SHARD_COUNT")


@dataclass(frozen=True)
class ImageService:
    """Where the bot gets its images: the built-in service, or the real API (which costs money)."""

    base_url: str
    api_key: str
    real: bool


def bot_env(
    discord_token: str, api_base: str, gateway_url: str, images: ImageService, database: Path
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_OWN_PREFIXES) and k not in _OWN_NAMES}
    env.update(
        {
            "PYTHONUNBUFFERED": "1",
            "DISCORD_TOKEN": discord_token,
            "DISCORD_API_BASE": api_base,
            "DISCORD_GATEWAY_URL": gateway_url,
            "OPENAI_API_KEY": images.api_key,
            "OPENAI_BASE_URL": images.base_url,
            "DATABASE_URL": f"sqlite:///{database}",
            "SYNC_COMMANDS": "always",
            "PARTIAL_IMAGES": os.environ.get("PARTIAL_IMAGES", "2"),
            "SHUTDOWN_GRACE": "2",
        }
    )
    # The package this playground runs from, whether installed or a checkout (the bot runs in another folder).
    root = str(Path(__file__).resolve().parents[3])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    return env


class BotProcess:
    """Starts ``python -m bot run`` in ``workdir`` (so no ``.env`` of the caller's is read) with its output
    in ``log_path``; ``stop`` sends SIGTERM, then SIGKILL after a grace period."""

    def __init__(self, env: dict[str, str], workdir: Path, log_path: Path) -> None:
        self.env = env
        self.workdir = workdir
        self.log_path = log_path
        self.proc: asyncio.subprocess.Process | None = None
        self._log: IO[bytes] | None = None

    async def start(self) -> None:
        self._log = self.log_path.open("ab")
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run",
            cwd=self.workdir, env=self.env, stdin=asyncio.subprocess.DEVNULL,
            stdout=self._log, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip

    @property
    def exited(self) -> int | None:
        return None if self.proc is None else self.proc.returncode

    def log_tail(self, lines: int = 30) -> str:
        if self._log is not None:
            self._log.flush()
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    async def stop(self, grace: float = 8.0) -> None:
        if self.proc is not None:
            await terminate(self.proc, grace)
        if self._log is not None:
            self._log.close()
            self._log = None
