"""Quota policy: which limit applies to a user, and whether a request fits. Pure, no I/O.

A limit is a number of images per period; ``None`` means unlimited and ``0`` means blocked.
Day and month resolve independently, each in this order:

1. a limit set for the user;
2. otherwise the most generous limit among the user's roles that have one (unlimited beats
   any number; ties go to the lowest role id so the answer is deterministic);
3. otherwise the server default;
4. otherwise the bot-wide default from the settings.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal

Period = Literal["daily", "monthly"]
PERIODS: Final[tuple[Period, ...]] = ("daily", "monthly")

# A level's overrides: period -> limit, present only for periods that level sets.
# ``{"daily": None}`` sets daily to unlimited; ``{}`` sets nothing.
Overrides = Mapping[str, int | None]

# Float slack when comparing money, so 0.1 + 0.2 does not exceed a 0.3 budget.
MONEY_EPSILON: Final = 1e-9


@dataclass(frozen=True, slots=True)
class Limits:
    daily: int | None
    monthly: int | None
    daily_source: str  # "user" | "role:<id>" | "server" | "bot"
    monthly_source: str

    @property
    def blocked(self) -> bool:
        return self.daily == 0 or self.monthly == 0


def _more_generous(a: int | None, b: int | None) -> bool:
    """True if limit ``a`` allows strictly more than ``b``."""
    if a is None:
        return b is not None
    if b is None:
        return False
    return a > b


def resolve_period(
    period: str,
    *,
    user: Overrides,
    roles: Mapping[int, Overrides],
    server: Overrides,
    bot_default: int | None,
) -> tuple[int | None, str]:
    """(limit, source) for one period."""
    if period in user:
        return user[period], "user"
    best: tuple[int | None, int] | None = None
    for role_id in sorted(roles):
        overrides = roles[role_id]
        if period not in overrides:
            continue
        value = overrides[period]
        if best is None or _more_generous(value, best[0]):
            best = (value, role_id)
    if best is not None:
        return best[0], f"role:{best[1]}"
    if period in server:
        return server[period], "server"
    return bot_default, "bot"


def resolve_limits(
    *,
    user: Overrides,
    roles: Mapping[int, Overrides],
    server: Overrides,
    bot_daily: int | None,
    bot_monthly: int | None,
) -> Limits:
    """Resolve day and month independently (see the module docstring)."""
    daily, daily_source = resolve_period("daily", user=user, roles=roles, server=server, bot_default=bot_daily)
    monthly, monthly_source = resolve_period("monthly", user=user, roles=roles, server=server, bot_default=bot_monthly)
    return Limits(daily, monthly, daily_source, monthly_source)


def roles_of_user(role_limits: Mapping[int, Overrides], role_ids: Iterable[int]) -> dict[int, Overrides]:
    """The subset of a server's role limits that apply to a member with ``role_ids``."""
    wanted = set(role_ids)
    return {rid: o for rid, o in role_limits.items() if rid in wanted}


@dataclass(frozen=True, slots=True)
class Denial:
    """Why a request does not fit (the store turns it into QuotaExceeded)."""

    scope: str  # "blocked" | "daily" | "monthly" | "budget"
    limit: float | int
    used: float | int
    period: Period  # which period's roll-over is the relevant reset time


def check_images(limits: Limits, *, daily_used: int, monthly_used: int, images: int) -> Denial | None:
    """None if ``images`` more fit within both limits; else the first limit that stops them."""
    if limits.daily == 0:
        return Denial("blocked", 0, daily_used, "daily")
    if limits.monthly == 0:
        return Denial("blocked", 0, monthly_used, "monthly")
    if limits.daily is not None and daily_used + images > limits.daily:
        return Denial("daily", limits.daily, daily_used, "daily")
    if limits.monthly is not None and monthly_used + images > limits.monthly:
        return Denial("monthly", limits.monthly, monthly_used, "monthly")
    return None


def check_budget(budget_usd: float | None, *, spent: float, estimate: float) -> Denial | None:
    """None if a job estimated at ``estimate`` USD fits the monthly budget (None = no budget).

    An exhausted budget (spent >= budget, including a budget of 0) refuses even free jobs.
    """
    if budget_usd is None:
        return None
    if spent >= budget_usd - MONEY_EPSILON or spent + estimate > budget_usd + MONEY_EPSILON:
        return Denial("budget", budget_usd, spent, "monthly")
    return None


def validate_limit(value: object, *, what: str = "limit") -> int | None:
    """A limit must be None (unlimited) or an int >= 0 (0 = blocked)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int or None, not {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{what} must be >= 0 (0 blocks, None is unlimited)")
    return value


def validate_money(value: object, *, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{what} must be a number")
    result = float(value)
    if not math.isfinite(result) or result < 0:
        raise ValueError(f"{what} must be a finite number >= 0")
    return result


def remaining(limit: int | None, used: int) -> int | None:
    """Images left in a period (None = unlimited)."""
    return None if limit is None else max(0, limit - used)


def resets_for(period: Period, daily_end: datetime, monthly_end: datetime) -> datetime:
    return daily_end if period == "daily" else monthly_end
