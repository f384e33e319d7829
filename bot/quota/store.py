"""Quota store: the job ledger, reservations and moderator settings in SQLite.

Money is at stake, so the rules are strict:

* Every check-then-write happens inside ``BEGIN IMMEDIATE`` ... ``COMMIT``: SQLite takes the
  write lock at BEGIN, so two processes or connections cannot both read "1 image left" and both
  insert. This protects the quota even across separate connections to the same file.
* The bot shares ONE aiosqlite connection among many coroutines, and a transaction belongs to
  the connection, not to a coroutine. Every write here therefore also holds an ``asyncio.Lock``
  that belongs to the connection (shared by every QuotaStore on it, see ``connection_lock``),
  so no coroutine's statement can land inside another coroutine's transaction.
* Parameterised SQL only.

Usage in a period counts the images of the user's jobs created in that period: reserved and
running jobs count ``images_reserved``, settled ones ``images_done``, refunded ones nothing, and
only jobs after the user's latest reset. Budget spend counts ``cost_estimate`` of jobs in flight
and ``cost_actual`` of finished ones (a refunded job may still have cost money).
"""

from __future__ import annotations

import asyncio
import csv
import functools
import io
import json
import logging
import sqlite3
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from typing import Any, Concatenate, Final, Literal, ParamSpec, TypeVar

import aiosqlite

from bot.quota.periods import DEFAULT_TIMEZONE, Period, as_utc, day_period, get_zone, month_period
from bot.quota.periods import validate_timezone as _validate_timezone
from bot.quota.policy import (
    PERIODS,
    Limits,
    check_budget,
    check_images,
    remaining,
    resolve_limits,
    validate_limit,
    validate_money,
)

log = logging.getLogger(__name__)

ACTIVE_STATUSES: Final = ("reserved", "running")
SETTLED_STATUSES: Final = ("done", "partial")
REFUND_STATUSES: Final = frozenset({"failed", "blocked", "cancelled", "crashed"})
JOB_KINDS: Final = frozenset({"generate", "edit"})

# SQL fragments (constants, never built from input).
_IMAGES_USED = (
    "COALESCE(SUM(CASE WHEN status IN ('reserved', 'running') THEN images_reserved "
    "WHEN status IN ('done', 'partial') THEN images_done ELSE 0 END), 0)"
)
_COST_SPENT = "COALESCE(SUM(CASE WHEN status IN ('reserved', 'running') THEN cost_estimate ELSE cost_actual END), 0)"
_JOB_COLUMNS = (
    "id, guild_id, channel_id, user_id, kind, prompt, settings, model, status, images_reserved, "
    "images_done, input_tokens, output_tokens, cost_estimate, cost_actual, error, message_id, "
    "parent_job_id, source_image_url, created_at, finished_at, started_at"
)


class _Unchanged(Enum):
    UNCHANGED = "UNCHANGED"
    INHERIT = "INHERIT"

    def __repr__(self) -> str:
        return self.value


UNCHANGED: Final = _Unchanged.UNCHANGED
"""Pass for a limit you do not want to change (the default)."""
INHERIT: Final = _Unchanged.INHERIT
"""Pass to remove an override so the level below applies again (None would mean unlimited)."""

LimitArg = int | None | _Unchanged


# --------------------------------------------------------------------------- errors


class QuotaError(Exception):
    """Base class of the store's errors."""


@dataclass(eq=False)
class QuotaExceeded(QuotaError):
    """A reservation was refused. Not frozen: contextlib and asyncio set ``__traceback__``
    on exceptions that pass through them, which a frozen dataclass would refuse."""

    scope: str  # "daily" | "monthly" | "budget" | "blocked"
    limit: float | int  # images, or USD for "budget"
    used: float | int  # images used in the period, or USD spent this month
    resets_at: datetime  # aware UTC: when that period rolls over (for "blocked", too)
    requested: float | int = 0  # images asked for, or the job's estimated USD for "budget"

    def __post_init__(self) -> None:
        super().__init__(str(self))

    def __str__(self) -> str:
        return (
            f"quota exceeded ({self.scope}): used {self.used} of {self.limit}, "
            f"requested {self.requested}, resets at {self.resets_at.isoformat()}"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.scope, self.limit, self.used, self.resets_at, self.requested))


class JobNotFound(QuotaError, LookupError):
    def __init__(self, job_id: int) -> None:
        super().__init__(f"no job {job_id}")
        self.job_id = job_id


class JobStateError(QuotaError):
    """The job is not in a state that allows this (e.g. settling a refunded job)."""

    def __init__(self, job_id: int, status: str, action: str) -> None:
        super().__init__(f"cannot {action} job {job_id}: it is {status}")
        self.job_id = job_id
        self.status = status
        self.action = action


# --------------------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class Reservation:
    job_id: int
    images: int
    cost_estimate: float


@dataclass(frozen=True, slots=True)
class JobRecord:
    id: int
    guild_id: int | None
    channel_id: int | None
    user_id: int
    kind: str
    prompt: str
    settings: dict[str, Any]
    model: str
    status: str
    images_reserved: int
    images_done: int
    input_tokens: int
    output_tokens: int
    cost_estimate: float
    cost_actual: float
    error: str | None
    message_id: int | None
    parent_job_id: int | None
    source_image_url: str | None
    created_at: datetime
    finished_at: datetime | None
    started_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.status in ACTIVE_STATUSES


@dataclass(frozen=True, slots=True)
class UsageSummary:
    limits: Limits
    daily_used: int
    monthly_used: int
    daily_resets_at: datetime
    monthly_resets_at: datetime
    budget_usd: float | None
    budget_spent: float
    timezone: str = DEFAULT_TIMEZONE

    @property
    def daily_remaining(self) -> int | None:
        return remaining(self.limits.daily, self.daily_used)

    @property
    def monthly_remaining(self) -> int | None:
        return remaining(self.limits.monthly, self.monthly_used)

    @property
    def budget_remaining(self) -> float | None:
        return None if self.budget_usd is None else max(0.0, self.budget_usd - self.budget_spent)

    @property
    def budget_resets_at(self) -> datetime:
        return self.monthly_resets_at


@dataclass(frozen=True, slots=True)
class GuildSettings:
    guild_id: int
    timezone: str = DEFAULT_TIMEZONE
    budget_usd: float | None = None
    manager_role_id: int | None = None


@dataclass(frozen=True, slots=True)
class LimitOverride:
    """Limits set at one level. ``daily_set=False`` means daily is inherited (daily is then None)."""

    scope: Literal["user", "role", "server"]
    target_id: int  # user or role id; 0 for the server default
    daily: int | None
    monthly: int | None
    daily_set: bool
    monthly_set: bool


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    guild_id: int
    actor_id: int
    action: str
    target_id: int | None
    details: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class UserReport:
    user_id: int
    jobs: int
    images: int  # images counted as usage (settled + in flight); resets do not erase them here
    spent_usd: float  # actual cost, or the estimate for jobs in flight


@dataclass(frozen=True, slots=True)
class Report:
    guild_id: int
    timezone: str
    period_start: datetime
    period_end: datetime
    budget_usd: float | None
    total_jobs: int
    total_images: int
    total_spent: float
    users: list[UserReport] = field(default_factory=list)  # most images first


# --------------------------------------------------------------------------- helpers


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _ts(moment: datetime) -> str:
    """Fixed-width ISO-8601 UTC, so text comparison in SQL is time comparison."""
    return as_utc(moment).isoformat(timespec="microseconds")


def _parse_ts(value: str | None) -> datetime | None:
    return None if value is None else as_utc(datetime.fromisoformat(value))


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


def _row_to_job(row: Any) -> JobRecord:
    settings_text = row["settings"]
    try:
        settings = json.loads(settings_text) if settings_text else {}
    except ValueError:
        settings = {"_raw": settings_text}
    created = _parse_ts(row["created_at"])
    assert created is not None
    return JobRecord(
        id=int(row["id"]),
        guild_id=row["guild_id"],
        channel_id=row["channel_id"],
        user_id=int(row["user_id"]),
        kind=row["kind"],
        prompt=row["prompt"],
        settings=settings if isinstance(settings, dict) else {"_value": settings},
        model=row["model"],
        status=row["status"],
        images_reserved=int(row["images_reserved"]),
        images_done=int(row["images_done"]),
        input_tokens=int(row["input_tokens"]),
        output_tokens=int(row["output_tokens"]),
        cost_estimate=float(row["cost_estimate"]),
        cost_actual=float(row["cost_actual"]),
        error=row["error"],
        message_id=row["message_id"],
        parent_job_id=row["parent_job_id"],
        source_image_url=row["source_image_url"],
        created_at=created,
        finished_at=_parse_ts(row["finished_at"]),
        started_at=_parse_ts(row["started_at"]),
    )


_CSV_FORMULA_PREFIXES: Final = ("=", "+", "-", "@", "\t", "\r")


def _csv_safe(value: Any) -> Any:
    """Defuse spreadsheet formulas in user-controlled text (prompts come from anyone)."""
    if isinstance(value, str) and value.startswith(_CSV_FORMULA_PREFIXES):
        return "'" + value
    return value


_CSV_HEADER: Final = (
    "id", "created_at", "started_at", "finished_at", "guild_id", "channel_id", "user_id", "kind",
    "status", "model", "images_reserved", "images_done", "input_tokens", "output_tokens",
    "cost_estimate", "cost_actual", "message_id", "parent_job_id", "source_image_url", "error",
    "settings", "prompt",
)  # fmt: skip


def _build_csv(rows: list[Any]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(_CSV_HEADER)
    for row in rows:
        writer.writerow([_csv_safe(row[name]) for name in _CSV_HEADER])
    return out.getvalue()


def _json(data: dict[str, Any]) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)


def _limit_repr(value: LimitArg) -> Any:
    """How a limit appears in the audit log."""
    if value is INHERIT:
        return "inherit"
    if value is None:
        return "unlimited"
    return value


_P = ParamSpec("_P")
_T = TypeVar("_T")


def _runs_to_completion(
    method: Callable[Concatenate[QuotaStore, _P], Awaitable[_T]],
) -> Callable[Concatenate[QuotaStore, _P], Awaitable[_T]]:
    """Let a store operation finish even if its caller is cancelled, then re-raise.

    Interactions time out and tasks get cancelled; a half-done transaction must not be the
    result. A settle or refund that was cancelled still lands. A reservation whose caller was
    cancelled cannot be used by anyone, so it is refunded as 'cancelled' straight away.
    """

    @functools.wraps(method)
    async def wrapper(self: QuotaStore, *args: _P.args, **kwargs: _P.kwargs) -> _T:
        task = asyncio.ensure_future(method(self, *args, **kwargs))
        task.add_done_callback(_consume_exception)
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            await asyncio.wait({task})
            if not task.cancelled() and task.exception() is None:
                result = task.result()
                if isinstance(result, Reservation):
                    await self.refund(result.job_id, status="cancelled", error="cancelled while reserving")
            raise

    return wrapper


def _consume_exception(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()  # retrieved: no "exception was never retrieved" noise after a cancel


_SettingsColumn = Literal["timezone", "budget_usd", "manager_role_id"]
# One fixed statement per column (identifiers cannot be SQL parameters, so nothing is built from input).
_UPSERT_SETTINGS: Final[dict[str, str]] = {
    column: f"INSERT INTO guild_settings (guild_id, {column}, updated_at) VALUES (?, ?, ?) "
    f"ON CONFLICT(guild_id) DO UPDATE SET {column} = excluded.{column}, updated_at = excluded.updated_at"
    for column in ("timezone", "budget_usd", "manager_role_id")
}


# --------------------------------------------------------------------------- the store


class QuotaStore:
    """Quotas, budget and the job ledger on an aiosqlite connection opened by ``bot.db``."""

    def __init__(
        self,
        conn: aiosqlite.Connection,
        *,
        default_daily: int | None,
        default_monthly: int | None,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._conn = conn
        self.default_daily = validate_limit(default_daily, what="default_daily")
        self.default_monthly = validate_limit(default_monthly, what="default_monthly")
        self._clock = clock
        self._lock = connection_lock(conn)

    def now(self) -> datetime:
        return as_utc(self._clock())

    # ------------------------------------------------------------------ transactions

    @asynccontextmanager
    async def _write(self, *, immediate: bool = True) -> AsyncIterator[aiosqlite.Connection]:
        """Hold the connection lock and run the body in one transaction.

        ``BEGIN IMMEDIATE`` takes SQLite's write lock before the first read, so a check and the
        write that depends on it cannot be split by another connection. Any exception rolls
        back. aiosqlite runs statements in order on its thread, so a ROLLBACK sent after a
        cancelled BEGIN still runs after it (sqlite3's rollback() is a no-op outside one).
        """
        async with self._lock:
            conn = self._conn
            try:
                await conn.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
            except sqlite3.Error:
                raise  # BEGIN itself failed (e.g. busy): there is no transaction of ours to undo
            except BaseException:
                await asyncio.shield(conn.rollback())
                raise
            try:
                yield conn
                await conn.commit()
            except BaseException:
                await asyncio.shield(conn.rollback())
                raise

    def _read(self) -> Any:
        """A read-only snapshot (deferred transaction) under the lock."""
        return self._write(immediate=False)

    async def _fetchone(self, conn: aiosqlite.Connection, sql: str, params: Sequence[Any] = ()) -> Any:
        async with conn.execute(sql, params) as cur:
            return await cur.fetchone()

    async def _fetchall(self, conn: aiosqlite.Connection, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        async with conn.execute(sql, params) as cur:
            return list(await cur.fetchall())

    async def _audit(
        self,
        conn: aiosqlite.Connection,
        guild_id: int,
        actor_id: int,
        action: str,
        target_id: int | None,
        details: dict[str, Any],
        now: datetime,
    ) -> None:
        await conn.execute(
            "INSERT INTO audit_log (guild_id, actor_id, action, target_id, details, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (guild_id, actor_id, action, target_id, _json(details), _ts(now)),
        )

    # ------------------------------------------------------------------ internal reads

    async def _settings(self, conn: aiosqlite.Connection, guild_id: int | None) -> GuildSettings:
        if guild_id is None:
            return GuildSettings(guild_id=0)
        row = await self._fetchone(
            conn,
            "SELECT timezone, budget_usd, manager_role_id FROM guild_settings WHERE guild_id = ?",
            (guild_id,),
        )
        if row is None:
            return GuildSettings(guild_id=guild_id)
        return GuildSettings(guild_id, row["timezone"], row["budget_usd"], row["manager_role_id"])

    async def _limits(
        self, conn: aiosqlite.Connection, guild_id: int | None, user_id: int, role_ids: Sequence[int]
    ) -> Limits:
        user: dict[str, int | None] = {}
        server: dict[str, int | None] = {}
        roles: dict[int, dict[str, int | None]] = {}
        if guild_id is not None:
            wanted_roles = {int(r) for r in role_ids}
            rows = await self._fetchall(
                conn,
                "SELECT scope, target_id, period, max_images FROM quota_limits WHERE guild_id = ? AND "
                "((scope = 'user' AND target_id = ?) OR scope = 'role' OR scope = 'server')",
                (guild_id, user_id),
            )
            for row in rows:
                scope, target, period, value = row["scope"], row["target_id"], row["period"], row["max_images"]
                if scope == "user":
                    user[period] = value
                elif scope == "server":
                    server[period] = value
                elif target in wanted_roles:
                    roles.setdefault(int(target), {})[period] = value
        return resolve_limits(
            user=user,
            roles=roles,
            server=server,
            bot_daily=self.default_daily,
            bot_monthly=self.default_monthly,
        )

    async def _images_used(
        self, conn: aiosqlite.Connection, guild_id: int | None, user_id: int, since: datetime
    ) -> int:
        if guild_id is None:
            row = await self._fetchone(
                conn,
                f"SELECT {_IMAGES_USED} FROM jobs WHERE guild_id IS NULL AND user_id = ? AND created_at >= ?",
                (user_id, _ts(since)),
            )
            return int(row[0])
        row = await self._fetchone(
            conn,
            f"SELECT {_IMAGES_USED} FROM jobs WHERE guild_id = ? AND user_id = ? AND created_at >= ? "
            "AND id > COALESCE((SELECT last_job_id FROM quota_resets WHERE guild_id = ? AND user_id = ? "
            "ORDER BY id DESC LIMIT 1), 0)",
            (guild_id, user_id, _ts(since), guild_id, user_id),
        )
        return int(row[0])

    async def _budget_spent(self, conn: aiosqlite.Connection, guild_id: int, month: Period) -> float:
        row = await self._fetchone(
            conn,
            f"SELECT {_COST_SPENT} FROM jobs WHERE guild_id = ? AND created_at >= ? AND created_at < ?",
            (guild_id, _ts(month.start), _ts(month.end)),
        )
        return float(row[0])

    async def _usage(
        self,
        conn: aiosqlite.Connection,
        guild_id: int | None,
        user_id: int,
        role_ids: Sequence[int],
        now: datetime,
    ) -> UsageSummary:
        settings = await self._settings(conn, guild_id)
        tz = get_zone(settings.timezone)
        day, month = day_period(now, tz), month_period(now, tz)
        limits = await self._limits(conn, guild_id, user_id, role_ids)
        # Jobs are created at "now" or earlier, so ">= start" is the whole period so far.
        daily_used = await self._images_used(conn, guild_id, user_id, day.start)
        monthly_used = await self._images_used(conn, guild_id, user_id, month.start)
        spent = 0.0
        if guild_id is not None and settings.budget_usd is not None:
            spent = await self._budget_spent(conn, guild_id, month)
        return UsageSummary(
            limits=limits,
            daily_used=daily_used,
            monthly_used=monthly_used,
            daily_resets_at=day.end,
            monthly_resets_at=month.end,
            budget_usd=settings.budget_usd,
            budget_spent=spent,
            timezone=settings.timezone,
        )

    async def _job_status(self, conn: aiosqlite.Connection, job_id: int) -> tuple[str, int]:
        row = await self._fetchone(conn, "SELECT status, images_reserved FROM jobs WHERE id = ?", (job_id,))
        if row is None:
            raise JobNotFound(job_id)
        return str(row["status"]), int(row["images_reserved"])

    # ------------------------------------------------------------------ job lifecycle

    @_runs_to_completion
    async def reserve(
        self,
        *,
        guild_id: int | None,
        channel_id: int | None,
        user_id: int,
        role_ids: Sequence[int],
        kind: str,
        prompt: str,
        settings: dict[str, Any],
        model: str,
        images: int,
        cost_estimate: float,
        parent_job_id: int | None = None,
        source_image_url: str | None = None,
    ) -> Reservation:
        """Check the user's day and month limits and the server's budget, and write the job as
        'reserved' holding ``images`` and ``cost_estimate``, all in one transaction.

        Raises QuotaExceeded (nothing written) if it does not fit. ``guild_id`` None (DMs) uses
        the bot defaults and has no budget.
        """
        if kind not in JOB_KINDS:
            raise ValueError(f"kind must be one of {sorted(JOB_KINDS)}, not {kind!r}")
        if isinstance(images, bool) or not isinstance(images, int) or images < 1:
            raise ValueError("images must be an int >= 1")
        estimate = validate_money(cost_estimate, what="cost_estimate")
        settings_json = _json(dict(settings))
        async with self._write() as conn:
            now = self.now()
            usage = await self._usage(conn, guild_id, user_id, role_ids, now)
            denial = check_images(
                usage.limits, daily_used=usage.daily_used, monthly_used=usage.monthly_used, images=images
            )
            if denial is None and guild_id is not None:
                denial = check_budget(usage.budget_usd, spent=usage.budget_spent, estimate=estimate)
            if denial is not None:
                resets_at = usage.daily_resets_at if denial.period == "daily" else usage.monthly_resets_at
                requested: float | int = estimate if denial.scope == "budget" else images
                raise QuotaExceeded(denial.scope, denial.limit, denial.used, resets_at, requested)
            cur = await conn.execute(
                "INSERT INTO jobs (guild_id, channel_id, user_id, kind, prompt, settings, model, status, "
                "images_reserved, cost_estimate, parent_job_id, source_image_url, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, 'reserved', ?, ?, ?, ?, ?)",
                (
                    guild_id,
                    channel_id,
                    user_id,
                    kind,
                    prompt,
                    settings_json,
                    model,
                    images,
                    estimate,
                    parent_job_id,
                    source_image_url,
                    _ts(now),
                ),
            )
            job_id = cur.lastrowid
            await cur.close()
        assert job_id is not None
        return Reservation(job_id=int(job_id), images=images, cost_estimate=estimate)

    @_runs_to_completion
    async def mark_running(self, job_id: int) -> None:
        """reserved -> running. Raises JobStateError if the job was already refunded or settled
        (e.g. cancelled while queued): the caller must not call the API then."""
        async with self._write() as conn:
            status, _ = await self._job_status(conn, job_id)
            if status == "running":
                return
            if status != "reserved":
                raise JobStateError(job_id, status, "start")
            await conn.execute(
                "UPDATE jobs SET status = 'running', started_at = ? WHERE id = ?", (_ts(self.now()), job_id)
            )

    @_runs_to_completion
    async def settle(
        self,
        job_id: int,
        *,
        images: int,
        cost: float,
        input_tokens: int = 0,
        output_tokens: int = 0,
    ) -> None:
        """Record the outcome: status 'done', or 'partial' if fewer images than reserved.

        ``images == 0`` refunds (status 'failed') but still records the cost and tokens, which
        count against the budget. Raises JobStateError unless the job is reserved or running.
        """
        if isinstance(images, bool) or not isinstance(images, int) or images < 0:
            raise ValueError("images must be an int >= 0")
        actual = validate_money(cost, what="cost")
        for name, value in (("input_tokens", input_tokens), ("output_tokens", output_tokens)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be an int >= 0")
        async with self._write() as conn:
            status, reserved = await self._job_status(conn, job_id)
            if status not in ACTIVE_STATUSES:
                raise JobStateError(job_id, status, "settle")
            if images == 0:
                new_status, error = "failed", "no images produced"
            else:
                new_status, error = ("partial" if images < reserved else "done"), None
            if images > reserved:
                log.warning("job %s produced %s images but reserved %s", job_id, images, reserved)
            await conn.execute(
                "UPDATE jobs SET status = ?, images_done = ?, cost_actual = ?, input_tokens = ?, "
                "output_tokens = ?, error = COALESCE(error, ?), finished_at = ? WHERE id = ?",
                (new_status, images, actual, input_tokens, output_tokens, error, _ts(self.now()), job_id),
            )

    @_runs_to_completion
    async def refund(self, job_id: int, *, status: str, error: str | None = None) -> bool:
        """Release a reservation: status failed|blocked|cancelled|crashed.

        Idempotent: refunding a refunded job does nothing. Never refunds a settled job (logs and
        does nothing). Returns True if this call refunded the job.
        """
        if status not in REFUND_STATUSES:
            raise ValueError(f"status must be one of {sorted(REFUND_STATUSES)}, not {status!r}")
        async with self._write() as conn:
            current, _ = await self._job_status(conn, job_id)
            if current not in ACTIVE_STATUSES:
                if current in SETTLED_STATUSES:
                    log.warning("not refunding job %s: already settled (%s)", job_id, current)
                return False
            await conn.execute(
                "UPDATE jobs SET status = ?, error = ?, finished_at = ? WHERE id = ?",
                (status, error, _ts(self.now()), job_id),
            )
            return True

    @_runs_to_completion
    async def set_message(self, job_id: int, message_id: int) -> None:
        """Remember the Discord message that shows the job's result."""
        async with self._write() as conn:
            cur = await conn.execute("UPDATE jobs SET message_id = ? WHERE id = ?", (message_id, job_id))
            changed = cur.rowcount
            await cur.close()
            if changed == 0:
                raise JobNotFound(job_id)

    async def get_job(self, job_id: int) -> JobRecord | None:
        row = await self._fetchone(self._conn, f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id = ?", (job_id,))
        return None if row is None else _row_to_job(row)

    async def job_by_message(self, message_id: int) -> JobRecord | None:
        """The job whose result is ``message_id`` (for buttons after a restart)."""
        row = await self._fetchone(
            self._conn,
            f"SELECT {_JOB_COLUMNS} FROM jobs WHERE message_id = ? ORDER BY id DESC LIMIT 1",
            (message_id,),
        )
        return None if row is None else _row_to_job(row)

    @_runs_to_completion
    async def recover_reservations(self) -> list[int]:
        """At start: refund every job left reserved/running by a crash (status 'crashed')."""
        async with self._write() as conn:
            rows = await self._fetchall(conn, "SELECT id FROM jobs WHERE status IN ('reserved', 'running') ORDER BY id")
            ids = [int(r["id"]) for r in rows]
            if ids:
                await conn.execute(
                    "UPDATE jobs SET status = 'crashed', finished_at = ?, "
                    "error = COALESCE(error, 'interrupted: bot restarted') "
                    "WHERE status IN ('reserved', 'running')",
                    (_ts(self.now()),),
                )
        if ids:
            log.warning("refunded %d job(s) interrupted by a restart: %s", len(ids), ids)
        return ids

    # ------------------------------------------------------------------ reads for users

    @_runs_to_completion
    async def usage(self, guild_id: int | None, user_id: int, role_ids: Sequence[int]) -> UsageSummary:
        async with self._read() as conn:
            return await self._usage(conn, guild_id, user_id, role_ids, self.now())

    async def recent_jobs(self, guild_id: int | None, user_id: int, limit: int = 10) -> list[JobRecord]:
        limit = max(1, min(int(limit), 100))
        if guild_id is None:
            sql = f"SELECT {_JOB_COLUMNS} FROM jobs WHERE guild_id IS NULL AND user_id = ? ORDER BY id DESC LIMIT ?"
            params: tuple[Any, ...] = (user_id, limit)
        else:
            sql = f"SELECT {_JOB_COLUMNS} FROM jobs WHERE guild_id = ? AND user_id = ? ORDER BY id DESC LIMIT ?"
            params = (guild_id, user_id, limit)
        return [_row_to_job(r) for r in await self._fetchall(self._conn, sql, params)]

    # ------------------------------------------------------------------ moderator settings

    async def get_settings(self, guild_id: int) -> GuildSettings:
        return await self._settings(self._conn, guild_id)

    async def _upsert_settings(
        self, conn: aiosqlite.Connection, guild_id: int, column: _SettingsColumn, value: Any
    ) -> Any:
        """Set one guild_settings column; returns its old value."""
        old = await self._settings(conn, guild_id)
        await conn.execute(_UPSERT_SETTINGS[column], (guild_id, value, _ts(self.now())))
        return getattr(old, column)

    @_runs_to_completion
    async def set_budget(self, guild_id: int, usd: float | None, *, actor_id: int) -> None:
        """Monthly budget in USD for the server; None removes it."""
        value = None if usd is None else validate_money(usd, what="budget")
        async with self._write() as conn:
            old = await self._upsert_settings(conn, guild_id, "budget_usd", value)
            await self._audit(conn, guild_id, actor_id, "set_budget", None, {"old": old, "new": value}, self.now())

    @_runs_to_completion
    async def set_timezone(self, guild_id: int, tz: str, *, actor_id: int) -> str:
        """Set the server's IANA time zone (ValueError for unknown names); returns the name stored."""
        name = _validate_timezone(tz)
        async with self._write() as conn:
            old = await self._upsert_settings(conn, guild_id, "timezone", name)
            await self._audit(conn, guild_id, actor_id, "set_timezone", None, {"old": old, "new": name}, self.now())
        return name

    @_runs_to_completion
    async def set_manager_role(self, guild_id: int, role_id: int | None, *, actor_id: int) -> None:
        async with self._write() as conn:
            old = await self._upsert_settings(conn, guild_id, "manager_role_id", role_id)
            await self._audit(
                conn, guild_id, actor_id, "set_manager_role", role_id, {"old": old, "new": role_id}, self.now()
            )

    async def get_manager_role(self, guild_id: int) -> int | None:
        return (await self.get_settings(guild_id)).manager_role_id

    @_runs_to_completion
    async def _set_limits(
        self,
        guild_id: int,
        scope: Literal["user", "role", "server"],
        target_id: int,
        values: dict[str, LimitArg],
        actor_id: int,
    ) -> dict[str, dict[str, Any]]:
        changes = {p: v for p, v in values.items() if v is not UNCHANGED}
        for period, value in changes.items():
            if value is not INHERIT:
                validate_limit(value, what=f"{period} limit")
        if not changes:
            return {}
        async with self._write() as conn:
            now = self.now()
            details: dict[str, Any] = {}
            for period, value in changes.items():
                old_row = await self._fetchone(
                    conn,
                    "SELECT max_images FROM quota_limits WHERE guild_id = ? AND scope = ? AND target_id = ? "
                    "AND period = ?",
                    (guild_id, scope, target_id, period),
                )
                old: Any = "inherit" if old_row is None else _limit_repr(old_row["max_images"])
                details[period] = {"old": old, "new": _limit_repr(value)}
                if value is INHERIT:
                    await conn.execute(
                        "DELETE FROM quota_limits WHERE guild_id = ? AND scope = ? AND target_id = ? AND period = ?",
                        (guild_id, scope, target_id, period),
                    )
                else:
                    await conn.execute(
                        "INSERT INTO quota_limits (guild_id, scope, target_id, period, max_images, updated_at, "
                        "updated_by) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(guild_id, scope, target_id, period) "
                        "DO UPDATE SET max_images = excluded.max_images, updated_at = excluded.updated_at, "
                        "updated_by = excluded.updated_by",
                        (guild_id, scope, target_id, period, value, _ts(now), actor_id),
                    )
            action = {"user": "set_user_limit", "role": "set_role_limit", "server": "set_default_limit"}[scope]
            await self._audit(conn, guild_id, actor_id, action, target_id or None, details, now)
        return details

    async def set_user_limit(
        self,
        guild_id: int,
        user_id: int,
        *,
        daily: LimitArg = UNCHANGED,
        monthly: LimitArg = UNCHANGED,
        actor_id: int,
    ) -> dict[str, dict[str, Any]]:
        """Per-user override. int >= 0 (0 blocks), None = unlimited, INHERIT = remove, UNCHANGED = keep."""
        return await self._set_limits(guild_id, "user", user_id, {"daily": daily, "monthly": monthly}, actor_id)

    async def set_role_limit(
        self,
        guild_id: int,
        role_id: int,
        *,
        daily: LimitArg = UNCHANGED,
        monthly: LimitArg = UNCHANGED,
        actor_id: int,
    ) -> dict[str, dict[str, Any]]:
        return await self._set_limits(guild_id, "role", role_id, {"daily": daily, "monthly": monthly}, actor_id)

    async def set_default_limit(
        self,
        guild_id: int,
        *,
        daily: LimitArg = UNCHANGED,
        monthly: LimitArg = UNCHANGED,
        actor_id: int,
    ) -> dict[str, dict[str, Any]]:
        """The server default (below user and role limits, above the bot default)."""
        return await self._set_limits(guild_id, "server", 0, {"daily": daily, "monthly": monthly}, actor_id)

    async def list_limits(self, guild_id: int) -> list[LimitOverride]:
        """Every override set in the server: server default first, then roles, then users."""
        rows = await self._fetchall(
            self._conn,
            "SELECT scope, target_id, period, max_images FROM quota_limits WHERE guild_id = ? "
            "ORDER BY CASE scope WHEN 'server' THEN 0 WHEN 'role' THEN 1 ELSE 2 END, target_id",
            (guild_id,),
        )
        grouped: dict[tuple[str, int], dict[str, int | None]] = {}
        for row in rows:
            grouped.setdefault((row["scope"], int(row["target_id"])), {})[row["period"]] = row["max_images"]
        return [
            LimitOverride(
                scope=scope,  # type: ignore[arg-type]
                target_id=target,
                daily=o.get("daily"),
                monthly=o.get("monthly"),
                daily_set="daily" in o,
                monthly_set="monthly" in o,
            )
            for (scope, target), o in grouped.items()
        ]

    @_runs_to_completion
    async def reset_user(self, guild_id: int, user_id: int, *, actor_id: int) -> UsageSummary:
        """Clear the user's usage for the current day and month (jobs so far stop counting).

        Jobs still in flight stop counting too; the ledger and the budget are untouched. Returns the
        usage just before the reset (its limits ignore the user's roles: read only the counts).
        """
        async with self._write() as conn:
            now = self.now()
            before = await self._usage(conn, guild_id, user_id, (), now)
            row = await self._fetchone(conn, "SELECT COALESCE(MAX(id), 0) FROM jobs")
            last_job_id = int(row[0])
            await conn.execute(
                "INSERT INTO quota_resets (guild_id, user_id, last_job_id, reset_at, actor_id) VALUES (?, ?, ?, ?, ?)",
                (guild_id, user_id, last_job_id, _ts(now), actor_id),
            )
            await self._audit(
                conn,
                guild_id,
                actor_id,
                "reset_user",
                user_id,
                {"daily_used": before.daily_used, "monthly_used": before.monthly_used, "last_job_id": last_job_id},
                now,
            )
        return before

    async def audit_log(self, guild_id: int, *, limit: int = 25) -> list[AuditEntry]:
        """The server's most recent moderator actions, newest first."""
        rows = await self._fetchall(
            self._conn,
            "SELECT id, guild_id, actor_id, action, target_id, details, created_at FROM audit_log "
            "WHERE guild_id = ? ORDER BY id DESC LIMIT ?",
            (guild_id, max(1, min(int(limit), 500))),
        )
        entries = []
        for r in rows:
            created = _parse_ts(r["created_at"])
            assert created is not None
            entries.append(
                AuditEntry(
                    int(r["id"]),
                    int(r["guild_id"]),
                    int(r["actor_id"]),
                    r["action"],
                    r["target_id"],
                    json.loads(r["details"] or "{}"),
                    created,
                )
            )
        return entries

    # ------------------------------------------------------------------ reports

    @_runs_to_completion
    async def report(self, guild_id: int) -> Report:
        """This month's (server time zone) jobs, images and spend per user and in total."""
        async with self._read() as conn:
            settings = await self._settings(conn, guild_id)
            month = month_period(self.now(), get_zone(settings.timezone))
            rows = await self._fetchall(
                conn,
                f"SELECT user_id, COUNT(*) AS jobs, {_IMAGES_USED} AS images, {_COST_SPENT} AS spent "
                "FROM jobs WHERE guild_id = ? AND created_at >= ? AND created_at < ? "
                "GROUP BY user_id ORDER BY images DESC, spent DESC, user_id",
                (guild_id, _ts(month.start), _ts(month.end)),
            )
        users = [UserReport(int(r["user_id"]), int(r["jobs"]), int(r["images"]), float(r["spent"])) for r in rows]
        return Report(
            guild_id=guild_id,
            timezone=settings.timezone,
            period_start=month.start,
            period_end=month.end,
            budget_usd=settings.budget_usd,
            total_jobs=sum(u.jobs for u in users),
            total_images=sum(u.images for u in users),
            total_spent=sum(u.spent_usd for u in users),
            users=users,
        )

    @_runs_to_completion
    async def ledger_csv(self, guild_id: int, *, since: datetime | None = None) -> str:
        """The server's ledger rows as CSV, from ``since`` (default: start of this month in the
        server's time zone). Cells that would start a spreadsheet formula are prefixed with '."""
        async with self._read() as conn:
            if since is None:
                settings = await self._settings(conn, guild_id)
                since = month_period(self.now(), get_zone(settings.timezone)).start
            rows = await self._fetchall(
                conn,
                f"SELECT {_JOB_COLUMNS} FROM jobs WHERE guild_id = ? AND created_at >= ? ORDER BY id",
                (guild_id, _ts(since)),
            )
        if len(rows) > 500:
            return await asyncio.to_thread(_build_csv, rows)
        return _build_csv(rows)


__all__ = [
    "INHERIT",
    "PERIODS",
    "UNCHANGED",
    "AuditEntry",
    "GuildSettings",
    "JobNotFound",
    "JobRecord",
    "JobStateError",
    "LimitOverride",
    "QuotaError",
    "QuotaExceeded",
    "QuotaStore",
    "Report",
    "Reservation",
    "UsageSummary",
    "UserReport",
    "connection_lock",
]
