"""Pure quota policy and calendar period math (no I/O)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import pytest

from bot.quota.periods import day_period, get_zone, month_period, validate_timezone
from bot.quota.policy import Limits, Overrides, check_budget, check_images, resolve_limits

LA = get_zone("America/Los_Angeles")
TOKYO = get_zone("Asia/Tokyo")


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


# --------------------------------------------------------------------------- resolution order


def resolve(
    user: Overrides | None = None,
    roles: Mapping[int, Overrides] | None = None,
    server: Overrides | None = None,
    bot: tuple[int | None, int | None] = (10, 100),
) -> Limits:
    return resolve_limits(user=user or {}, roles=roles or {}, server=server or {}, bot_daily=bot[0], bot_monthly=bot[1])


def test_bot_default_when_nothing_set() -> None:
    assert resolve() == Limits(10, 100, "bot", "bot")
    assert resolve(bot=(None, None)) == Limits(None, None, "bot", "bot")


def test_server_beats_bot() -> None:
    assert resolve(server={"daily": 3, "monthly": 30}) == Limits(3, 30, "server", "server")


def test_role_beats_server_and_most_generous_role_wins() -> None:
    roles = {11: {"daily": 2}, 12: {"daily": 7}, 13: {"daily": 5, "monthly": 40}}
    limits = resolve(roles=roles, server={"daily": 50, "monthly": 30})
    # A role limit applies even if the server default is larger: roles come first.
    assert limits == Limits(7, 40, "role:12", "role:13")


def test_unlimited_role_beats_any_number() -> None:
    limits = resolve(roles={1: {"daily": 1000}, 2: {"daily": None}, 3: {"daily": 0}})
    assert (limits.daily, limits.daily_source) == (None, "role:2")


def test_role_tie_goes_to_lowest_role_id() -> None:
    assert resolve(roles={9: {"daily": 4}, 3: {"daily": 4}}).daily_source == "role:3"


def test_user_beats_roles_even_if_stricter() -> None:
    limits = resolve(user={"daily": 1}, roles={5: {"daily": None, "monthly": None}})
    assert limits == Limits(1, None, "user", "role:5")


def test_day_and_month_resolve_independently() -> None:
    limits = resolve(user={"daily": 2}, server={"monthly": 20})
    assert limits == Limits(2, 20, "user", "server")


def test_explicit_unlimited_and_blocked_override_lower_levels() -> None:
    assert resolve(user={"daily": None}, server={"daily": 3}).daily is None
    blocked = resolve(user={"monthly": 0}, roles={1: {"monthly": None}})
    assert blocked.monthly == 0 and blocked.blocked
    assert check_images(blocked, daily_used=0, monthly_used=0, images=1).scope == "blocked"  # type: ignore[union-attr]


def test_role_zero_blocks_only_if_no_more_generous_role() -> None:
    assert resolve(roles={1: {"daily": 0}}).daily == 0
    assert resolve(roles={1: {"daily": 0}, 2: {"daily": 1}}).daily == 1


# --------------------------------------------------------------------------- checks


def test_check_images() -> None:
    limits = Limits(5, 20, "bot", "bot")
    assert check_images(limits, daily_used=4, monthly_used=0, images=1) is None
    d = check_images(limits, daily_used=4, monthly_used=0, images=2)
    assert d is not None and (d.scope, d.limit, d.used, d.period) == ("daily", 5, 4, "daily")
    m = check_images(limits, daily_used=0, monthly_used=20, images=1)
    assert m is not None and m.scope == "monthly" and m.period == "monthly"
    assert check_images(Limits(None, None, "bot", "bot"), daily_used=10**6, monthly_used=10**6, images=9) is None


def test_check_budget() -> None:
    assert check_budget(None, spent=1e9, estimate=1) is None
    assert check_budget(0.3, spent=0.1 + 0.1, estimate=0.1) is None  # float slack
    assert check_budget(1.0, spent=0.95, estimate=0.1).scope == "budget"  # type: ignore[union-attr]
    assert check_budget(1.0, spent=1.0, estimate=0.0) is not None  # exhausted refuses even free jobs
    assert check_budget(0.0, spent=0.0, estimate=0.0) is not None  # a 0 budget blocks


# --------------------------------------------------------------------------- periods


def test_utc_day_and_month() -> None:
    now = utc(2024, 2, 29, 23, 59, 59)
    tz = get_zone("UTC")
    assert day_period(now, tz).start == utc(2024, 2, 29)
    assert day_period(now, tz).end == utc(2024, 3, 1)
    assert month_period(now, tz).start == utc(2024, 2, 1)
    assert month_period(now, tz).end == utc(2024, 3, 1)


def test_los_angeles_day_rolls_over_at_local_midnight() -> None:
    # 2024-06-15 07:59 UTC is 00:59 PDT on the 15th; 06:59 UTC is 23:59 on the 14th.
    before = day_period(utc(2024, 6, 15, 6, 59), LA)
    after = day_period(utc(2024, 6, 15, 7, 0), LA)
    assert before.end == utc(2024, 6, 15, 7) == after.start
    assert after.end == utc(2024, 6, 16, 7)


def test_tokyo_day_is_ahead_of_utc() -> None:
    # 2024-06-14 15:00 UTC is 2024-06-15 00:00 JST.
    p = day_period(utc(2024, 6, 14, 15, 0), TOKYO)
    assert p.start == utc(2024, 6, 14, 15) and p.end == utc(2024, 6, 15, 15)
    assert day_period(utc(2024, 6, 14, 14, 59, 59), TOKYO).end == utc(2024, 6, 14, 15)


@pytest.mark.parametrize(
    ("now", "start", "end"),
    [
        # Spring forward 2024-03-10 (02:00 PST -> 03:00 PDT): a 23-hour day.
        (utc(2024, 3, 10, 12), utc(2024, 3, 10, 8), utc(2024, 3, 11, 7)),
        # Fall back 2024-11-03 (02:00 PDT -> 01:00 PST): a 25-hour day.
        (utc(2024, 11, 3, 12), utc(2024, 11, 3, 7), utc(2024, 11, 4, 8)),
        # Inside the repeated hour (first 01:30 PDT = 08:30 UTC, second 01:30 PST = 09:30 UTC).
        (utc(2024, 11, 3, 8, 30), utc(2024, 11, 3, 7), utc(2024, 11, 4, 8)),
        (utc(2024, 11, 3, 9, 30), utc(2024, 11, 3, 7), utc(2024, 11, 4, 8)),
    ],
)
def test_los_angeles_dst_days(now: datetime, start: datetime, end: datetime) -> None:
    p = day_period(now, LA)
    assert (p.start, p.end) == (start, end)
    assert now in p


def test_dst_change_at_midnight_santiago() -> None:
    # America/Santiago sprang forward at local midnight on 2022-09-11 (00:00 -04 -> 01:00 -03):
    # 00:00 does not exist, the day starts at the transition (04:00 UTC) and lasts 23 hours.
    scl = get_zone("America/Santiago")
    p = day_period(utc(2022, 9, 11, 12), scl)
    assert p.start == utc(2022, 9, 11, 4) and p.end == utc(2022, 9, 12, 3)
    assert day_period(utc(2022, 9, 11, 3, 59), scl).end == utc(2022, 9, 11, 4)


def test_month_end_in_los_angeles_and_dst_month() -> None:
    # 2024-03-31 23:30 PDT = 2024-04-01 06:30 UTC: still March in LA.
    p = month_period(utc(2024, 4, 1, 6, 30), LA)
    assert p.start == utc(2024, 3, 1, 8)  # PST at March 1st
    assert p.end == utc(2024, 4, 1, 7)  # PDT at April 1st
    assert month_period(utc(2024, 4, 1, 7), LA).start == utc(2024, 4, 1, 7)


def test_december_to_january() -> None:
    # Tokyo: 2024-12-31 14:59:59 UTC is 23:59:59 on Dec 31st, 15:00 UTC is Jan 1st 2025.
    dec = month_period(utc(2024, 12, 31, 14, 59, 59), TOKYO)
    assert dec.start == utc(2024, 11, 30, 15) and dec.end == utc(2024, 12, 31, 15)
    jan = month_period(utc(2024, 12, 31, 15), TOKYO)
    assert jan.start == utc(2024, 12, 31, 15) and jan.end == utc(2025, 1, 31, 15)
    # Los Angeles: Jan 1st 2025 07:59 UTC is still Dec 31st 23:59 PST.
    la = month_period(utc(2025, 1, 1, 7, 59), LA)
    assert la.start == utc(2024, 12, 1, 8) and la.end == utc(2025, 1, 1, 8)
    assert day_period(utc(2025, 1, 1, 7, 59), LA).end == utc(2025, 1, 1, 8)


def test_periods_accept_any_aware_or_naive_utc_input() -> None:
    local = datetime(2024, 6, 15, 0, 30, tzinfo=TOKYO)
    assert day_period(local, TOKYO).start == utc(2024, 6, 14, 15)
    assert day_period(datetime(2024, 6, 14, 15, 30), TOKYO).start == utc(2024, 6, 14, 15)  # naive = UTC


def test_every_hour_of_a_year_lies_in_its_periods() -> None:
    now = utc(2024, 1, 1)
    for _ in range(24 * 366):
        for tz in (LA, TOKYO):
            d, m = day_period(now, tz), month_period(now, tz)
            assert now in d and now in m
            assert timedelta(hours=23) <= d.end - d.start <= timedelta(hours=25)
            assert d.start.astimezone(tz).hour == 0 and m.start.astimezone(tz).day == 1
        now += timedelta(hours=1)


def test_validate_timezone() -> None:
    assert validate_timezone("Europe/Berlin") == "Europe/Berlin"
    assert validate_timezone(" UTC ") == "UTC"
    for bad in ("Mars/Olympus", "", "../../etc/passwd", "/etc/localtime"):
        with pytest.raises(ValueError):
            validate_timezone(bad)
