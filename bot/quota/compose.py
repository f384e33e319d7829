"""The quota domain's repositories on one database: the ledger (jobs, reservations, counters), moderation
(limits, budget, time zone, resets, audit log) and reports. The composition root builds them once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from bot.quota.ledger import Ledger
from bot.quota.moderation import Moderation
from bot.quota.reads import QuotaDefaults
from bot.quota.reports import Reports
from bot.storage.database import Database


class QuotaSettings(Protocol):
    """The part of ``bot.config.settings.Settings`` the quota domain reads."""

    @property
    def default_daily_limit(self) -> int | None: ...
    @property
    def default_monthly_limit(self) -> int | None: ...
    @property
    def bot_user_daily_limit(self) -> int | None: ...
    @property
    def bot_monthly_budget_usd(self) -> float | None: ...


def defaults_from(settings: QuotaSettings) -> QuotaDefaults:
    return QuotaDefaults(
        daily=settings.default_daily_limit,
        monthly=settings.default_monthly_limit,
        bot_user_daily=settings.bot_user_daily_limit,
        bot_budget_usd=settings.bot_monthly_budget_usd,
    )


@dataclass(frozen=True, slots=True)
class Quota:
    db: Database
    ledger: Ledger
    moderation: Moderation
    reports: Reports

    @classmethod
    def on(cls, db: Database, defaults: QuotaDefaults) -> Quota:
        """The repositories on ``db``; with a lease, each renewal also refunds the jobs of siblings whose
        lease expired."""
        ledger = Ledger(db, defaults)
        if db.lease is not None:
            db.lease.after_renew.append(ledger.recover_siblings)
        return cls(db, ledger, Moderation(db, defaults), Reports(db))
