"""Reports for moderators: this month's usage per member, and the ledger as CSV."""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import date, datetime, timedelta
from typing import Any, Final

from bot.quota import reads
from bot.quota.periods import get_zone, month_period
from bot.quota.records import COST_SPENT, IMAGES_USED, JOB_COLUMNS, DayReport, Report, UserReport, ts
from bot.storage.completion import runs_to_completion
from bot.storage.database import Database

_CSV_FORMULA_PREFIXES: Final = ("=", "+", "-", "@", "\t", "\r")


def _csv_safe(value: Any) -> Any:
    """Defuse spreadsheet formulas in user-controlled text (prompts come from anyone)."""
    if isinstance(value, str) and value.startswith(_CSV_FORMULA_PREFIXES):
        return "'" + value
    return value


_CSV_HEADER: Final = (
    "id", "created_at", "started_at", "finished_at", "guild_id", "channel_id", "user_id", "kind",
    "status", "model", "images_reserved", "images_done", "input_tokens", "output_tokens",
    "cost_estimate", "cost_actual", "message_id", "parent_job_id", "source_image_url", "error",
    "settings", "prompt",
)  # fmt: skip


def build_csv(rows: list[Any]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(_CSV_HEADER)
    for row in rows:
        writer.writerow([_csv_safe(row[name]) for name in _CSV_HEADER])
    return out.getvalue()


class Reports:
    """Read-only summaries of the ledger."""

    def __init__(self, db: Database) -> None:
        self.db = db

    @runs_to_completion
    async def report(self, guild_id: int) -> Report:
        """This month's (server time zone) jobs, images and spend per user and in total."""
        async with self.db.read() as tx:
            settings = await reads.settings(tx, guild_id)
            month = month_period(self.db.now(), get_zone(settings.timezone))
            rows = await tx.fetchall(
                f"SELECT user_id, COUNT(*) AS jobs, {IMAGES_USED} AS images, {COST_SPENT} AS spent "
                "FROM jobs WHERE guild_id = ? AND created_at >= ? AND created_at < ? "
                "GROUP BY user_id ORDER BY images DESC, spent DESC, user_id",
                (guild_id, ts(month.start), ts(month.end)),
            )
            # Per minute (UTC) in SQL, to local days here: a zone's day may start at any quarter hour.
            minutes = await tx.fetchall(
                f"SELECT SUBSTR(created_at, 1, 16) AS minute, {IMAGES_USED} AS images, {COST_SPENT} AS spent "
                "FROM jobs WHERE guild_id = ? AND created_at >= ? AND created_at < ? "
                "GROUP BY SUBSTR(created_at, 1, 16)",
                (guild_id, ts(month.start), ts(month.end)),
            )
        zone = get_zone(settings.timezone)
        days: dict[date, list[float]] = {}
        for r in minutes:
            local = datetime.fromisoformat(str(r["minute"]) + ":00+00:00").astimezone(zone).date()
            bucket = days.setdefault(local, [0, 0.0])
            bucket[0] += int(r["images"])
            bucket[1] += float(r["spent"])
        today = min(self.db.now(), month.end).astimezone(zone).date()
        first = month.start.astimezone(zone).date()
        daily = [
            DayReport(first + timedelta(days=i), int(days.get(first + timedelta(days=i), [0, 0.0])[0]),
                      float(days.get(first + timedelta(days=i), [0, 0.0])[1]))
            for i in range((today - first).days + 1)
        ]  # fmt: skip
        users = [UserReport(int(r["user_id"]), int(r["jobs"]), int(r["images"]), float(r["spent"])) for r in rows]
        return Report(
            guild_id=guild_id,
            timezone=settings.timezone,
            period_start=month.start,
            period_end=month.end,
            budget_usd=settings.budget_usd,
            total_jobs=sum(u.jobs for u in users),
            total_images=sum(u.images for u in users),
            total_spent=sum(u.spent_usd for u in users),
            users=users,
            daily=daily,
        )

    @runs_to_completion
    async def ledger_csv(self, guild_id: int, *, since: datetime | None = None) -> str:
        """The server's ledger rows as CSV, from ``since`` (default: start of this month in the
        server's time zone). Cells that would start a spreadsheet formula are prefixed with '."""
        async with self.db.read() as tx:
            if since is None:
                settings = await reads.settings(tx, guild_id)
                since = month_period(self.db.now(), get_zone(settings.timezone)).start
            rows = await tx.fetchall(
                f"SELECT {JOB_COLUMNS} FROM jobs WHERE guild_id = ? AND created_at >= ? ORDER BY id",
                (guild_id, ts(since)),
            )
        if len(rows) > 500:
            return await asyncio.to_thread(build_csv, rows)
        return build_csv(rows)
