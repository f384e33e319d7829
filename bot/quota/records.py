"""The quota store's records, errors and value helpers (shared by every module of ``bot.quota``)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import Enum
from typing import Any, Final, Literal

from bot.quota.periods import DEFAULT_TIMEZONE
from bot.quota.policy import Limits, remaining
from bot.storage.clock import parse_ts, ts, utc_now

ACTIVE_STATUSES: Final = ("reserved", "running")
SETTLED_STATUSES: Final = ("done", "partial")
REFUND_STATUSES: Final = frozenset({"failed", "blocked", "cancelled", "crashed"})
JOB_KINDS: Final = frozenset({"generate", "edit"})

# SQL fragments shared by the ledger and the reports (constants, never built from input).
IMAGES_OF_JOB = (
    "CASE WHEN status IN ('reserved', 'running') THEN images_reserved "
    "WHEN status IN ('done', 'partial') THEN images_done ELSE 0 END"
)
IMAGES_USED = f"COALESCE(SUM({IMAGES_OF_JOB}), 0)"
COST_SPENT = "COALESCE(SUM(CASE WHEN status IN ('reserved', 'running') THEN cost_estimate ELSE cost_actual END), 0)"
JOB_COLUMNS = (
    "id, guild_id, channel_id, user_id, kind, prompt, settings, model, status, images_reserved, "
    "images_done, input_tokens, output_tokens, cost_estimate, cost_actual, error, message_id, "
    "parent_job_id, source_image_url, created_at, finished_at, started_at, owner, counters, purged_at"
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

    scope: str  # "daily" | "monthly" | "budget" | "blocked"; bot-wide: "bot_daily" | "bot_budget"
    limit: float | int  # images, or USD for "budget" and "bot_budget"
    used: float | int  # images used in the period, or USD spent this month
    resets_at: datetime  # aware UTC: when that period rolls over (for "blocked", too)
    requested: float | int = 0  # images asked for, or the job's estimated USD for the budgets

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
    owner: str | None = None  # the instance that reserved it (bot/storage/leases.py)
    counters: tuple[str, ...] = ()  # the quota counters it charged (bot/quota/counters.py)
    purged_at: datetime | None = None  # when its prompt was erased (bot/quota/retention.py)

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
    # The bot-wide per-person cap (``BOT_USER_DAILY_LIMIT``, all servers together, UTC days); None: no cap.
    everywhere_daily: int | None = None
    everywhere_used: int = 0
    everywhere_resets_at: datetime | None = None

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
    daily: list[DayReport] = field(default_factory=list)  # each day of the month so far, in the server's zone


@dataclass(frozen=True, slots=True)
class DayReport:
    day: date  # in the server's time zone
    images: int
    spent_usd: float


# --------------------------------------------------------------------------- helpers


def row_to_job(row: Any) -> JobRecord:
    settings_text = row["settings"]
    try:
        settings = json.loads(settings_text) if settings_text else {}
    except ValueError:
        settings = {"_raw": settings_text}
    created = parse_ts(row["created_at"])
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
        finished_at=parse_ts(row["finished_at"]),
        started_at=parse_ts(row["started_at"]),
        owner=row["owner"],
        counters=tuple((row["counters"] or "").split()),
        purged_at=parse_ts(row["purged_at"]),
    )


def to_json(data: dict[str, Any]) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)


def limit_repr(value: LimitArg) -> Any:
    """How a limit appears in the audit log."""
    if value is INHERIT:
        return "inherit"
    if value is None:
        return "unlimited"
    return value


__all__ = ["parse_ts", "ts", "utc_now"]  # re-exported: the quota modules' time helpers are storage's
