"""Instance leases: each bot process (an *instance*, with an id) proves it is alive by renewing a row of
``instances`` whose ``lease_until`` lies ``ttl`` seconds ahead (``run`` renews it every ttl/3).

Whatever a process owns in the database (its jobs: ``bot/quota/ledger.py``; its image slots:
``bot/jobs/cluster.py``) names its instance id; crash recovery gives back what belongs to instances whose lease
has expired (``ORPHANED``), never a live sibling's. An instance id must be used by one running process at a
time: ``bot/storage/connect.py`` derives it from the shard range a process serves, and ``wait_for_predecessor``
refuses a second live process with the same id.

Lease times are the database clock's (UTC); the processes' clocks must agree to well within ttl.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from bot.storage.clock import ts
from bot.storage.completion import runs_to_completion
from bot.storage.sqlite import Backend

log = logging.getLogger(__name__)

DEFAULT_LEASE_TTL = 30.0  # seconds

ORPHANED = "owner NOT IN (SELECT instance_id FROM instances WHERE lease_until > ?)"
"""SQL condition: a row's ``owner`` has no live lease (one parameter: now, as ``ts``)."""

_UPSERT_LEASE = (
    "INSERT INTO instances (instance_id, lease_until, started_at, renewed_at) VALUES (?, ?, ?, ?) "
    "ON CONFLICT(instance_id) DO UPDATE SET lease_until = excluded.lease_until, renewed_at = excluded.renewed_at"
)


class InstanceInUse(Exception):
    """Another running process renews the lease of this instance id (the same SHARD_IDS twice)."""


class InstanceLease:
    """This process's row of ``instances``; ``after_renew`` callbacks run after each renewal (the ledger's
    recovery of jobs that siblings whose lease expired left behind)."""

    def __init__(
        self, backend: Backend, instance_id: str, now: Callable[[], datetime], ttl: float = DEFAULT_LEASE_TTL
    ) -> None:
        self.backend = backend
        self.instance_id = instance_id
        self.ttl = ttl
        self._now = now
        self.after_renew: list[Callable[[], Awaitable[object]]] = []

    async def wait_for_predecessor(self, *, poll: float = 0.25) -> None:
        """Before taking this instance id: wait while its lease is live, which happens after a crash
        (the dead process's lease runs out within ``ttl``; a clean stop releases it at once).
        Raises ``InstanceInUse`` when the lease is renewed meanwhile: a process with this id runs."""
        first: str | None = None
        while True:
            async with self.backend.plain() as tx:
                row = await tx.fetchone(
                    "SELECT lease_until, renewed_at FROM instances WHERE instance_id = ?", (self.instance_id,)
                )
            if row is None or str(row[0]) <= ts(self._now()):
                return
            if first is None:
                first = str(row[1])
                log.warning(
                    "instance %s: the lease of an earlier process with this id is live until %s; waiting for it "
                    "to expire (a process killed without a clean stop)",
                    self.instance_id,
                    row[0],
                )
            elif str(row[1]) != first:
                raise InstanceInUse(
                    f"another running process serves the same shards (instance {self.instance_id}): "
                    "give every process its own SHARD_IDS"
                )
            await asyncio.sleep(poll)

    @runs_to_completion
    async def renew(self) -> None:
        """Register or extend this instance's lease to now + ``ttl``."""
        now = self._now()
        until = now + timedelta(seconds=self.ttl)
        async with self.backend.transaction(write=True) as tx:
            await tx.execute(_UPSERT_LEASE, (self.instance_id, ts(until), ts(now), ts(now)))

    @runs_to_completion
    async def release(self) -> None:
        """On a clean stop: drop the lease, so a successor need not wait for it to expire."""
        async with self.backend.transaction(write=True) as tx:
            await tx.execute("DELETE FROM instances WHERE instance_id = ?", (self.instance_id,))

    async def run(self) -> None:
        """Renew the lease every ttl/3, then run ``after_renew``, until cancelled. A failure is logged and
        retried on the next turn."""
        while True:
            await asyncio.sleep(self.ttl / 3)
            try:
                await self.renew()
                for callback in self.after_renew:
                    await callback()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("renewing the instance lease failed; retrying")


async def stop_lease(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
