"""The transaction machinery: one small interface over SQLite and PostgreSQL.

The repositories (``bot/quota/``, ``bot/rules/``) write their SQL once, with ``?`` placeholders, against
``Tx`` (fetchone / fetchall / execute / insert). A ``Backend`` opens transactions:

* ``SqliteBackend`` (here): every check-then-write runs inside ``BEGIN IMMEDIATE`` ... ``COMMIT``.
  SQLite takes the write lock at BEGIN, so two processes or connections cannot both read
  "1 image left" and both insert. The bot shares ONE aiosqlite connection among many coroutines,
  and a transaction belongs to the connection, not to a coroutine, so every transaction also holds
  an ``asyncio.Lock`` that belongs to the connection (``connection_lock``): no coroutine's
  statement can land inside another coroutine's transaction.
* ``PostgresBackend`` (``bot/storage/postgres.py``): a transaction on a connection from an asyncpg
  pool, with the locks described there.

``bot/storage/completion.py`` lets an operation finish even when its caller is cancelled.
Parameterised SQL only.
"""

from __future__ import annotations

import asyncio
import sqlite3
import weakref
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import aiosqlite

_CONN_LOCKS: weakref.WeakKeyDictionary[aiosqlite.Connection, asyncio.Lock] = weakref.WeakKeyDictionary()


def connection_lock(conn: aiosqlite.Connection) -> asyncio.Lock:
    """The asyncio.Lock that serialises transactions on ``conn``.

    Shared by every backend on the connection; other code that opens a transaction on the
    same connection should hold it too.
    """
    lock = _CONN_LOCKS.get(conn)
    if lock is None:
        lock = _CONN_LOCKS[conn] = asyncio.Lock()
    return lock


class Tx(ABC):
    """Statements inside one transaction (or, from ``Backend.plain``, single autocommit reads)."""

    for_update: str = ""
    """Appended to a SELECT of rows about to be changed (row locks where the database has them)."""

    @abstractmethod
    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Any: ...

    @abstractmethod
    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Any]: ...

    @abstractmethod
    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run a statement; returns the number of rows it changed."""

    @abstractmethod
    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...

    async def insert(self, sql: str, params: Sequence[Any]) -> int:
        """Run an ``INSERT ... RETURNING id``; returns the new id."""
        row = await self.fetchone(sql, params)
        return int(row[0])

    async def lock_recovery(self) -> None:
        """Serialise crash recoveries until commit (nothing to do on SQLite, whose write transactions
        already exclude each other)."""
        return None


class Backend(ABC):
    dialect: str

    @abstractmethod
    def transaction(self, *, write: bool) -> AbstractAsyncContextManager[Tx]:
        """One transaction: committed when the body returns, rolled back on any exception."""

    @abstractmethod
    def plain(self) -> AbstractAsyncContextManager[Tx]:
        """Single-statement reads outside a transaction."""

    async def close(self) -> None:
        return None


class SqliteTx(Tx):
    def __init__(self, conn: aiosqlite.Connection) -> None:
        self.conn = conn

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Any:
        async with self.conn.execute(sql, params) as cur:
            return await cur.fetchone()

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        async with self.conn.execute(sql, params) as cur:
            return list(await cur.fetchall())

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        async with self.conn.execute(sql, params) as cur:
            return int(cur.rowcount)

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        await self.conn.executemany(sql, rows)


class SqliteBackend(Backend):
    """One shared aiosqlite connection (opened by ``bot.storage.db.open_database``)."""

    dialect = "sqlite"

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self.conn = conn
        self.lock = connection_lock(conn)
        self._plain = SqliteTx(conn)

    @asynccontextmanager
    async def transaction(self, *, write: bool) -> AsyncIterator[Tx]:
        """Hold the connection lock and run the body in one transaction.

        ``BEGIN IMMEDIATE`` (for writes) takes SQLite's write lock before the first read, so a
        check and the write that depends on it cannot be split by another connection; reads get
        a deferred transaction, one snapshot. Any exception rolls back. aiosqlite runs statements
        in order on its thread, so a ROLLBACK sent after a cancelled BEGIN still runs after it
        (sqlite3's rollback() is a no-op outside one).
        """
        async with self.lock:
            conn = self.conn
            try:
                await conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            except sqlite3.Error:
                raise  # BEGIN itself failed (e.g. busy): there is no transaction of ours to undo
            except BaseException:
                await asyncio.shield(conn.rollback())
                raise
            try:
                yield self._plain
                await conn.commit()
            except BaseException:
                await asyncio.shield(conn.rollback())
                raise

    @asynccontextmanager
    async def plain(self) -> AsyncIterator[Tx]:
        yield self._plain
