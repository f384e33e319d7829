"""Per-user image quotas, server budgets and the job ledger (no Discord imports), on ``bot.storage``."""

from bot.quota.compose import Quota, defaults_from
from bot.quota.ledger import Ledger
from bot.quota.moderation import Moderation
from bot.quota.periods import Period, day_period, month_period, validate_timezone
from bot.quota.policy import PERIODS, Limits, check_budget, check_images, resolve_limits
from bot.quota.reads import QuotaDefaults
from bot.quota.records import (
    INHERIT,
    UNCHANGED,
    AuditEntry,
    GuildSettings,
    JobNotFound,
    JobRecord,
    JobStateError,
    LimitArg,
    LimitOverride,
    QuotaError,
    QuotaExceeded,
    Report,
    Reservation,
    UsageSummary,
    UserReport,
)
from bot.quota.reports import Reports

__all__ = [
    "INHERIT",
    "PERIODS",
    "UNCHANGED",
    "AuditEntry",
    "GuildSettings",
    "JobNotFound",
    "JobRecord",
    "JobStateError",
    "Ledger",
    "LimitArg",
    "LimitOverride",
    "Limits",
    "Moderation",
    "Period",
    "Quota",
    "QuotaDefaults",
    "QuotaError",
    "QuotaExceeded",
    "Report",
    "Reports",
    "Reservation",
    "UsageSummary",
    "UserReport",
    "check_budget",
    "check_images",
    "day_period",
    "defaults_from",
    "month_period",
    "resolve_limits",
    "validate_timezone",
]
