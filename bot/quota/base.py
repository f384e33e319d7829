"""What every part of the quota store shares (``StoreBase``: the backend, the bot's default limits, the
clock) and ``runs_to_completion``, which lets a store operation finish when its caller is cancelled."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Coroutine
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any, Concatenate, ParamSpec, TypeVar

import aiosqlite

from bot.quota.periods import as_utc
from bot.quota.policy import validate_limit, validate_money
from bot.quota.records import Reservation, utc_now
from bot.storage.sqlite import Backend, SqliteBackend, Tx

_S = TypeVar("_S", bound="StoreBase")
_P = ParamSpec("_P")
_T = TypeVar("_T")


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
        """Written as the owner of every job this store reserves (see ``bot/quota/leases.py``)."""

    def now(self) -> datetime:
        return as_utc(self._clock())

    def _write(self) -> AbstractAsyncContextManager[Tx]:
        return self.backend.transaction(write=True)

    def _read(self) -> AbstractAsyncContextManager[Tx]:
        """A read-only snapshot."""
        return self.backend.transaction(write=False)

    def _plain(self) -> AbstractAsyncContextManager[Tx]:
        return self.backend.plain()
