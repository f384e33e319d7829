"""The second SQLite connection of an open database: reads, and the WAL checkpoints the writer no longer does.

The bot's write transactions run their statements on the event loop's thread (``sqlite.SqliteBackend``):
each is microseconds, less than a hop to a worker thread costs. Two things would make such a transaction
block the loop, and this connection takes both away from the writing one:

* **Checkpoints.** In WAL mode the COMMIT that takes the log past 1,000 pages copies it into the database
  file and syncs it, milliseconds to tens of them. The writing connection is opened with
  ``wal_autocheckpoint=0``; after every ``CHECKPOINT_EVERY`` commits (and at most ``CHECKPOINT_IDLE`` seconds
  after any commit) this connection runs ``PRAGMA wal_checkpoint(PASSIVE)`` on its own aiosqlite thread, which
  waits for no writer and blocks none.
* **Long reads.** One SQLite connection runs one statement at a time: a report's aggregate running on the
  writer's worker thread would hold up the next reservation, on the loop. Read transactions and plain reads
  go to this connection instead (WAL lets them read beside the writer). Read transactions hold a lock of
  their own (one snapshot at a time on the connection); plain reads take none, as before, so one may run
  inside another coroutine's snapshot and miss a commit made in the milliseconds since it began.

``open_database`` (``bot/storage/db.py``) starts one per connection it opens; ``side_of(conn)`` finds it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import AsyncIterator
from pathlib import Path

import aiosqlite

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 5000
"""How long a statement waits for another connection's write lock (off the event loop) before failing."""
CHECKPOINT_EVERY = 200
"""Commits between checkpoints: a reservation writes a handful of pages, so ~1,000 pages of log."""
CHECKPOINT_IDLE = 5.0
"""Seconds after a commit by which it is checkpointed however few followed it."""

_SIDES: weakref.WeakKeyDictionary[aiosqlite.Connection, SideConnection] = weakref.WeakKeyDictionary()


def side_of(conn: aiosqlite.Connection) -> SideConnection | None:
    """The side connection ``open_database`` started for ``conn`` (None for a connection opened otherwise,
    whose commits then checkpoint as SQLite does by default)."""
    return _SIDES.get(conn)


class SideConnection:
    def __init__(self, reader: aiosqlite.Connection) -> None:
        self.reader = reader
        self.lock = asyncio.Lock()
        self.checkpoints = 0
        self._commits = 0
        self._wake = asyncio.Event()

    def committed(self) -> None:
        """The writer committed: checkpoint after ``CHECKPOINT_EVERY`` commits, or ``CHECKPOINT_IDLE`` seconds
        after the first of fewer."""
        self._commits += 1
        if self._commits >= CHECKPOINT_EVERY or self._commits == 1:
            self._wake.set()

    async def checkpoint(self) -> None:
        self._commits = 0
        try:
            await self.reader.execute("PRAGMA wal_checkpoint(PASSIVE)")
            self.checkpoints += 1
        except aiosqlite.Error as exc:  # a busy or failing checkpoint is retried with the next commits
            log.warning("SQLite WAL checkpoint failed (%s)", type(exc).__name__)

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self._commits < CHECKPOINT_EVERY:  # a first commit: wait for more, up to CHECKPOINT_IDLE
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), CHECKPOINT_IDLE)
                self._wake.clear()
            await self.checkpoint()


@contextlib.asynccontextmanager
async def side_connection(writer: aiosqlite.Connection, path: Path, busy_ms: int) -> AsyncIterator[None]:
    """Open the side connection of ``writer`` (a WAL database at ``path``) and run its checkpoints until
    the block ends; the writer stops checkpointing itself meanwhile."""
    reader = await aiosqlite.connect(path, isolation_level=None)
    try:
        reader.row_factory = aiosqlite.Row
        await reader.execute(f"PRAGMA busy_timeout={int(busy_ms)}")
        side = SideConnection(reader)
        await writer.execute("PRAGMA wal_autocheckpoint=0")
        _SIDES[writer] = side
        task = asyncio.create_task(side.run(), name="sqlite-checkpoints")
        try:
            yield
        finally:
            _SIDES.pop(writer, None)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await writer.execute("PRAGMA wal_autocheckpoint=1000")
            await side.checkpoint()
    finally:
        await reader.close()
