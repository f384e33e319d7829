"""Open the quota store that ``DATABASE_URL`` names, with this process's lease running.

``sqlite:///path`` (the default) opens the file through ``bot.storage.db.open_database``;
``postgresql://user:password@host:port/database`` (or ``postgres://``) opens an asyncpg pool
(``bot/storage/postgres.py``). Both are migrated to the newest schema first.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Protocol

from bot.quota.leases import DEFAULT_LEASE_TTL, stop_lease
from bot.quota.records import utc_now
from bot.quota.store import QuotaStore
from bot.storage.db import open_database
from bot.storage.sqlite import Backend, SqliteBackend

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


class StoreSettings(Protocol):
    """The part of ``bot.config.settings.Settings`` this module reads."""

    @property
    def database_url(self) -> str: ...
    @property
    def database_path(self) -> Path | None: ...
    @property
    def default_daily_limit(self) -> int | None: ...
    @property
    def default_monthly_limit(self) -> int | None: ...
    @property
    def bot_user_daily_limit(self) -> int | None: ...
    @property
    def bot_monthly_budget_usd(self) -> float | None: ...
    @property
    def shard_ids(self) -> tuple[int, ...] | None: ...


def is_postgres(url: str) -> bool:
    return url.strip().startswith(POSTGRES_SCHEMES)


def default_instance_id(shard_ids: tuple[int, ...] | None) -> str:
    """One id per shard range: processes serve disjoint ranges, so no two live ones share it,
    and a restarted process recognises the jobs its earlier life left behind."""
    if not shard_ids:
        return "main"
    return "shards-" + ",".join(str(s) for s in sorted(shard_ids))


@asynccontextmanager
async def open_backend(url: str, sqlite_path: Path | None = None) -> AsyncIterator[Backend]:
    """The backend for ``url``: PostgreSQL for postgresql:// URLs, else SQLite at ``sqlite_path``."""
    if is_postgres(url):
        from bot.storage.postgres import PostgresBackend

        backend = await PostgresBackend.connect(url.strip())
        try:
            yield backend
        finally:
            await backend.close()
        return
    if sqlite_path is None:
        raise ValueError("an SQLite DATABASE_URL needs the file's path")
    async with open_database(sqlite_path) as conn:
        yield SqliteBackend(conn)


@asynccontextmanager
async def open_store(
    settings: StoreSettings,
    *,
    instance_id: str | None = None,
    lease_ttl: float = DEFAULT_LEASE_TTL,
    clock: Callable[[], datetime] = utc_now,
) -> AsyncIterator[QuotaStore]:
    """The migrated store, its instance lease registered and renewed in the background.

    Call ``store.recover_reservations()`` once at start (``cogs/bot.py`` does, in setup_hook). On
    exit the lease task stops, the lease is released and the database closed.
    """
    async with AsyncExitStack() as stack:
        sqlite_path = None if is_postgres(settings.database_url) else settings.database_path
        if sqlite_path is None and not is_postgres(settings.database_url):
            raise ValueError("an SQLite DATABASE_URL needs the file's path")
        backend = await stack.enter_async_context(open_backend(settings.database_url, sqlite_path))
        store = QuotaStore(
            backend,
            default_daily=settings.default_daily_limit,
            default_monthly=settings.default_monthly_limit,
            bot_user_daily=settings.bot_user_daily_limit,
            bot_budget_usd=settings.bot_monthly_budget_usd,
            clock=clock,
            instance_id=instance_id or default_instance_id(settings.shard_ids),
        )
        store.lease_ttl = lease_ttl
        if backend.dialect == "postgresql":  # processes of several machines: make sure this id is ours
            await store.wait_for_predecessor()
        await store.renew_lease()
        task = asyncio.create_task(store.run_lease(), name="quota-lease")
        try:
            yield store
        finally:
            await stop_lease(task)
            await store.release_lease()
