"""``Database``: what every repository of the bot builds on (the ledger, moderation, reports, prompt rules).

It holds the backend (SQLite or PostgreSQL, already migrated: ``bot/storage/connect.py`` opens it), the clock
every stored time is read from, this process's instance lease (``leases.py``), the key-value table and the
health check's ping. Repositories take a ``Database`` and open their transactions through it; nothing reaches
storage through the quota domain.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import datetime

from bot.storage.clock import as_utc, utc_now
from bot.storage.db import kv_get, kv_set
from bot.storage.leases import DEFAULT_LEASE_TTL, InstanceLease
from bot.storage.sqlite import Backend, Tx


class Database:
    def __init__(
        self,
        backend: Backend,
        *,
        clock: Callable[[], datetime] = utc_now,
        instance_id: str | None = None,
        lease_ttl: float = DEFAULT_LEASE_TTL,
    ) -> None:
        self.backend = backend
        self._clock = clock
        self.lease: InstanceLease | None = (
            None if instance_id is None else InstanceLease(backend, instance_id, self.now, lease_ttl)
        )

    @property
    def dialect(self) -> str:
        return self.backend.dialect

    @property
    def instance_id(self) -> str | None:
        """Written as the owner of what this process holds (jobs, image slots); None without a lease."""
        return None if self.lease is None else self.lease.instance_id

    def now(self) -> datetime:
        return as_utc(self._clock())

    def write(self) -> AbstractAsyncContextManager[Tx]:
        """A write transaction (on SQLite, under the connection's lock and ``BEGIN IMMEDIATE``)."""
        return self.backend.transaction(write=True)

    def read(self) -> AbstractAsyncContextManager[Tx]:
        """A read-only snapshot."""
        return self.backend.transaction(write=False)

    def plain(self) -> AbstractAsyncContextManager[Tx]:
        """Single-statement reads outside a transaction."""
        return self.backend.plain()

    async def kv_get(self, key: str) -> str | None:
        return await kv_get(self.backend, key)

    async def kv_set(self, key: str, value: str) -> None:
        await kv_set(self.backend, key, value)

    async def ping(self) -> None:
        """One round trip (the health endpoint's database check); raises when the database does not answer."""
        async with self.backend.plain() as tx:
            await tx.fetchone("SELECT 1")
