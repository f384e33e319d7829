"""The reads every quota decision and display shares: a server's settings, the limits that apply to a
person, and usage summed from the ledger. Functions of a transaction (``Tx``), used by the ledger, moderation
and reports alike."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from bot.quota.periods import Period, day_period, get_zone, month_period
from bot.quota.policy import Limits, resolve_limits, validate_limit, validate_money
from bot.quota.records import COST_SPENT, IMAGES_OF_JOB, IMAGES_USED, GuildSettings, UsageSummary, ts
from bot.storage.sqlite import Tx

UTC_ZONE = get_zone("UTC")  # the bot-wide caps' days and months


@dataclass(frozen=True, slots=True)
class QuotaDefaults:
    """The operator's limits from the settings: per person per server (below every moderator's override),
    and the bot-wide caps across servers (None: no cap)."""

    daily: int | None
    monthly: int | None
    bot_user_daily: int | None = None
    bot_budget_usd: float | None = None

    def __post_init__(self) -> None:
        validate_limit(self.daily, what="default_daily")
        validate_limit(self.monthly, what="default_monthly")
        validate_limit(self.bot_user_daily, what="bot_user_daily")
        if self.bot_budget_usd is not None:
            validate_money(self.bot_budget_usd, what="bot_budget_usd")


async def settings(tx: Tx, guild_id: int | None) -> GuildSettings:
    if guild_id is None:
        return GuildSettings(guild_id=0)
    row = await tx.fetchone(
        "SELECT timezone, budget_usd, manager_role_id FROM guild_settings WHERE guild_id = ?", (guild_id,)
    )
    if row is None:
        return GuildSettings(guild_id=guild_id)
    return GuildSettings(guild_id, row["timezone"], row["budget_usd"], row["manager_role_id"])


async def limits(
    tx: Tx, guild_id: int | None, user_id: int, role_ids: Sequence[int], defaults: QuotaDefaults
) -> Limits:
    user: dict[str, int | None] = {}
    server: dict[str, int | None] = {}
    roles: dict[int, dict[str, int | None]] = {}
    if guild_id is not None:
        wanted_roles = {int(r) for r in role_ids}
        rows = await tx.fetchall(
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
    return resolve_limits(user=user, roles=roles, server=server, bot_daily=defaults.daily, bot_monthly=defaults.monthly)


async def images_used(
    tx: Tx, guild_id: int | None, user_id: int, day_start: datetime, month_start: datetime
) -> tuple[int, int]:
    """Images used since ``day_start`` and since ``month_start`` (the day lies in the month)."""
    used = f"COALESCE(SUM(CASE WHEN created_at >= ? THEN {IMAGES_OF_JOB} ELSE 0 END), 0), {IMAGES_USED}"
    if guild_id is None:
        row = await tx.fetchone(
            f"SELECT {used} FROM jobs WHERE guild_id IS NULL AND user_id = ? AND created_at >= ?",
            (ts(day_start), user_id, ts(month_start)),
        )
    else:
        row = await tx.fetchone(
            f"SELECT {used} FROM jobs WHERE guild_id = ? AND user_id = ? AND created_at >= ? "
            "AND id > COALESCE((SELECT last_job_id FROM quota_resets WHERE guild_id = ? AND user_id = ? "
            "ORDER BY id DESC LIMIT 1), 0)",
            (ts(day_start), guild_id, user_id, ts(month_start), guild_id, user_id),
        )
    return int(row[0]), int(row[1])


async def budget_spent(tx: Tx, guild_id: int, month: Period) -> float:
    row = await tx.fetchone(
        f"SELECT {COST_SPENT} FROM jobs WHERE guild_id = ? AND created_at >= ? AND created_at < ?",
        (guild_id, ts(month.start), ts(month.end)),
    )
    return float(row[0])


async def images_everywhere(tx: Tx, user_id: int, since: datetime) -> int:
    """Images of one person since ``since`` in every server and DM (moderators' resets do not apply:
    the bot-wide cap is the operator's, so images paid by a server's own key do not count)."""
    row = await tx.fetchone(
        f"SELECT {IMAGES_USED} FROM jobs WHERE user_id = ? AND created_at >= ? AND payer = 'operator'",
        (user_id, ts(since)),
    )
    return int(row[0])


async def usage(
    tx: Tx,
    guild_id: int | None,
    user_id: int,
    role_ids: Sequence[int],
    now: datetime,
    defaults: QuotaDefaults,
) -> UsageSummary:
    """A person's usage as the ledger has it (what ``/quota me`` shows)."""
    server = await settings(tx, guild_id)
    tz = get_zone(server.timezone)
    day, month = day_period(now, tz), month_period(now, tz)
    applied = await limits(tx, guild_id, user_id, role_ids, defaults)
    # Jobs are created at "now" or earlier, so ">= start" is the whole period so far.
    daily_used, monthly_used = await images_used(tx, guild_id, user_id, day.start, month.start)
    spent = 0.0
    if guild_id is not None and server.budget_usd is not None:
        spent = await budget_spent(tx, guild_id, month)
    everywhere_used, everywhere_resets = 0, None
    if defaults.bot_user_daily is not None:
        utc_day = day_period(now, UTC_ZONE)
        everywhere_used = await images_everywhere(tx, user_id, utc_day.start)
        everywhere_resets = utc_day.end
    return UsageSummary(
        limits=applied,
        daily_used=daily_used,
        monthly_used=monthly_used,
        daily_resets_at=day.end,
        monthly_resets_at=month.end,
        budget_usd=server.budget_usd,
        budget_spent=spent,
        timezone=server.timezone,
        everywhere_daily=defaults.bot_user_daily,
        everywhere_used=everywhere_used,
        everywhere_resets_at=everywhere_resets,
    )
