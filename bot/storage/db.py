"""Open the SQLite database: WAL mode, versioned migrations applied at start.

Migrations are the files ``bot/storage/migrations/NNNN_name.sql``, applied in order, each in one
transaction together with the bump of ``PRAGMA user_version``. A fresh file and an older file
both end at the newest schema. PostgreSQL (``bot/storage/postgres.py``) applies the same numbered
migrations, taking ``bot/storage/migrations/postgresql/NNNN_name.sql`` instead where the SQL must differ.

``kv_get`` / ``kv_set`` read and write the key-value table on either database.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path

import aiosqlite

from bot.storage.sqlite import Backend
from bot.storage.sqlite_side import BUSY_TIMEOUT_MS, side_connection

log = logging.getLogger(__name__)

_MIGRATION_NAME = re.compile(r"^(\d{4})_[\w-]+\.sql$")


def migrations(dialect: str = "sqlite") -> list[tuple[int, str, str]]:
    """(version, name, sql) of every migration shipped with the bot for ``dialect``, in order.

    For "postgresql", a file of the same number in ``migrations/postgresql/`` replaces the shared one.
    """
    folder = resources.files("bot.storage").joinpath("migrations")
    found: dict[int, tuple[str, str]] = {}
    for directory in (folder, folder.joinpath(dialect)) if dialect != "sqlite" else (folder,):
        if not directory.is_dir():
            continue
        for entry in directory.iterdir():
            m = _MIGRATION_NAME.match(entry.name)
            if m:
                found[int(m.group(1))] = (entry.name, entry.read_text(encoding="utf-8"))
    return [(version, name, sql) for version, (name, sql) in sorted(found.items())]


async def migrate(conn: aiosqlite.Connection) -> int:
    """Apply pending migrations; returns the schema version reached."""
    async with conn.execute("PRAGMA user_version") as cur:
        row = await cur.fetchone()
    current = int(row[0]) if row else 0
    for version, name, sql in migrations():
        if version <= current:
            continue
        log.info("applying database migration %s", name)
        # executescript would COMMIT first; run statements inside an explicit transaction instead.
        await conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in split_sql(sql):
                await conn.execute(statement)
            await conn.execute(f"PRAGMA user_version = {int(version)}")
            await conn.commit()
        except BaseException:
            await conn.rollback()
            raise
        current = version
    return current


def split_sql(sql: str) -> list[str]:
    """Split a migration file into statements (no semicolons inside strings in our migrations)."""
    lines = [line for line in sql.splitlines() if not line.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


@asynccontextmanager
async def open_database(path: Path) -> AsyncIterator[aiosqlite.Connection]:
    """Open (creating if needed) the database at ``path``, migrated to the newest schema."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # Autocommit (we BEGIN explicitly); usable from the event loop's thread too (``sqlite.DirectSqliteTx``).
    conn = await aiosqlite.connect(path, isolation_level=None, check_same_thread=False)
    try:
        conn.row_factory = aiosqlite.Row
        async with conn.execute("PRAGMA journal_mode=WAL") as cur:
            mode = await cur.fetchone()
        await conn.execute("PRAGMA synchronous=NORMAL")
        await conn.execute("PRAGMA foreign_keys=ON")
        await conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        await migrate(conn)
        if mode is None or str(mode[0]).lower() != "wal":  # e.g. an in-memory database: nothing to share
            yield conn
            return
        async with side_connection(conn, path, BUSY_TIMEOUT_MS):
            yield conn
    finally:
        await conn.close()


_KV_GET = "SELECT value FROM kv WHERE key = ?"
_KV_SET = "INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value"


async def kv_get(db: aiosqlite.Connection | Backend, key: str) -> str | None:
    """The value stored under ``key``: ``db`` is an aiosqlite connection or a store's backend
    (``Database.backend``, SQLite or PostgreSQL)."""
    if isinstance(db, Backend):
        async with db.plain() as tx:
            row = await tx.fetchone(_KV_GET, (key,))
    else:
        async with db.execute(_KV_GET, (key,)) as cur:
            row = await cur.fetchone()
    return None if row is None else str(row[0])


async def kv_set(db: aiosqlite.Connection | Backend, key: str, value: str) -> None:
    """Store ``value`` under ``key``. On a Backend this is its own transaction (which takes the
    SQLite connection lock itself); on a bare connection the caller holds ``connection_lock``."""
    if isinstance(db, Backend):
        async with db.transaction(write=True) as tx:
            await tx.execute(_KV_SET, (key, value))
    else:
        await db.execute(_KV_SET, (key, value))
