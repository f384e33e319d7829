"""The quota store's transaction machinery: one small interface over SQLite and PostgreSQL.

The ledger, settings and report modules write their SQL once, with ``?`` placeholders, against
``Tx`` (fetchone / fetchall / execute / insert). A ``Backend`` opens transactions:

* ``SqliteBackend`` (here): every check-then-write runs inside ``BEGIN IMMEDIATE`` ... ``COMMIT``.
  SQLite takes the write lock at BEGIN, so two processes or connections cannot both read
  "1 image left" and both insert. The bot shares ONE aiosqlite connection among many coroutines,
  and a transaction belongs to the connection, not to a coroutine, so every transaction also holds
  an ``asyncio.Lock`` that belongs to the connection (``connection_lock``): no coroutine's
  statement can land inside another coroutine's transaction.
* ``PostgresBackend`` (``bot/quota/postgres.py``): a transaction on a connection from an asyncpg
  pool, with the locks described there.

``runs_to_completion`` lets a store operation finish even when its caller is cancelled.
Parameterised SQL only.
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
import weakref
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import datetime
from typing import Any, Concatenate, ParamSpec, TypeVar

import aiosqlite

from bot.quota.periods import as_utc
from bot.quota.policy import validate_limit, validate_money
from bot.quota.records import Reservation, utc_now

_CONN_LOCKS: weakref.WeakKeyDictionary[aiosqlite.Connection, asyncio.Lock] = weakref.WeakKeyDictionary()


def connection_lock(conn: aiosqlite.Connection) -> asyncio.Lock:
    """The asyncio.Lock that serialises transactions on ``conn``.

    Shared by every QuotaStore on the connection; other code that opens a transaction on the
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

    async def lock_quota(self, guild_id: int | None, user_id: int) -> None:
        """Serialise the quota decisions of one user of one server (or of one user in DMs)
        until commit, and keep the server's settings from changing meanwhile.

        Nothing to do on SQLite, whose write transactions already exclude each other (likewise
        the other lock_* methods)."""
        return None

    async def lock_budget(self, guild_id: int) -> None:
        """Serialise, until commit, the reservations of a server that has a budget."""
        return None

    async def lock_server(self, guild_id: int) -> None:
        """Exclude every reservation of the server until commit (to change its settings)."""
        return None

    async def lock_user_everywhere(self, user_id: int) -> None:
        """Serialise, until commit, the reservations of one person in every server (the bot-wide
        per-person cap). Taken after ``lock_quota`` and ``lock_budget``, before ``lock_bot_budget``."""
        return None

    async def lock_bot_budget(self) -> None:
        """Serialise, until commit, every reservation of the bot (the bot-wide budget). Taken last."""
        return None

    async def lock_recovery(self) -> None:
        """Serialise crash recoveries (nothing to do on SQLite, as above)."""
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
    """One shared aiosqlite connection (opened by ``bot.db.open_database``)."""

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


_P = ParamSpec("_P")
_T = TypeVar("_T")
_S = TypeVar("_S", bound="StoreBase")


def runs_to_completion(
    method: Callable[Concatenate[_S, _P], Awaitable[_T]],
) -> Callable[Concatenate[_S, _P], Coroutine[Any, Any, _T]]:
    """Let a store operation finish even if its caller is cancelled, then re-raise.

    Interactions time out and tasks get cancelled; a half-done transaction must not be the
    result. A settle or refund that was cancelled still lands. A reservation whose caller was
    cancelled cannot be used by anyone, so it is refunded as 'cancelled' straight away.
    """

    @functools.wraps(method)
    async def wrapper(self: _S, *args: _P.args, **kwargs: _P.kwargs) -> _T:
        task = asyncio.ensure_future(method(self, *args, **kwargs))
        task.add_done_callback(_consume_exception)
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            await asyncio.wait({task})
            if not task.cancelled() and task.exception() is None:
                result = task.result()
                if isinstance(result, Reservation):
                    refund: Any = getattr(self, "refund")  # noqa: B009 (defined by the ledger)
                    await refund(result.job_id, status="cancelled", error="cancelled while reserving")
            raise

    return wrapper


def _consume_exception(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()  # retrieved: no "exception was never retrieved" noise after a cancel


class StoreBase:
    """What every part of the store shares: the backend, the bot's default limits, the clock."""

    def __init__(
        self,
        conn: aiosqlite.Connection | Backend,
        *,
        default_daily: int | None,
        default_monthly: int | None,
        bot_user_daily: int | None = None,
        bot_budget_usd: float | None = None,
        clock: Callable[[], datetime] = utc_now,
        instance_id: str | None = None,
    ) -> None:
        backend = conn if isinstance(conn, Backend) else SqliteBackend(conn)
        self.backend = backend
        if isinstance(backend, SqliteBackend):
            self._conn = backend.conn
            self._lock = backend.lock
        self.default_daily = validate_limit(default_daily, what="default_daily")
        self.default_monthly = validate_limit(default_monthly, what="default_monthly")
        # Bot-wide caps, across every server and DMs, in UTC periods (None = no cap).
        self.bot_user_daily = validate_limit(bot_user_daily, what="bot_user_daily")
        self.bot_budget_usd = None if bot_budget_usd is None else validate_money(bot_budget_usd, what="bot_budget_usd")
        self._clock = clock
        self.instance_id = instance_id
        """Written as the owner of every job this store reserves (see ``bot/quota/lease.py``)."""

    def now(self) -> datetime:
        return as_utc(self._clock())

    def _write(self) -> AbstractAsyncContextManager[Tx]:
        return self.backend.transaction(write=True)

    def _read(self) -> AbstractAsyncContextManager[Tx]:
        """A read-only snapshot."""
        return self.backend.transaction(write=False)

    def _plain(self) -> AbstractAsyncContextManager[Tx]:
        return self.backend.plain()
