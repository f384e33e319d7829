"""Database growth is the operator's choice: after ``PROMPT_RETENTION_DAYS`` a job's personal text (the
prompt, the address of its input image) is erased from its row, while the money figures (images, costs,
tokens, status, times) stay for the budget, the reports and the ledger's CSV. Expired quota counters go too.

``run`` purges once at start and then every ``interval`` seconds, in small batches so no transaction holds
the database for long. A job still reserved or running is never touched.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from bot.quota import counters
from bot.storage.clock import ts
from bot.storage.database import Database

log = logging.getLogger(__name__)

DEFAULT_INTERVAL = 3600.0  # seconds between purges
_BATCH = 200  # rows per transaction: on SQLite its statements run on the event loop (storage.sqlite)
_PURGE = (
    "UPDATE jobs SET prompt = '', source_image_url = NULL, purged_at = ? WHERE id IN ("
    "SELECT id FROM jobs WHERE created_at < ? AND purged_at IS NULL AND status NOT IN ('reserved', 'running') "
    "ORDER BY id LIMIT ?)"
)


class PromptRetention:
    def __init__(self, db: Database, days: int, *, interval: float = DEFAULT_INTERVAL) -> None:
        if days < 0:
            raise ValueError("days must be >= 0 (0 keeps prompts forever)")
        self.db = db
        self.days = days
        self.interval = interval

    async def purge_once(self) -> int:
        """Erase the personal text of jobs created more than ``days`` ago; returns how many jobs changed."""
        if self.days == 0:
            return 0
        now = self.db.now()
        cutoff = ts(now - timedelta(days=self.days))
        purged = 0
        while True:
            async with self.db.write() as tx:
                changed = await tx.execute(_PURGE, (ts(now), cutoff, _BATCH))
            purged += changed
            if changed < _BATCH:
                break
        async with self.db.write() as tx:
            # A day's grace: a counter is read up to its period's end, by a clock that may run a little behind.
            await counters.drop_expired(tx, now - timedelta(days=1))
        if purged:
            log.info("erased the prompts of %d job(s) older than %d days", purged, self.days)
        return purged

    async def run(self) -> None:
        """Purge now and every ``interval`` seconds, until cancelled; a failure is logged and retried."""
        while True:
            try:
                await self.purge_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("purging old prompts failed; retrying in %.0f s", self.interval)
            await asyncio.sleep(self.interval)
