"""The PostgreSQL backend of the quota store: an asyncpg pool, same SQL, same numbered migrations.

Why each operation stays one atomic step (READ COMMITTED, the default isolation):

* ``reserve`` (and ``reset_user``) first take ``pg_advisory_xact_lock`` on the server (in DMs,
  on the user), held until COMMIT or ROLLBACK. Every write that can raise a user's or a server's
  usage is a reservation and takes that lock before reading anything, so reservations of one
  server run one after another. Under READ COMMITTED each statement sees every transaction
  committed before it started, and the previous holder committed before releasing the lock,
  so the check reads all earlier reservations: two reservations can never both see "1 left".
  No serialization failures, so no retries (SERIALIZABLE would be correct too, but under a
  burst for the same server most attempts would fail and retry, which is slower).
  Keys: the quota uses the one-bigint key space (the server id, or minus the user id);
  PostgreSQL keeps it apart from the two-int key space, which other code can use freely.
* ``mark_running`` / ``settle`` / ``refund`` read the job ``FOR UPDATE`` (``Tx.for_update``), so
  a settle and a refund of the same job queue on its row lock and the second sees the first's
  result: a job is settled or refunded once.
* Migrations run in one transaction under an advisory lock, so two processes starting together
  apply each migration once.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from functools import lru_cache
from typing import Any

import asyncpg

from bot.quota.tx import Backend, Tx

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


def quota_lock_key(guild_id: int | None, user_id: int) -> int:
    """The advisory lock of one server's quota decisions (minus the user id in DMs)."""
    return int(guild_id) if guild_id is not None else -int(user_id)


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

    async def lock_quota(self, guild_id: int | None, user_id: int) -> None:
        await self.conn.execute("SELECT pg_advisory_xact_lock($1::bigint)", quota_lock_key(guild_id, user_id))

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
        """Apply pending migrations (``bot.db.migrations("postgresql")``); returns the version reached."""
        from bot.db import migrations, split_sql  # bot.db imports this package: import when used

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
