"""Fixtures that run the quota store tests against both databases: SQLite and a real PostgreSQL.

Import the fixtures into a test module (``from tests.helpers.stores import clock, dialect, ...``). The
PostgreSQL server is ``tests/helpers/pgserver.py``'s, started once per test process; every test gets
a database of its own.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiosqlite
import pytest

from bot.quota import Quota, QuotaDefaults, QuotaExceeded, Reservation
from bot.storage.clock import utc_now
from bot.storage.database import Database
from bot.storage.db import open_database
from bot.storage.leases import InstanceLease
from bot.storage.postgres import PostgresBackend
from bot.storage.sqlite import Backend, SqliteBackend
from tests.helpers import pgserver

GUILD = 1000
CHANNEL = 2000
USER = 3000
MOD = 4000
DIALECTS = ("sqlite", "postgresql")

BackendOpener = Callable[[], AbstractAsyncContextManager[Backend]]


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2024, 6, 15, 12, 0, tzinfo=UTC))


@pytest.fixture(params=DIALECTS)
def dialect(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def database(dialect: str, tmp_path: Path) -> str:
    """Where the test's database lives: an SQLite file path, or a fresh PostgreSQL database's URL."""
    if dialect == "postgresql":
        return await pgserver.server().new_database()
    return str(tmp_path / "bot.storage.db")


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


@pytest.fixture
def open_backend(dialect: str, database: str) -> BackendOpener:
    """Opens another backend on the test's database (as a second process would)."""
    return lambda: connect(dialect, database)


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


@pytest.fixture
async def store(open_backend: BackendOpener, clock: Clock) -> AsyncIterator[Quota]:
    async with open_backend() as backend:
        yield quota_on(backend, default_daily=5, default_monthly=50, clock=clock)


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
