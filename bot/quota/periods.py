"""Calendar periods (day, month) in a server's time zone. Pure functions, no I/O.

All inputs and outputs are *aware* datetimes; results are in UTC. A period is the half-open
interval ``[start, end)``; ``end`` is the moment the period rolls over (``resets_at``).

DST: a local day starts at the first instant whose local date is that day. Local midnight is
built with ``fold=0``; for zones whose DST change happens at midnight (e.g. America/Santiago)
the non-existent 00:00 then maps to the transition instant, and an ambiguous 00:00 maps to its
first occurrence, which is exactly that first instant in both cases. Days are therefore 23, 24
or 25 hours long as the wall clock says, never a fixed 24 h.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.storage.clock import as_utc

DEFAULT_TIMEZONE = "UTC"


@dataclass(frozen=True, slots=True)
class Period:
    start: datetime  # aware, UTC, inclusive
    end: datetime  # aware, UTC, exclusive: when the period rolls over

    def __contains__(self, moment: datetime) -> bool:
        return self.start <= moment < self.end


def validate_timezone(name: str) -> str:
    """Return ``name`` if it is a known IANA time zone; ValueError otherwise."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError("time zone name must be a non-empty string")
    name = name.strip()
    try:
        get_zone(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise ValueError(f"unknown time zone: {name!r}") from exc
    return name


@lru_cache(maxsize=256)
def get_zone(name: str) -> ZoneInfo:
    """ZoneInfo for an IANA name (raises ZoneInfoNotFoundError/ValueError for bad names)."""
    return ZoneInfo(name)


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    """The first instant (UTC) of the local calendar ``day`` in ``tz``."""
    return datetime(day.year, day.month, day.day, tzinfo=tz, fold=0).astimezone(UTC)


def day_period(now: datetime, tz: ZoneInfo) -> Period:
    """The local calendar day containing ``now``."""
    today = as_utc(now).astimezone(tz).date()
    return Period(local_midnight(today, tz), local_midnight(today + timedelta(days=1), tz))


def month_period(now: datetime, tz: ZoneInfo) -> Period:
    """The local calendar month containing ``now``."""
    local = as_utc(now).astimezone(tz).date()
    first = local.replace(day=1)
    nxt = date(first.year + 1, 1, 1) if first.month == 12 else date(first.year, first.month + 1, 1)
    return Period(local_midnight(first, tz), local_midnight(nxt, tz))
