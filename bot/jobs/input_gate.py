"""Before a member's files are downloaded and decoded: bounds on that work, and a cheap quota check.

Preparing an edit's inputs (download, decode, normalise) costs the bot memory and CPU before the job's
reservation decides anything, so a flood of edit requests must not turn into a flood of downloads:

* each person has at most ``per_user`` preparations under way at once (the bot uses their job limit,
  ``MAX_QUEUE_PER_USER``); one more is refused (``busy``) rather than queued, so a flood holds nothing;
* all people together have at most ``total`` at once; the rest wait their turn.
* ``precheck`` refuses, from a read of the ledger, a member who could not be granted the images anyway
  (blocked, or out of images for the day or month): nothing is downloaded for them. The reservation still
  decides (atomically) when the job starts; this only spares the downloads.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence

from bot.imaging.inputs import InputRejected
from bot.quota import QuotaExceeded, QuotaStore
from bot.quota.policy import check_images

__all__ = ["InputGate", "precheck"]


class InputGate:
    def __init__(self, *, per_user: int = 2, total: int = 4) -> None:
        self.per_user = per_user
        self._total = asyncio.Semaphore(total)
        self._busy: dict[int, int] = {}

    def busy(self, user_id: int) -> int:
        return self._busy.get(user_id, 0)

    @contextlib.asynccontextmanager
    async def preparing(self, user_id: int) -> AsyncIterator[None]:
        """Hold one of ``user_id``'s preparation places (``InputRejected("busy")`` when none is left) and
        one of the bot's (waiting for it)."""
        if self._busy.get(user_id, 0) >= self.per_user:
            raise InputRejected("busy")
        self._busy[user_id] = self._busy.get(user_id, 0) + 1
        try:
            async with self._total:
                yield
        finally:
            left = self._busy[user_id] - 1
            if left:
                self._busy[user_id] = left
            else:
                del self._busy[user_id]


async def precheck(
    quota: QuotaStore, *, guild_id: int | None, user_id: int, role_ids: Sequence[int], images: int
) -> None:
    """``QuotaExceeded`` when ``user_id`` certainly cannot be granted ``images`` now (a read, no lock)."""
    usage = await quota.usage(guild_id, user_id, role_ids)
    denial = check_images(usage.limits, daily_used=usage.daily_used, monthly_used=usage.monthly_used, images=images)
    if denial is not None:
        resets_at = usage.daily_resets_at if denial.period == "daily" else usage.monthly_resets_at
        raise QuotaExceeded(denial.scope, denial.limit, denial.used, resets_at, images)
