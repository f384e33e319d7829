"""Helpers of the storage tests, which run against both databases: SQLite and a real PostgreSQL.

The fixtures (``dialect``, ``database``, ``open_backend``, ``store``, ``clock``) are in
``tests/plugins/stores.py``; a test names them as parameters. This module holds what tests import: the ids,
``Clock``, ``BackendOpener``, ``connect``, ``quota_on``, ``reserve``, ``rows`` and the cross-process race worker.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiosqlite

from bot.quota import Quota, QuotaDefaults, QuotaExceeded, Reservation
from bot.storage.clock import utc_now
from bot.storage.database import Database
from bot.storage.db import open_database
from bot.storage.leases import InstanceLease
from bot.storage.postgres import PostgresBackend
from bot.storage.sqlite import Backend, SqliteBackend

GUILD = 1000
CHANNEL = 2000
USER = 3000
MOD = 4000

BackendOpener = Callable[[], AbstractAsyncContextManager[Backend]]


class Clock:
    """A fake clock: the store reads ``clock()``, the test moves it with ``advance(days=1)``."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


@asynccontextmanager
async def connect(dialect: str, database: str) -> AsyncIterator[Backend]:
    """A new backend (SQLite connection, or PostgreSQL pool) on the database, migrated."""
    if dialect == "postgresql":
        backend = await PostgresBackend.connect(database, min_size=1, max_size=10)
        try:
            yield backend
        finally:
            await backend.close()
    else:
        async with open_database(Path(database)) as conn:
            yield SqliteBackend(conn)


def quota_on(
    db: Backend | aiosqlite.Connection,
    *,
    default_daily: int | None,
    default_monthly: int | None,
    bot_user_daily: int | None = None,
    bot_budget_usd: float | None = None,
    clock: Callable[[], datetime] = utc_now,
    instance_id: str | None = None,
) -> Quota:
    """The quota repositories on a backend (or a bare SQLite connection), as the composition root builds them."""
    backend = db if isinstance(db, Backend) else SqliteBackend(db)
    database = Database(backend, clock=clock, instance_id=instance_id)
    defaults = QuotaDefaults(default_daily, default_monthly, bot_user_daily, bot_budget_usd)
    return Quota.on(database, defaults)


def lease_of(quota: Quota) -> InstanceLease:
    assert quota.db.lease is not None, "built without an instance_id"
    return quota.db.lease


async def reserve(store: Quota, *, images: int = 1, cost: float = 0.04, **kw: Any) -> Reservation:
    args: dict[str, Any] = {
        "guild_id": GUILD,
        "channel_id": CHANNEL,
        "user_id": USER,
        "role_ids": (),
        "kind": "generate",
        "prompt": "a cat",
        "settings": {"size": "1024x1024"},
        "model": "gpt-image-1",
        "images": images,
        "cost_estimate": cost,
    }
    args.update(kw)
    return await store.ledger.reserve(**args)


async def rows(store: Quota, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
    """Rows of a query (``?`` placeholders) on the store's database."""
    async with store.db.backend.plain() as tx:
        return await tx.fetchall(sql, params)


# --------------------------------------------------------------------------- cross-process race


def race_worker(args: tuple[str, str, str, float, int]) -> list[str]:
    """Run in a separate OS process: ``n`` simultaneous reservations at wall-clock ``start_at``.

    Returns "ok", "refused" or the repr of an unexpected error for each.
    """
    dialect, database, now_iso, start_at, n = args
    return asyncio.run(_race(dialect, database, datetime.fromisoformat(now_iso), start_at, n))


async def _race(dialect: str, database: str, now: datetime, start_at: float, n: int) -> list[str]:
    async with connect(dialect, database) as backend:
        store = quota_on(backend, default_daily=5, default_monthly=50, clock=lambda: now)
        await asyncio.sleep(max(0.0, start_at - time.time()))
        results = await asyncio.gather(*(reserve(store) for _ in range(n)), return_exceptions=True)
    return [
        "ok" if isinstance(r, Reservation) else "refused" if isinstance(r, QuotaExceeded) else repr(r) for r in results
    ]
