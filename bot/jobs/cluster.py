"""One concurrency cap and one fair queue for every process sharing a PostgreSQL database.

``ClusterScheduler`` does what ``bot/jobs/scheduler.py``'s ``FairScheduler`` does in one process (at most
``capacity`` image streams at once, waiting streams served round-robin between users), with the
state in the database (``bot/storage/migrations/postgresql/0005_image_slots.sql``):

* a stream that wants a slot inserts a ``waiting`` row of ``image_slots``, owned by this process's
  instance (``bot/storage/leases.py``); holding a slot is the row being ``running``;
* every decision (enqueue, release, grant) is one transaction under one advisory lock: rows of
  instances whose lease has expired are deleted (a killed process's slots come back once its lease
  runs out), and while fewer than ``capacity`` rows are running, the waiting row of the user with the
  lowest turn in ``image_turns`` becomes running and that user moves to the end of the line. A grant
  may go to a stream of another process: it is told by ``NOTIFY`` (and, should a notification be
  lost, finds out by polling every ``POLL_SECONDS``);
* a slot is released by deleting its row, in a task of its own (``release`` is not a coroutine, as
  in ``FairScheduler``); until it lands the slot still counts, so the cap is never exceeded.

Every process must use the same ``MAX_CONCURRENT_IMAGES``: each grants up to its own value.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import asyncpg

from bot.storage.clock import ts
from bot.storage.database import Database
from bot.storage.postgres import PostgresBackend
from bot.storage.sqlite import Tx

log = logging.getLogger(__name__)

CHANNEL = "imagebot_slots"
POLL_SECONDS = 1.0
_SLOTS_LOCK = (0x1A6E, 3)  # two-int advisory key: "imagebot", image slots (bot/storage/postgres.py has 1 and 2)
_LIVE = "SELECT instance_id FROM instances WHERE lease_until > ?"
_NEXT = (
    "SELECT s.id, s.user_id FROM image_slots s JOIN image_turns t ON t.user_id = s.user_id "
    "WHERE s.state = 'waiting' ORDER BY t.turn, s.id LIMIT 1"
)
_LINE = (
    "SELECT s.id FROM image_slots s JOIN image_turns t ON t.user_id = s.user_id "
    "WHERE s.state = 'waiting' ORDER BY t.turn, s.id"
)
_END_OF_LINE = "(SELECT COALESCE(MAX(turn), 0) + 1 FROM image_turns)"


class ClusterScheduler:
    """At most ``capacity`` image streams at once across every process on the database."""

    def __init__(self, db: Database, capacity: int) -> None:
        if not isinstance(db.backend, PostgresBackend) or db.instance_id is None:
            raise TypeError("ClusterScheduler needs a PostgreSQL database with an instance id")
        self.db = db
        self.backend: PostgresBackend = db.backend
        self.instance_id: str = db.instance_id
        self.capacity = capacity
        self.running = 0  # streams of this process holding a slot
        self._waiting: dict[int, asyncio.Future[bool]] = {}  # row id -> True when granted
        self._held: dict[asyncio.Task[Any], list[int]] = {}  # the rows each task holds a slot by
        self._on_wait: dict[int, tuple[Callable[[int], Any], list[int]]] = {}
        self._wake = asyncio.Event()
        self._pump: asyncio.Task[None] | None = None
        self._releases: set[asyncio.Task[None]] = set()
        self._listener: asyncpg.Connection | None = None

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Forget the rows an earlier life of this instance left, and listen for grants."""
        async with self.backend.transaction(write=True) as tx:
            await self._lock(tx)
            await tx.execute("DELETE FROM image_slots WHERE instance_id = ?", (self.instance_id,))
            await self._grant(tx)
        conn = await self.backend.pool.acquire()
        try:
            await conn.add_listener(CHANNEL, self._notified)
        except BaseException:
            await self.backend.pool.release(conn)
            raise
        self._listener = conn
        self._pump = asyncio.create_task(self._run_pump(), name="image-slots")

    async def close(self) -> None:
        """Stop the pump, let pending releases land, and delete whatever rows this process still has."""
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump
            self._pump = None
        if self._releases:
            await asyncio.gather(*self._releases, return_exceptions=True)
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await self._listener.remove_listener(CHANNEL, self._notified)
            await self.backend.pool.release(self._listener)
            self._listener = None
        with contextlib.suppress(Exception):
            async with self.backend.transaction(write=True) as tx:
                await self._lock(tx)
                await tx.execute("DELETE FROM image_slots WHERE instance_id = ?", (self.instance_id,))
                if await self._grant(tx):
                    await tx.execute(f"NOTIFY {CHANNEL}")

    # ------------------------------------------------------------------ the FairScheduler interface

    @property
    def waiting(self) -> int:
        """Streams of this process waiting for a slot."""
        return len(self._waiting)

    async def acquire(self, user_id: int, on_wait: Any = None) -> None:
        """Wait for a slot. The slot belongs to the calling task, which gives it back with ``release``."""
        while True:
            fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
            row_id = -1
            enqueue = asyncio.ensure_future(self._enqueue(user_id))
            try:
                row_id, granted = await asyncio.shield(enqueue)
                if not granted:
                    self._waiting[row_id] = fut
                    if on_wait is not None:
                        self._on_wait[row_id] = (on_wait, [0])
                    self._wake.set()
                    granted = await fut  # False: the row was dropped meanwhile (see _poll); queue again
            except BaseException:
                self._waiting.pop(row_id, None)
                if row_id >= 0:  # waiting or (just) granted: the row goes, and its slot to the next in line
                    self._spawn_release(row_id)
                else:  # cancelled while the row was being written: it goes once written
                    enqueue.add_done_callback(self._drop_enqueued)
                raise
            finally:
                self._on_wait.pop(row_id, None)
            if granted:
                break
        self.running += 1
        task = asyncio.current_task()
        if task is not None:
            self._held.setdefault(task, []).append(row_id)

    def release(self) -> None:
        """Give back a slot the calling task holds."""
        self.running -= 1
        task = asyncio.current_task()
        rows = self._held.get(task) if task is not None else None
        row_id = rows.pop() if rows else None
        if task is not None and not rows:
            self._held.pop(task, None)
        self._spawn_release(row_id)

    # ------------------------------------------------------------------ database steps

    async def _lock(self, tx: Tx) -> None:
        await tx.execute("SELECT pg_advisory_xact_lock(?, ?)", _SLOTS_LOCK)

    async def _grant(self, tx: Tx) -> list[int]:
        """Under the lock: drop dead instances' rows, then fill free slots in turn; returns the rows granted."""
        now = ts(self.db.now())
        await tx.execute(f"DELETE FROM image_slots WHERE instance_id NOT IN ({_LIVE})", (now,))
        running = int((await tx.fetchone("SELECT COUNT(*) FROM image_slots WHERE state = 'running'"))[0])
        granted: list[int] = []
        while running < self.capacity:
            row = await tx.fetchone(_NEXT)
            if row is None:
                break
            await tx.execute("UPDATE image_slots SET state = 'running', granted_at = ? WHERE id = ?", (now, row[0]))
            await tx.execute(f"UPDATE image_turns SET turn = {_END_OF_LINE} WHERE user_id = ?", (row[1],))
            granted.append(int(row[0]))
            running += 1
        await tx.execute("DELETE FROM image_turns WHERE user_id NOT IN (SELECT user_id FROM image_slots)")
        return granted

    async def _enqueue(self, user_id: int) -> tuple[int, bool]:
        async with self.backend.transaction(write=True) as tx:
            await self._lock(tx)
            row_id = await tx.insert(
                "INSERT INTO image_slots (instance_id, user_id, queued_at) VALUES (?, ?, ?) RETURNING id",
                (self.instance_id, user_id, ts(self.db.now())),
            )
            await tx.execute(
                f"INSERT INTO image_turns (user_id, turn) VALUES (?, {_END_OF_LINE}) ON CONFLICT (user_id) DO NOTHING",
                (user_id,),
            )
            granted = await self._grant(tx)
            if any(g != row_id for g in granted):
                await tx.execute(f"NOTIFY {CHANNEL}")
        return row_id, row_id in granted

    async def _release(self, row_id: int | None) -> None:
        async with self.backend.transaction(write=True) as tx:
            await self._lock(tx)
            if row_id is None:
                await tx.execute(
                    "DELETE FROM image_slots WHERE id = (SELECT MAX(id) FROM image_slots "
                    "WHERE instance_id = ? AND state = 'running')",
                    (self.instance_id,),
                )
            else:
                await tx.execute("DELETE FROM image_slots WHERE id = ?", (row_id,))
            if await self._grant(tx):
                await tx.execute(f"NOTIFY {CHANNEL}")

    def _drop_enqueued(self, enqueue: asyncio.Future[tuple[int, bool]]) -> None:
        if not enqueue.cancelled() and enqueue.exception() is None:
            self._spawn_release(enqueue.result()[0])

    def _spawn_release(self, row_id: int | None) -> None:
        task = asyncio.ensure_future(self._release_retrying(row_id))
        self._releases.add(task)
        task.add_done_callback(self._releases.discard)

    async def _release_retrying(self, row_id: int | None) -> None:
        for attempt in range(5):
            try:
                await self._release(row_id)
                return
            except Exception:
                log.exception("releasing an image slot failed (attempt %d); retrying", attempt + 1)
                await asyncio.sleep(0.5 * (attempt + 1))
        log.error("an image slot could not be released; it is freed when this process's lease expires")

    # ------------------------------------------------------------------ the pump

    def _notified(self, *_: object) -> None:
        self._wake.set()

    async def _run_pump(self) -> None:
        """While streams of this process wait: on every notification (or poll), grant what is free and
        hand this process's granted rows to their waiters; tell waiters their place in line."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), POLL_SECONDS)
            self._wake.clear()
            if not self._waiting:
                continue
            try:
                await self._poll()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("checking the image slots failed; retrying")

    async def _poll(self) -> None:
        async with self.backend.transaction(write=True) as tx:
            await self._lock(tx)
            granted = await self._grant(tx)
            mine = await tx.fetchall(
                "SELECT id, state FROM image_slots WHERE instance_id = ? ORDER BY id", (self.instance_id,)
            )
            line = [int(r[0]) for r in await tx.fetchall(_LINE)] if self._on_wait else []
            if any(g not in self._waiting for g in granted):
                await tx.execute(f"NOTIFY {CHANNEL}")
        states = {int(r[0]): r[1] for r in mine}
        for row_id, fut in list(self._waiting.items()):
            state = states.get(row_id)
            if state == "waiting":
                continue
            del self._waiting[row_id]
            if state is None:  # deleted by a sibling that found this process's lease expired
                log.warning(
                    "image slot request %d was dropped (this process's lease had expired); queued again", row_id
                )
            if not fut.done():
                fut.set_result(state == "running")
            elif state == "running":  # its waiter is gone: give the slot on
                self._spawn_release(row_id)
        places = {row_id: place for place, row_id in enumerate(line, 1)}
        for row_id, (on_wait, shown) in list(self._on_wait.items()):
            place = places.get(row_id)
            if place is not None and place != shown[0]:
                shown[0] = place
                with contextlib.suppress(Exception):
                    on_wait(place)
