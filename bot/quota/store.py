"""The quota store: the job ledger, reservations and moderator settings, in SQLite or PostgreSQL.

Money is at stake, so the rules are strict: every check-then-write is one transaction, a
cancelled caller never leaves half an operation behind, and SQL is parameterised only. The
parts live by concern and ``QuotaStore`` puts them together:

* ``bot/quota/records.py``: the records it returns and the errors it raises;
* ``bot/storage/sqlite.py``: transactions, the SQLite backend, the run-to-completion rule;
* ``bot/storage/postgres.py``: the PostgreSQL backend (an asyncpg pool);
* ``bot/quota/connect.py``: ``open_store(settings)``, which picks one from ``DATABASE_URL``;
* ``bot/quota/ledger.py``: reserve / mark_running / settle / refund, usage;
* ``bot/quota/leases.py``: jobs owned by a process, its lease, crash recovery;
* ``bot/quota/moderation.py``: limits, budget, time zone, manager role, resets, audit log;
* ``bot/quota/reports.py``: the monthly report and the ledger as CSV.
"""

from __future__ import annotations

from bot.quota.leases import Leases
from bot.quota.moderation import Moderation
from bot.quota.policy import PERIODS
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
from bot.storage.sqlite import connection_lock


class QuotaStore(Moderation, Reports, Leases):
    """Quotas, budget and the job ledger.

    ``QuotaStore(conn, ...)`` takes an aiosqlite connection opened by ``bot.storage.db.open_database``
    or a ``bot.storage.sqlite.Backend`` (``bot.storage.postgres.PostgresBackend``).
    """


__all__ = [
    "INHERIT",
    "PERIODS",
    "UNCHANGED",
    "AuditEntry",
    "GuildSettings",
    "JobNotFound",
    "JobRecord",
    "JobStateError",
    "LimitArg",
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
