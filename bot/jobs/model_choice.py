"""Which of the configured image models members of a server may use (moderators choose; audited).

The operator configures the models (``IMAGE_MODEL``, the default, and ``IMAGE_MODELS``); moderators
allow a subset in their server with ``/quota models``. A server that never chose has ``IMAGE_MODEL`` only.
A model the operator removed from the configuration is dropped from every server's choice on reading.
Runs on the quota store's backend (SQLite or PostgreSQL); one small read per command.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from bot.images_api.models import ModelInfo
from bot.storage.sqlite import Backend

__all__ = ["ModelChoice"]


def _now() -> datetime:
    return datetime.now(UTC)


class ModelChoice:
    def __init__(self, backend: Backend, models: dict[str, ModelInfo], *, clock: Callable[[], datetime] = _now) -> None:
        if not models:
            raise ValueError("at least one configured model")
        self.backend = backend
        self.models = models  # name -> info; the first is IMAGE_MODEL
        self.default = next(iter(models))
        self._clock = clock

    @property
    def configured(self) -> list[str]:
        return list(self.models)

    def info(self, name: str | None) -> ModelInfo:
        return self.models[name or self.default]

    async def allowed(self, guild_id: int | None) -> list[str]:
        """The models members of ``guild_id`` may use, the default first when allowed."""
        if guild_id is None or len(self.models) == 1:
            return [self.default]
        async with self.backend.transaction(write=False) as tx:
            row = await tx.fetchone("SELECT models FROM guild_models WHERE guild_id = ?", (guild_id,))
        if row is None:
            return [self.default]
        try:
            names = json.loads(row["models"])
        except ValueError:
            return [self.default]
        chosen = [n for n in self.models if n in names]
        return chosen or [self.default]

    async def set_allowed(self, guild_id: int, names: Sequence[str], *, actor_id: int) -> tuple[list[str], list[str]]:
        """Allow exactly ``names`` (configured ones, at least one); returns (before, after). Audited."""
        after = [n for n in self.models if n in set(names)]
        if not after:
            raise ValueError("at least one model must stay allowed")
        before = await self.allowed(guild_id)
        now = self._clock().astimezone(UTC).isoformat(timespec="microseconds")
        async with self.backend.transaction(write=True) as tx:
            await tx.execute(
                "INSERT INTO guild_models (guild_id, models, updated_by, updated_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (guild_id) DO UPDATE SET models = excluded.models, updated_by = excluded.updated_by, "
                "updated_at = excluded.updated_at",
                (guild_id, json.dumps(after), actor_id, now),
            )
            await tx.execute(
                "INSERT INTO audit_log (guild_id, actor_id, action, target_id, details, created_at) "
                "VALUES (?, ?, 'set_models', NULL, ?, ?)",
                (guild_id, actor_id, json.dumps({"old": ", ".join(before), "new": ", ".join(after)}), now),
            )
        return before, after
