"""Open the database that ``DATABASE_URL`` names, migrated, with this process's lease running.

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

from bot.storage.clock import utc_now
from bot.storage.database import Database
from bot.storage.db import open_database
from bot.storage.leases import DEFAULT_LEASE_TTL, stop_lease
from bot.storage.sqlite import Backend, SqliteBackend

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


class StorageSettings(Protocol):
    """The part of ``bot.config.settings.Settings`` this module reads."""

    @property
    def database_url(self) -> str: ...
    @property
    def database_path(self) -> Path | None: ...
    @property
    def shard_ids(self) -> tuple[int, ...] | None: ...


def is_postgres(url: str) -> bool:
    return url.strip().startswith(POSTGRES_SCHEMES)


def default_instance_id(shard_ids: tuple[int, ...] | None) -> str:
    """One id per shard range: processes serve disjoint ranges, so no two live ones share it,
    and a restarted process recognises what its earlier life left behind."""
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
async def open_storage(
    settings: StorageSettings,
    *,
    instance_id: str | None = None,
    lease_ttl: float = DEFAULT_LEASE_TTL,
    clock: Callable[[], datetime] = utc_now,
) -> AsyncIterator[Database]:
    """The migrated database, its instance lease registered and renewed in the background.

    On exit the lease task stops, the lease is released and the database closed.
    """
    async with AsyncExitStack() as stack:
        postgres = is_postgres(settings.database_url)
        sqlite_path = None if postgres else settings.database_path
        if sqlite_path is None and not postgres:
            raise ValueError("an SQLite DATABASE_URL needs the file's path")
        backend = await stack.enter_async_context(open_backend(settings.database_url, sqlite_path))
        db = Database(
            backend,
            clock=clock,
            instance_id=instance_id or default_instance_id(settings.shard_ids),
            lease_ttl=lease_ttl,
        )
        lease = db.lease
        assert lease is not None
        if postgres:  # processes of several machines: make sure this id is ours
            await lease.wait_for_predecessor()
        await lease.renew()
        task = asyncio.create_task(lease.run(), name="instance-lease")
        try:
            yield db
        finally:
            await stop_lease(task)
            await lease.release()
