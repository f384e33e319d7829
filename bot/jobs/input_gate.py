"""Before a member's files are downloaded and decoded: bounds on that work, and a cheap quota check.

Preparing an edit's inputs (download, decode, normalise) costs the bot memory and CPU before the job's
reservation decides anything, so a flood of edit requests must not turn into a flood of downloads:

* each person has at most ``per_user`` preparations under way at once (the bot uses their job limit,
  ``MAX_QUEUE_PER_USER``); one more is refused (``busy``) rather than queued, so a flood holds nothing;
* all people together have at most ``total`` at once; the rest wait their turn.

A member the ledger refuses (blocked, out of images) downloads nothing at all: the job is reserved before
its inputs are prepared (``JobService.open``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from bot.imaging.inputs import InputRejected

__all__ = ["InputGate"]


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
