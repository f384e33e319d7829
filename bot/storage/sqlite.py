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


class DirectSqliteTx(Tx):
    """The statements of a write transaction, run on the calling thread instead of aiosqlite's.

    Inside ``BEGIN IMMEDIATE`` this connection already holds SQLite's write lock, so a statement never waits
    for another connection; the ledger's are indexed point reads and writes of microseconds, less than one
    hop to aiosqlite's thread and back costs. A reservation makes about six of them: running them here
    leaves two hops (BEGIN, which may wait for another process's lock, and COMMIT, which may checkpoint the
    WAL), so the connection lock is held a fraction as long and callers queue for it less. The connection is
    opened with ``check_same_thread=False`` and SQLite serialises access to it (``sqlite3.threadsafety`` 3).
    """

    def __init__(self, raw: sqlite3.Connection) -> None:
        self.raw = raw

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Any:
        cur = self.raw.execute(sql, params)
        try:
            return cur.fetchone()
        finally:
            cur.close()

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        cur = self.raw.execute(sql, params)
        try:
            return cur.fetchall()
        finally:
            cur.close()

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        cur = self.raw.execute(sql, params)
        try:
            return int(cur.rowcount)
        finally:
            cur.close()

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self.raw.executemany(sql, rows).close()


class SqliteBackend(Backend):
    """One shared aiosqlite connection (opened by ``bot.storage.db.open_database``)."""

    dialect = "sqlite"

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self.conn = conn
        self.lock = connection_lock(conn)
        self._plain = SqliteTx(conn)
        self._direct = _direct_tx(conn)

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
                yield self._direct if write and self._direct is not None else self._plain
                await conn.commit()
            except BaseException:
                await asyncio.shield(conn.rollback())
                raise

    @asynccontextmanager
    async def plain(self) -> AsyncIterator[Tx]:
        yield self._plain


def _direct_tx(conn: aiosqlite.Connection) -> DirectSqliteTx | None:
    """A ``DirectSqliteTx`` when the connection may be used from this thread (``open_database`` opens it
    so), else None: its write transactions then run every statement on aiosqlite's thread."""
    raw: sqlite3.Connection = conn._conn  # aiosqlite keeps the sqlite3 connection here
    try:
        raw.execute("SELECT 1").close()
    except sqlite3.ProgrammingError:  # opened with check_same_thread=True
        return None
    return DirectSqliteTx(raw)
