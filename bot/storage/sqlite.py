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

from bot.storage.sqlite_side import BUSY_TIMEOUT_MS, side_of

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
    hop to aiosqlite's thread and back costs. The connection is opened with ``check_same_thread=False`` and
    SQLite serialises access to it (``sqlite3.threadsafety`` 3).
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

    def try_begin(self, busy_ms: int) -> bool:
        """``BEGIN IMMEDIATE`` if the write lock is free now; False (nothing begun) if another connection
        holds it. Never waits: the busy timeout is 0 for this one statement."""
        self.raw.execute("PRAGMA busy_timeout=0")
        try:
            self.raw.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                return False
            raise
        finally:
            self.raw.execute(f"PRAGMA busy_timeout={int(busy_ms)}")
        return True


class SqliteBackend(Backend):
    """One shared aiosqlite connection (opened by ``bot.storage.db.open_database``), and its side
    connection (``sqlite_side.py``) for reads.

    A write transaction runs whole on the calling thread (the event loop's) when the connection allows it
    and its side connection has taken the checkpoints over: BEGIN IMMEDIATE, about six indexed statements
    and COMMIT are ~0.2 ms of CPU together, less than one hop to aiosqlite's thread and back, and a hop
    would hold the connection lock while the next reservation waits (``./imagebot bench reservations``).
    Only a BEGIN that would wait for another connection's write lock goes to aiosqlite's thread, which
    waits up to the busy timeout off the loop.
    """

    dialect = "sqlite"

    def __init__(self, conn: aiosqlite.Connection, busy_ms: int = BUSY_TIMEOUT_MS) -> None:
        self.conn = conn
        self.lock = connection_lock(conn)
        self.busy_ms = busy_ms
        self._direct = _direct_tx(conn)
        self._side = side_of(conn)
        self._plain = SqliteTx(conn if self._side is None else self._side.reader)

    @asynccontextmanager
    async def transaction(self, *, write: bool) -> AsyncIterator[Tx]:
        """Hold the connection's lock and run the body in one transaction.

        ``BEGIN IMMEDIATE`` (for writes) takes SQLite's write lock before the first read, so a
        check and the write that depends on it cannot be split by another connection; reads get
        a deferred transaction, one snapshot, on the side connection. Any exception rolls back.
        """
        if not write:
            async with self._reading() as reader, _sqlite_transaction(reader, "BEGIN"):
                yield SqliteTx(reader)
            return
        async with self.lock:
            side, direct = self._side, self._direct
            if side is not None and direct is not None and direct.try_begin(self.busy_ms):
                try:
                    yield direct
                    direct.raw.commit()
                except BaseException:
                    direct.raw.rollback()
                    raise
                side.committed()
                return
            async with _sqlite_transaction(self.conn, "BEGIN IMMEDIATE"):
                yield direct or SqliteTx(self.conn)
            if side is not None:
                side.committed()

    @asynccontextmanager
    async def _reading(self) -> AsyncIterator[aiosqlite.Connection]:
        if self._side is None:
            async with self.lock:
                yield self.conn
        else:
            async with self._side.lock:
                yield self._side.reader

    @asynccontextmanager
    async def plain(self) -> AsyncIterator[Tx]:
        yield self._plain  # no lock: a plain read may come inside any block, a read snapshot of its own included


@asynccontextmanager
async def _sqlite_transaction(conn: aiosqlite.Connection, begin: str) -> AsyncIterator[None]:
    """``begin`` ... COMMIT through aiosqlite's thread, rolled back on any exception. aiosqlite runs
    statements in order on its thread, so a ROLLBACK sent after a cancelled BEGIN still runs after it
    (sqlite3's rollback() is a no-op outside a transaction)."""
    try:
        await conn.execute(begin)
    except sqlite3.Error:
        raise  # BEGIN itself failed (e.g. busy): there is no transaction of ours to undo
    except BaseException:
        await asyncio.shield(conn.rollback())
        raise
    try:
        yield
        await conn.commit()
    except BaseException:
        await asyncio.shield(conn.rollback())
        raise


def _direct_tx(conn: aiosqlite.Connection) -> DirectSqliteTx | None:
    """A ``DirectSqliteTx`` when the connection may be used from this thread (``open_database`` opens it
    so), else None: its write transactions then run every statement on aiosqlite's thread."""
    raw: sqlite3.Connection = conn._conn  # aiosqlite keeps the sqlite3 connection here
    try:
        raw.execute("SELECT 1").close()
    except sqlite3.ProgrammingError:  # opened with check_same_thread=True
        return None
    return DirectSqliteTx(raw)
