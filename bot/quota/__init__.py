"""Per-user image quotas, server budgets and the job ledger (no Discord imports)."""

from bot.quota.periods import Period, day_period, month_period, validate_timezone
from bot.quota.policy import Limits, check_budget, check_images, resolve_limits
from bot.quota.store import (
    INHERIT,
    UNCHANGED,
    AuditEntry,
    GuildSettings,
    JobNotFound,
    JobRecord,
    JobStateError,
    LimitOverride,
    QuotaError,
    QuotaExceeded,
    QuotaStore,
    Report,
    Reservation,
    UsageSummary,
    UserReport,
    connection_lock,
)

__all__ = [
    "INHERIT",
    "UNCHANGED",
    "AuditEntry",
    "GuildSettings",
    "JobNotFound",
    "JobRecord",
    "JobStateError",
    "LimitOverride",
    "Limits",
    "Period",
    "QuotaError",
    "QuotaExceeded",
    "QuotaStore",
    "Report",
    "Reservation",
    "UsageSummary",
    "UserReport",
    "check_budget",
    "check_images",
    "connection_lock",
    "day_period",
    "month_period",
    "resolve_limits",
    "validate_timezone",
]
