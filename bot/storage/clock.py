"""Time as the database stores it: aware UTC datetimes, written as fixed-width ISO-8601 text so that
comparing the text in SQL compares the times, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    return datetime.now(UTC)


def as_utc(moment: datetime) -> datetime:
    """Aware UTC datetime; a naive datetime is taken to be UTC already."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def ts(moment: datetime) -> str:
    """Fixed-width ISO-8601 UTC, so text comparison in SQL is time comparison."""
    return as_utc(moment).isoformat(timespec="microseconds")


def parse_ts(value: str | None) -> datetime | None:
    return None if value is None else as_utc(datetime.fromisoformat(value))
