"""The PostgreSQL backend: an asyncpg pool, same SQL, same numbered migrations.

Why each operation stays one atomic step (READ COMMITTED, the default isolation):

* ``reserve`` checks and consumes each limit with one conditional ``UPDATE`` of that limit's counter row
  (``bot/quota/counters.py``). The row lock, held until COMMIT or ROLLBACK, orders two reservations of the
  same counter, and under READ COMMITTED the second re-reads the row after the first committed, so it
  checks the sum that includes the first: two reservations can never both see "1 left". A counter not yet
  there is created with ``INSERT ... ON CONFLICT DO NOTHING``, which waits for a concurrent insert of the
  same key to commit. Reservations of different people touch different rows and do not wait for each
  other; the rows every member shares (a budget) are written last, so their locks are held only to COMMIT.
  There are no serialization failures, so no retries.
* ``mark_running`` / ``settle`` / ``refund`` read the job ``FOR UPDATE`` (``Tx.for_update``), so
  a settle and a refund of the same job queue on its row lock and the second sees the first's
  result: a job is settled or refunded once.
* Migrations run in one transaction under an advisory lock, so two processes starting together
  apply each migration once.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from functools import lru_cache
from typing import Any

import asyncpg

from bot.storage.sqlite import Backend, Tx

log = logging.getLogger(__name__)

_MIGRATION_LOCK = (0x1A6E, 1)  # two-int advisory key: "imagebot", migrations
_RECOVERY_LOCK = (0x1A6E, 2)  # two-int advisory key: "imagebot", crash recovery


@lru_cache(maxsize=512)
def to_dollar_params(sql: str) -> str:
    """``?`` placeholders to PostgreSQL's ``$1, $2, ...`` (our SQL has no ``?`` inside literals)."""
    counter = iter(range(1, 10_000))
    return re.sub(r"\?", lambda _: f"${next(counter)}", sql)


def _rowcount(status: str) -> int:
    """asyncpg returns the command tag ("UPDATE 3", "INSERT 0 1", "DELETE 0")."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


def hashed_key(*parts: object) -> int:
    """A signed 64-bit advisory key for ``parts`` (a collision only makes two callers wait)."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


async def probe(url: str, *, connect_timeout: float, write: bool) -> int:
    """The schema version of the database at ``url`` (0 before the first migration), for the doctor and
    the container check. With ``write``, also proves that this user may write the bot's tables (a
    lock taken in a transaction that is rolled back: nothing changes). Raises asyncpg's and OS errors."""
    conn = await asyncpg.connect(url, timeout=connect_timeout)
    try:
        migrated = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
        version = int(await conn.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")) if migrated else 0
        if write and version:
            async with conn.transaction():
                await conn.execute("LOCK TABLE jobs, kv IN ROW EXCLUSIVE MODE NOWAIT")
                raise _RolledBack
    except _RolledBack:
        pass
    finally:
        await conn.close()
    return version


class _RolledBack(Exception):
    """Leaves a probe's transaction by rolling it back."""


class PostgresTx(Tx):
    for_update = " FOR UPDATE"

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return await self.conn.fetchrow(to_dollar_params(sql), *params)

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return list(await self.conn.fetch(to_dollar_params(sql), *params))

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return _rowcount(await self.conn.execute(to_dollar_params(sql), *params))

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        await self.conn.executemany(to_dollar_params(sql), rows)

    async def lock_recovery(self) -> None:
        await self.conn.execute("SELECT pg_advisory_xact_lock($1, $2)", *_RECOVERY_LOCK)


class PostgresBackend(Backend):
    """A pool of connections to one PostgreSQL database shared by every bot process."""

    dialect = "postgresql"

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    @classmethod
    async def connect(cls, url: str, *, min_size: int = 2, max_size: int = 10) -> PostgresBackend:
        """Open a pool on ``url`` (``postgresql://user@host:port/db``) and migrate the database."""
        pool = await asyncpg.create_pool(url, min_size=min_size, max_size=max_size)
        backend = cls(pool)
        try:
            await backend.migrate()
        except BaseException:
            await pool.close()
            raise
        return backend

    async def migrate(self) -> int:
        """Apply pending migrations (``bot.storage.db.migrations("postgresql")``); returns the version reached."""
        from bot.storage.db import migrations, split_sql  # bot.storage.db imports this package: import when used

        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1, $2)", *_MIGRATION_LOCK)
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations "
                "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
            )
            current = int(await conn.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_migrations"))
            for version, name, sql in migrations("postgresql"):
                if version <= current:
                    continue
                log.info("applying PostgreSQL migration %s", name)
                for statement in split_sql(sql):
                    await conn.execute(statement)
                await conn.execute("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", version, name)
                current = version
        return current

    @asynccontextmanager
    async def transaction(self, *, write: bool) -> AsyncIterator[Tx]:
        async with self.pool.acquire() as conn:
            # Reads get one snapshot for all their statements, as SQLite's deferred transaction does.
            options: dict[str, Any] = {} if write else {"isolation": "repeatable_read", "readonly": True}
            async with conn.transaction(**options):
                yield PostgresTx(conn)

    @asynccontextmanager
    async def plain(self) -> AsyncIterator[Tx]:
        async with self.pool.acquire() as conn:
            yield PostgresTx(conn)

    async def close(self) -> None:
        await self.pool.close()
