"""Jobs owned by a process: instance leases and crash recovery that spares live siblings.

Each bot process is an *instance* with an id (``QuotaStore.instance_id``), written as the
``owner`` of every job it reserves. While it runs it renews a lease, a row of ``instances``
whose ``lease_until`` lies ``ttl`` seconds ahead (``run_lease`` renews it every ttl/3).

Recovery refunds (status 'crashed') the jobs still reserved or running whose owner's lease has
expired, never those of an instance whose lease is live. At start (``at_start=True``) it also
refunds the jobs of its own id, which can only be left by an earlier life of this instance, and
jobs without owner (written before leases existed). So an instance id must be used by one running
process at a time: ``bot/quota/connect.py`` derives it from the shard range a process serves.

Lease times are the store's clock (UTC); the processes' clocks must agree to well within ttl.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

from bot.quota.base import runs_to_completion
from bot.quota.ledger import Ledger
from bot.quota.records import ts

log = logging.getLogger(__name__)

DEFAULT_LEASE_TTL = 30.0  # seconds

_UPSERT_LEASE = (
    "INSERT INTO instances (instance_id, lease_until, started_at, renewed_at) VALUES (?, ?, ?, ?) "
    "ON CONFLICT(instance_id) DO UPDATE SET lease_until = excluded.lease_until, renewed_at = excluded.renewed_at"
)
_ORPHANED = "owner NOT IN (SELECT instance_id FROM instances WHERE lease_until > ?)"
_RECOVER = (
    "UPDATE jobs SET status = 'crashed', finished_at = ?, error = COALESCE(error, ?) "
    "WHERE status IN ('reserved', 'running') AND "
)
_RECOVER_AT_START = _RECOVER + f"(owner IS NULL OR owner = ? OR {_ORPHANED}) RETURNING id"
_RECOVER_SIBLINGS = _RECOVER + f"owner IS NOT NULL AND owner <> ? AND {_ORPHANED} RETURNING id"


class InstanceInUse(Exception):
    """Another running process renews the lease of this instance id (the same SHARD_IDS twice)."""


class Leases(Ledger):
    """The ``instances`` table and crash recovery."""

    lease_ttl: float = DEFAULT_LEASE_TTL

    async def wait_for_predecessor(self, *, poll: float = 0.25) -> None:
        """Before taking this instance id: wait while its lease is live, which happens after a crash
        (the dead process's lease runs out within ``lease_ttl``; a clean stop releases it at once).
        Raises ``InstanceInUse`` when the lease is renewed meanwhile: a process with this id runs."""
        first: str | None = None
        while True:
            async with self._plain() as tx:
                row = await tx.fetchone(
                    "SELECT lease_until, renewed_at FROM instances WHERE instance_id = ?", (self.instance_id,)
                )
            if row is None or str(row[0]) <= ts(self.now()):
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
    async def renew_lease(self) -> None:
        """Register or extend this instance's lease to now + ``lease_ttl``."""
        if self.instance_id is None:
            raise RuntimeError("this store has no instance_id")
        now = self.now()
        until = now + timedelta(seconds=self.lease_ttl)
        async with self._write() as tx:
            await tx.execute(_UPSERT_LEASE, (self.instance_id, ts(until), ts(now), ts(now)))

    @runs_to_completion
    async def release_lease(self) -> None:
        """On a clean stop: drop the lease, so a successor need not wait for it to expire."""
        if self.instance_id is None:
            return
        async with self._write() as tx:
            await tx.execute("DELETE FROM instances WHERE instance_id = ?", (self.instance_id,))

    @runs_to_completion
    async def recover_reservations(self, *, at_start: bool = True) -> list[int]:
        """Refund (status 'crashed') every job left reserved/running by an instance that is gone.

        ``at_start`` also refunds this instance's own earlier jobs and jobs without owner; call
        it so once, before this store reserves anything. Returns the job ids, in order.
        """
        now = ts(self.now())
        if at_start:
            sql, error = _RECOVER_AT_START, "interrupted: bot restarted"
        else:
            sql, error = _RECOVER_SIBLINGS, "interrupted: its process stopped renewing its lease"
        async with self._write() as tx:
            await tx.lock_recovery()
            rows = await tx.fetchall(sql, (now, error, self.instance_id, now))
        ids = sorted(int(r[0]) for r in rows)
        if ids:
            why = "interrupted by a restart" if at_start else "of instances whose lease expired"
            log.warning("refunded %d job(s) %s: %s", len(ids), why, ids)
        return ids

    async def own_active_jobs(self, *, idle_seconds: float) -> list[int]:
        """This instance's jobs still reserved or running whose last start (or creation) lies more than
        ``idle_seconds`` back: candidates for ``JobService.reclaim_overdue``."""
        before = ts(self.now() - timedelta(seconds=idle_seconds))
        async with self._plain() as tx:
            rows = await tx.fetchall(
                "SELECT id FROM jobs WHERE owner = ? AND status IN ('reserved', 'running') "
                "AND COALESCE(started_at, created_at) < ? ORDER BY id",
                (self.instance_id, before),
            )
        return [int(r[0]) for r in rows]

    async def run_lease(self) -> None:
        """Renew the lease every ttl/3 and refund the jobs of siblings whose lease expired, until
        cancelled. A failed renewal is logged and retried on the next turn."""
        while True:
            await asyncio.sleep(self.lease_ttl / 3)
            try:
                await self.renew_lease()
                await self.recover_reservations(at_start=False)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("renewing the instance lease failed; retrying")


async def stop_lease(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
