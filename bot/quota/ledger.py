"""The job ledger: reserve, run, settle or refund a job, and read a user's usage.

Usage in a period counts the images of the user's jobs created in that period: reserved and
running jobs count ``images_reserved``, settled ones ``images_done``, refunded ones nothing, and
only jobs after the user's latest reset. Budget spend counts ``cost_estimate`` of jobs in flight
and ``cost_actual`` of finished ones (a refunded job may still have cost money).

Each of reserve, mark_running, settle and refund is one transaction (``bot/storage/sqlite.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from bot.quota.base import StoreBase, runs_to_completion
from bot.quota.periods import Period, day_period, get_zone, month_period
from bot.quota.policy import Limits, check_budget, check_images, resolve_limits, validate_money
from bot.quota.records import (
    ACTIVE_STATUSES,
    COST_SPENT,
    IMAGES_OF_JOB,
    IMAGES_USED,
    JOB_COLUMNS,
    JOB_KINDS,
    REFUND_STATUSES,
    SETTLED_STATUSES,
    GuildSettings,
    JobNotFound,
    JobRecord,
    JobStateError,
    QuotaExceeded,
    Reservation,
    UsageSummary,
    row_to_job,
    to_json,
    ts,
)
from bot.storage.sqlite import Tx

log = logging.getLogger(__name__)

UTC_ZONE = get_zone("UTC")  # the bot-wide caps' days and months


class Ledger(StoreBase):
    """The jobs table and the reads every quota decision needs."""

    # ------------------------------------------------------------------ internal reads

    async def _settings(self, tx: Tx, guild_id: int | None) -> GuildSettings:
        if guild_id is None:
            return GuildSettings(guild_id=0)
        row = await tx.fetchone(
            "SELECT timezone, budget_usd, manager_role_id FROM guild_settings WHERE guild_id = ?",
            (guild_id,),
        )
        if row is None:
            return GuildSettings(guild_id=guild_id)
        return GuildSettings(guild_id, row["timezone"], row["budget_usd"], row["manager_role_id"])

    async def _limits(self, tx: Tx, guild_id: int | None, user_id: int, role_ids: Sequence[int]) -> Limits:
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
        return resolve_limits(
            user=user,
            roles=roles,
            server=server,
            bot_daily=self.default_daily,
            bot_monthly=self.default_monthly,
        )

    async def _images_used(
        self, tx: Tx, guild_id: int | None, user_id: int, day_start: datetime, month_start: datetime
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

    async def _budget_spent(self, tx: Tx, guild_id: int, month: Period) -> float:
        row = await tx.fetchone(
            f"SELECT {COST_SPENT} FROM jobs WHERE guild_id = ? AND created_at >= ? AND created_at < ?",
            (guild_id, ts(month.start), ts(month.end)),
        )
        return float(row[0])

    async def _images_everywhere(self, tx: Tx, user_id: int, since: datetime) -> int:
        """Images of one person since ``since`` in every server and DM (moderators' resets do not apply:
        the bot-wide cap is the operator's, so images paid by a server's own key do not count)."""
        row = await tx.fetchone(
            f"SELECT {IMAGES_USED} FROM jobs WHERE user_id = ? AND created_at >= ? AND payer = 'operator'",
            (user_id, ts(since)),
        )
        return int(row[0])

    async def _spent_everywhere(self, tx: Tx, month: Period) -> float:
        row = await tx.fetchone(
            f"SELECT {COST_SPENT} FROM jobs WHERE created_at >= ? AND created_at < ? AND payer = 'operator'",
            (ts(month.start), ts(month.end)),
        )
        return float(row[0])

    async def _bot_wide_denial(
        self, tx: Tx, user_id: int, now: datetime, images: int, estimate: float
    ) -> QuotaExceeded | None:
        """The bot-wide caps (``BOT_USER_DAILY_LIMIT``, ``BOT_MONTHLY_BUDGET_USD``), checked after the
        server's own limits, under their locks (see ``Tx.lock_user_everywhere``)."""
        if self.bot_user_daily is not None:
            await tx.lock_user_everywhere(user_id)
            day = day_period(now, UTC_ZONE)
            used = await self._images_everywhere(tx, user_id, day.start)
            if self.bot_user_daily == 0 or used + images > self.bot_user_daily:
                return QuotaExceeded("bot_daily", self.bot_user_daily, used, day.end, images)
        if self.bot_budget_usd is not None:
            await tx.lock_bot_budget()
            month = month_period(now, UTC_ZONE)
            spent = await self._spent_everywhere(tx, month)
            if check_budget(self.bot_budget_usd, spent=spent, estimate=estimate) is not None:
                return QuotaExceeded("bot_budget", self.bot_budget_usd, spent, month.end, estimate)
        return None

    async def _usage(
        self,
        tx: Tx,
        guild_id: int | None,
        user_id: int,
        role_ids: Sequence[int],
        now: datetime,
        settings: GuildSettings | None = None,
        *,
        everywhere: bool = True,
    ) -> UsageSummary:
        """A user's usage; ``everywhere=False`` leaves out the bot-wide count (``reserve`` reads it itself,
        under its lock)."""
        if settings is None:
            settings = await self._settings(tx, guild_id)
        tz = get_zone(settings.timezone)
        day, month = day_period(now, tz), month_period(now, tz)
        limits = await self._limits(tx, guild_id, user_id, role_ids)
        # Jobs are created at "now" or earlier, so ">= start" is the whole period so far.
        daily_used, monthly_used = await self._images_used(tx, guild_id, user_id, day.start, month.start)
        spent = 0.0
        if guild_id is not None and settings.budget_usd is not None:
            spent = await self._budget_spent(tx, guild_id, month)
        everywhere_used, everywhere_resets = 0, None
        if everywhere and self.bot_user_daily is not None:
            utc_day = day_period(now, UTC_ZONE)
            everywhere_used = await self._images_everywhere(tx, user_id, utc_day.start)
            everywhere_resets = utc_day.end
        return UsageSummary(
            limits=limits,
            daily_used=daily_used,
            monthly_used=monthly_used,
            daily_resets_at=day.end,
            monthly_resets_at=month.end,
            budget_usd=settings.budget_usd,
            budget_spent=spent,
            timezone=settings.timezone,
            everywhere_daily=self.bot_user_daily,
            everywhere_used=everywhere_used,
            everywhere_resets_at=everywhere_resets,
        )

    async def _job_status(self, tx: Tx, job_id: int) -> tuple[str, int]:
        row = await tx.fetchone("SELECT status, images_reserved FROM jobs WHERE id = ?" + tx.for_update, (job_id,))
        if row is None:
            raise JobNotFound(job_id)
        return str(row["status"]), int(row["images_reserved"])

    # ------------------------------------------------------------------ job lifecycle

    @runs_to_completion
    async def reserve(
        self,
        *,
        guild_id: int | None,
        channel_id: int | None,
        user_id: int,
        role_ids: Sequence[int],
        kind: str,
        prompt: str,
        settings: dict[str, Any],
        model: str,
        images: int,
        cost_estimate: float,
        parent_job_id: int | None = None,
        source_image_url: str | None = None,
        payer: str = "operator",
    ) -> Reservation:
        """Check the user's day and month limits, the server's budget and the bot-wide caps, and write
        the job as 'reserved' holding ``images`` and ``cost_estimate``, all in one transaction.

        ``payer`` "server": the server's own API key pays, so the bot-wide caps (the operator's) do not apply
        and the job does not count towards them.

        Raises QuotaExceeded (nothing written) if it does not fit. ``guild_id`` None (DMs) uses
        the bot defaults and has no budget.
        """
        if kind not in JOB_KINDS:
            raise ValueError(f"kind must be one of {sorted(JOB_KINDS)}, not {kind!r}")
        if payer not in ("operator", "server"):
            raise ValueError(f"payer must be 'operator' or 'server', not {payer!r}")
        if isinstance(images, bool) or not isinstance(images, int) or images < 1:
            raise ValueError("images must be an int >= 1")
        estimate = validate_money(cost_estimate, what="cost_estimate")
        settings_json = to_json(dict(settings))
        async with self._write() as tx:
            await tx.lock_quota(guild_id, user_id)
            now = self.now()
            server = await self._settings(tx, guild_id)
            if guild_id is not None and server.budget_usd is not None:
                await tx.lock_budget(guild_id)  # the budget is shared by the whole server
            usage = await self._usage(tx, guild_id, user_id, role_ids, now, server, everywhere=False)
            denial = check_images(
                usage.limits, daily_used=usage.daily_used, monthly_used=usage.monthly_used, images=images
            )
            if denial is None and guild_id is not None:
                denial = check_budget(usage.budget_usd, spent=usage.budget_spent, estimate=estimate)
            if denial is not None:
                resets_at = usage.daily_resets_at if denial.period == "daily" else usage.monthly_resets_at
                requested: float | int = estimate if denial.scope == "budget" else images
                raise QuotaExceeded(denial.scope, denial.limit, denial.used, resets_at, requested)
            refused = await self._bot_wide_denial(tx, user_id, now, images, estimate) if payer == "operator" else None
            if refused is not None:
                raise refused
            job_id = await tx.insert(
                "INSERT INTO jobs (guild_id, channel_id, user_id, kind, prompt, settings, model, status, "
                "images_reserved, cost_estimate, parent_job_id, source_image_url, created_at, owner, payer) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, 'reserved', ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (
                    guild_id,
                    channel_id,
                    user_id,
                    kind,
                    prompt,
                    settings_json,
                    model,
                    images,
                    estimate,
                    parent_job_id,
                    source_image_url,
                    ts(now),
                    self.instance_id,
                    payer,
                ),
            )
        return Reservation(job_id=job_id, images=images, cost_estimate=estimate)

    @runs_to_completion
    async def mark_running(self, job_id: int) -> None:
        """reserved -> running. Raises JobStateError if the job was already refunded or settled
        (e.g. cancelled while queued): the caller must not call the API then."""
        async with self._write() as tx:
            status, _ = await self._job_status(tx, job_id)
            if status == "running":
                return
            if status != "reserved":
                raise JobStateError(job_id, status, "start")
            await tx.execute(
                "UPDATE jobs SET status = 'running', started_at = ? WHERE id = ?", (ts(self.now()), job_id)
            )

    @runs_to_completion
    async def settle(
        self,
        job_id: int,
        *,
        images: int,
        cost: float,
        input_tokens: int = 0,
        output_tokens: int = 0,
    ) -> None:
        """Record the outcome: status 'done', or 'partial' if fewer images than reserved.

        ``images == 0`` refunds (status 'failed') but still records the cost and tokens, which
        count against the budget. Raises JobStateError unless the job is reserved or running.
        """
        if isinstance(images, bool) or not isinstance(images, int) or images < 0:
            raise ValueError("images must be an int >= 0")
        actual = validate_money(cost, what="cost")
        for name, value in (("input_tokens", input_tokens), ("output_tokens", output_tokens)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be an int >= 0")
        async with self._write() as tx:
            status, reserved = await self._job_status(tx, job_id)
            if status not in ACTIVE_STATUSES:
                raise JobStateError(job_id, status, "settle")
            if images == 0:
                new_status, error = "failed", "no images produced"
            else:
                new_status, error = ("partial" if images < reserved else "done"), None
            if images > reserved:
                log.warning("job %s produced %s images but reserved %s", job_id, images, reserved)
            await tx.execute(
                "UPDATE jobs SET status = ?, images_done = ?, cost_actual = ?, input_tokens = ?, "
                "output_tokens = ?, error = COALESCE(error, ?), finished_at = ? WHERE id = ?",
                (new_status, images, actual, input_tokens, output_tokens, error, ts(self.now()), job_id),
            )

    @runs_to_completion
    async def refund(self, job_id: int, *, status: str, error: str | None = None) -> bool:
        """Release a reservation: status failed|blocked|cancelled|crashed.

        Idempotent: refunding a refunded job does nothing. Never refunds a settled job (logs and
        does nothing). Returns True if this call refunded the job.
        """
        if status not in REFUND_STATUSES:
            raise ValueError(f"status must be one of {sorted(REFUND_STATUSES)}, not {status!r}")
        async with self._write() as tx:
            current, _ = await self._job_status(tx, job_id)
            if current not in ACTIVE_STATUSES:
                if current in SETTLED_STATUSES:
                    log.warning("not refunding job %s: already settled (%s)", job_id, current)
                return False
            await tx.execute(
                "UPDATE jobs SET status = ?, error = ?, finished_at = ? WHERE id = ?",
                (status, error, ts(self.now()), job_id),
            )
            return True

    @runs_to_completion
    async def set_message(self, job_id: int, message_id: int) -> None:
        """Remember the Discord message that shows the job's result."""
        async with self._write() as tx:
            changed = await tx.execute("UPDATE jobs SET message_id = ? WHERE id = ?", (message_id, job_id))
            if changed == 0:
                raise JobNotFound(job_id)

    async def get_job(self, job_id: int) -> JobRecord | None:
        async with self._plain() as tx:
            row = await tx.fetchone(f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?", (job_id,))
        return None if row is None else row_to_job(row)

    async def job_by_message(self, message_id: int) -> JobRecord | None:
        """The job whose result is ``message_id`` (for buttons after a restart)."""
        async with self._plain() as tx:
            row = await tx.fetchone(
                f"SELECT {JOB_COLUMNS} FROM jobs WHERE message_id = ? ORDER BY id DESC LIMIT 1", (message_id,)
            )
        return None if row is None else row_to_job(row)

    # ------------------------------------------------------------------ reads for users

    @runs_to_completion
    async def usage(self, guild_id: int | None, user_id: int, role_ids: Sequence[int]) -> UsageSummary:
        async with self._read() as tx:
            return await self._usage(tx, guild_id, user_id, role_ids, self.now())

    async def recent_jobs(self, guild_id: int | None, user_id: int, limit: int = 10) -> list[JobRecord]:
        limit = max(1, min(int(limit), 100))
        if guild_id is None:
            sql = f"SELECT {JOB_COLUMNS} FROM jobs WHERE guild_id IS NULL AND user_id = ? ORDER BY id DESC LIMIT ?"
            params: tuple[Any, ...] = (user_id, limit)
        else:
            sql = f"SELECT {JOB_COLUMNS} FROM jobs WHERE guild_id = ? AND user_id = ? ORDER BY id DESC LIMIT ?"
            params = (guild_id, user_id, limit)
        async with self._plain() as tx:
            return [row_to_job(r) for r in await tx.fetchall(sql, params)]
