"""The job ledger: reserve, run, settle or refund a job, read a person's usage, recover after a crash.

Usage in a period counts the images of the person's jobs created in that period: reserved and running jobs
count ``images_reserved``, settled ones ``images_done``, refunded ones nothing, and only jobs after the
person's latest reset. Budget spend counts ``cost_estimate`` of jobs in flight and ``cost_actual`` of finished
ones (a refunded job may still have cost money). A reservation checks and consumes each limit with one
conditional write on that limit's counter (``bot/quota/counters.py``); every change of a job's status gives
its counters what changed, in the same transaction.

Each of reserve, mark_running, settle and refund is one transaction that finishes even when its caller is
cancelled (``bot/storage/completion.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from bot.quota import counters, reads
from bot.quota.counters import Counter
from bot.quota.periods import day_period, get_zone, month_period
from bot.quota.policy import validate_money
from bot.quota.reads import UTC_ZONE, QuotaDefaults
from bot.quota.records import (
    ACTIVE_STATUSES,
    JOB_COLUMNS,
    JOB_KINDS,
    REFUND_STATUSES,
    SETTLED_STATUSES,
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
from bot.storage.completion import finishing, runs_to_completion
from bot.storage.database import Database
from bot.storage.leases import ORPHANED
from bot.storage.sqlite import Tx

log = logging.getLogger(__name__)

_INSERT_JOB = (
    "INSERT INTO jobs (guild_id, channel_id, user_id, kind, prompt, settings, model, status, images_reserved, "
    "cost_estimate, parent_job_id, source_image_url, created_at, owner, counters, payer) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, 'reserved', ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id"
)
_RECOVER = (
    "UPDATE jobs SET status = 'crashed', finished_at = ?, error = COALESCE(error, ?) "
    "WHERE status IN ('reserved', 'running') AND "
)
_RETURNING = " RETURNING id, images_reserved, cost_estimate, cost_actual, counters"
_RECOVER_AT_START = _RECOVER + f"(owner IS NULL OR owner = ? OR {ORPHANED})" + _RETURNING
_RECOVER_SIBLINGS = _RECOVER + f"owner IS NOT NULL AND owner <> ? AND {ORPHANED}" + _RETURNING


async def _refund_unused(ledger: Ledger, reservation: Reservation) -> None:
    """A reservation whose caller was cancelled cannot be used by anyone: refunded straight away."""
    await ledger.refund(reservation.job_id, status="cancelled", error="cancelled while reserving")


class Ledger:
    """The jobs table and the quota counters it charges."""

    def __init__(self, db: Database, defaults: QuotaDefaults) -> None:
        self.db = db
        self.defaults = defaults

    @property
    def default_daily(self) -> int | None:
        return self.defaults.daily

    @property
    def default_monthly(self) -> int | None:
        return self.defaults.monthly

    # ------------------------------------------------------------------ job lifecycle

    @finishing(undo=_refund_unused)
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
        """Check the person's day and month limits, the server's budget and the bot-wide caps, and write
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
        async with self.db.write() as tx:
            now = self.db.now()
            server = await reads.settings(tx, guild_id)
            applied = await reads.limits(tx, guild_id, user_id, role_ids, self.defaults)
            tz = get_zone(server.timezone)
            day, month = day_period(now, tz), month_period(now, tz)
            person = (counters.person_day(guild_id, user_id, day), counters.person_month(guild_id, user_id, month))
            budget = None
            if guild_id is not None and server.budget_usd is not None:
                budget = counters.server_budget(guild_id, month)
            everywhere, bot = None, None
            if payer == "operator":  # the bot-wide caps count what the operator's key pays for
                if self.defaults.bot_user_daily is not None:
                    everywhere = counters.everywhere_day(user_id, day_period(now, UTC_ZONE))
                if self.defaults.bot_budget_usd is not None:
                    bot = counters.bot_budget(month_period(now, UTC_ZONE))
            await self._charge_person(tx, person, (applied.daily, applied.monthly), images)
            # The job is written after the person's counters (a reset that waited for them sees its id) and
            # before the counters every member shares, whose row locks are then held only until the commit.
            charged = [c.key for c in (*person, budget, everywhere, bot) if c is not None]
            job_id = await tx.insert(
                _INSERT_JOB,
                (
                    guild_id, channel_id, user_id, kind, prompt, settings_json, model, images, estimate,
                    parent_job_id, source_image_url, ts(now), self.db.instance_id, " ".join(charged), payer,
                ),
            )  # fmt: skip
            if budget is not None:
                await self._charge(tx, budget, estimate, server.budget_usd, "budget", job_id)
            if everywhere is not None:
                await self._charge(tx, everywhere, images, self.defaults.bot_user_daily, "bot_daily", job_id)
            if bot is not None:
                await self._charge(tx, bot, estimate, self.defaults.bot_budget_usd, "bot_budget", job_id)
        return Reservation(job_id=job_id, images=images, cost_estimate=estimate)

    async def _charge_person(
        self, tx: Tx, person: tuple[Counter, Counter], caps: tuple[int | None, int | None], images: int
    ) -> None:
        """The person's day and month in the server: a limit of 0 is 'blocked', reported before the others."""
        for counter, cap in zip(person, caps, strict=True):
            if cap == 0:
                used = await counters.value(tx, counter)
                if used is None:
                    used = await counters.from_ledger(tx, counter)
                raise QuotaExceeded("blocked", 0, int(used), counter.period.end, images)
        for counter, cap, scope in ((person[0], caps[0], "daily"), (person[1], caps[1], "monthly")):
            await self._charge(tx, counter, images, cap, scope, 0)

    @staticmethod
    async def _charge(tx: Tx, counter: Counter, amount: float, cap: float | None, scope: str, job_id: int) -> None:
        if await counters.charge(tx, counter, amount, cap, exclude_job=job_id) is not None:
            return
        assert cap is not None  # an uncapped charge always succeeds
        used = await counters.value(tx, counter) or 0.0
        money = counter.kind in counters.MONEY_KINDS
        raise QuotaExceeded(
            scope, cap, used if money else int(used), counter.period.end, amount if money else int(amount)
        )

    async def _job_for_change(self, tx: Tx, job_id: int) -> Any:
        row = await tx.fetchone(
            "SELECT status, images_reserved, cost_estimate, cost_actual, counters FROM jobs WHERE id = ?"
            + tx.for_update,
            (job_id,),
        )
        if row is None:
            raise JobNotFound(job_id)
        return row

    @runs_to_completion
    async def mark_running(self, job_id: int) -> None:
        """reserved -> running. Raises JobStateError if the job was already refunded or settled
        (e.g. cancelled while queued): the caller must not call the API then."""
        async with self.db.write() as tx:
            status = str((await self._job_for_change(tx, job_id))["status"])
            if status == "running":
                return
            if status != "reserved":
                raise JobStateError(job_id, status, "start")
            await tx.execute(
                "UPDATE jobs SET status = 'running', started_at = ? WHERE id = ?", (ts(self.db.now()), job_id)
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
        async with self.db.write() as tx:
            job = await self._job_for_change(tx, job_id)
            status, reserved = str(job["status"]), int(job["images_reserved"])
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
                (new_status, images, actual, input_tokens, output_tokens, error, ts(self.db.now()), job_id),
            )
            keys = counters.parse_keys(job["counters"])
            usd = actual - float(job["cost_estimate"])
            await counters.give_back(tx, counters.changes(keys, job_id, images=images - reserved, usd=usd))

    @runs_to_completion
    async def refund(self, job_id: int, *, status: str, error: str | None = None) -> bool:
        """Release a reservation: status failed|blocked|cancelled|crashed.

        Idempotent: refunding a refunded job does nothing. Never refunds a settled job (logs and
        does nothing). Returns True if this call refunded the job.
        """
        if status not in REFUND_STATUSES:
            raise ValueError(f"status must be one of {sorted(REFUND_STATUSES)}, not {status!r}")
        async with self.db.write() as tx:
            job = await self._job_for_change(tx, job_id)
            current = str(job["status"])
            if current not in ACTIVE_STATUSES:
                if current in SETTLED_STATUSES:
                    log.warning("not refunding job %s: already settled (%s)", job_id, current)
                return False
            await tx.execute(
                "UPDATE jobs SET status = ?, error = ?, finished_at = ? WHERE id = ?",
                (status, error, ts(self.db.now()), job_id),
            )
            await counters.give_back(tx, self._refunded(job_id, job))
            return True

    @staticmethod
    def _refunded(job_id: int, job: Any) -> list[counters.Change]:
        """A refunded job: its images back, and its spend down from the estimate to what it cost."""
        return counters.changes(
            counters.parse_keys(job["counters"]),
            job_id,
            images=-int(job["images_reserved"]),
            usd=float(job["cost_actual"]) - float(job["cost_estimate"]),
        )

    @runs_to_completion
    async def set_message(self, job_id: int, message_id: int) -> None:
        """Remember the Discord message that shows the job's result."""
        async with self.db.write() as tx:
            changed = await tx.execute("UPDATE jobs SET message_id = ? WHERE id = ?", (message_id, job_id))
            if changed == 0:
                raise JobNotFound(job_id)

    async def get_job(self, job_id: int) -> JobRecord | None:
        async with self.db.plain() as tx:
            row = await tx.fetchone(f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?", (job_id,))
        return None if row is None else row_to_job(row)

    async def job_by_message(self, message_id: int) -> JobRecord | None:
        """The job whose result is ``message_id`` (for buttons after a restart)."""
        async with self.db.plain() as tx:
            row = await tx.fetchone(
                f"SELECT {JOB_COLUMNS} FROM jobs WHERE message_id = ? ORDER BY id DESC LIMIT 1", (message_id,)
            )
        return None if row is None else row_to_job(row)

    # ------------------------------------------------------------------ reads for users

    @runs_to_completion
    async def usage(self, guild_id: int | None, user_id: int, role_ids: Sequence[int]) -> UsageSummary:
        async with self.db.read() as tx:
            return await reads.usage(tx, guild_id, user_id, role_ids, self.db.now(), self.defaults)

    async def recent_jobs(self, guild_id: int | None, user_id: int, limit: int = 10) -> list[JobRecord]:
        limit = max(1, min(int(limit), 100))
        if guild_id is None:
            sql = f"SELECT {JOB_COLUMNS} FROM jobs WHERE guild_id IS NULL AND user_id = ? ORDER BY id DESC LIMIT ?"
            params: tuple[Any, ...] = (user_id, limit)
        else:
            sql = f"SELECT {JOB_COLUMNS} FROM jobs WHERE guild_id = ? AND user_id = ? ORDER BY id DESC LIMIT ?"
            params = (guild_id, user_id, limit)
        async with self.db.plain() as tx:
            return [row_to_job(r) for r in await tx.fetchall(sql, params)]

    # ------------------------------------------------------------------ crash recovery

    @runs_to_completion
    async def recover_reservations(self, *, at_start: bool = True) -> list[int]:
        """Refund (status 'crashed') every job left reserved/running by an instance that is gone
        (``bot/storage/leases.py``), giving its counters back.

        ``at_start`` also refunds this instance's own earlier jobs and jobs without owner, and drops the
        counters of bot-wide caps that are not set (started again from the ledger if they are set later);
        call it so once, before this ledger reserves anything. Returns the job ids, in order.
        """
        now = ts(self.db.now())
        if at_start:
            sql, error = _RECOVER_AT_START, "interrupted: bot restarted"
        else:
            sql, error = _RECOVER_SIBLINGS, "interrupted: its process stopped renewing its lease"
        async with self.db.write() as tx:
            await tx.lock_recovery()
            rows = await tx.fetchall(sql, (now, error, self.db.instance_id, now))
            # All at once, in lock order (not job by job): a reservation in flight never waits in a cycle.
            await counters.give_back(tx, [c for row in rows for c in self._refunded(int(row["id"]), row)])
            if at_start:
                if self.defaults.bot_user_daily is None:
                    await counters.forget(tx, "e:")
                if self.defaults.bot_budget_usd is None:
                    await counters.forget(tx, "B:")
        ids = sorted(int(r["id"]) for r in rows)
        if ids:
            why = "interrupted by a restart" if at_start else "of instances whose lease expired"
            log.warning("refunded %d job(s) %s: %s", len(ids), why, ids)
        return ids

    async def recover_siblings(self) -> None:
        """For ``InstanceLease.after_renew``: the jobs of siblings whose lease expired."""
        await self.recover_reservations(at_start=False)

    async def own_active_jobs(self, *, idle_seconds: float) -> list[int]:
        """This instance's jobs still reserved or running whose last start (or creation) lies more than
        ``idle_seconds`` back: candidates for ``bot/jobs/retry.py``'s ``reclaim_overdue``."""
        before = ts(self.db.now() - timedelta(seconds=idle_seconds))
        async with self.db.plain() as tx:
            rows = await tx.fetchall(
                "SELECT id FROM jobs WHERE owner = ? AND status IN ('reserved', 'running') "
                "AND COALESCE(started_at, created_at) < ? ORDER BY id",
                (self.db.instance_id, before),
            )
        return [int(r[0]) for r in rows]
