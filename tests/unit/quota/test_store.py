"""The quota repositories (ledger, moderation, reports) against real databases, with an injectable clock.

Every test taking the ``store`` fixture runs twice: on an SQLite file (``bot.storage.db.open_database``)
and on a real PostgreSQL server (``tests/helpers/pgserver.py``); see ``tests/helpers/stores.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import sqlite3
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.quota import INHERIT, JobNotFound, JobStateError, Quota, QuotaExceeded
from bot.storage.db import migrations, open_database
from tests.helpers.stores import CHANNEL, GUILD, MOD, USER, Clock, quota_on, reserve, rows

LATEST = migrations()[-1][0]


# --------------------------------------------------------------------------- lifecycle


async def test_reserve_settle_and_ledger_fields(store: Quota, clock: Clock) -> None:
    r = await reserve(store, images=2, cost=0.08, settings={"size": "1024x1024", "count": 2})
    job = await store.ledger.get_job(r.job_id)
    assert job is not None
    assert (job.status, job.images_reserved, job.cost_estimate, job.guild_id, job.channel_id) == (
        "reserved", 2, 0.08, GUILD, CHANNEL,
    )  # fmt: skip
    assert job.settings == {"size": "1024x1024", "count": 2} and job.created_at == clock.now
    assert (await store.ledger.usage(GUILD, USER, ())).daily_used == 2  # reserved jobs count

    await store.ledger.mark_running(r.job_id)
    clock.advance(seconds=30)
    await store.ledger.settle(r.job_id, images=2, cost=0.0815, input_tokens=20, output_tokens=4000)
    await store.ledger.set_message(r.job_id, 555)
    job = await store.ledger.get_job(r.job_id)
    assert job is not None
    assert (job.status, job.images_done, job.cost_actual, job.input_tokens, job.output_tokens) == (
        "done", 2, 0.0815, 20, 4000,
    )  # fmt: skip
    assert job.message_id == 555 and job.finished_at == clock.now and job.started_at is not None
    assert (await store.ledger.job_by_message(555)) == job

    edit = await reserve(store, kind="edit", parent_job_id=r.job_id, source_image_url="https://cdn/x.png")
    edit_job = await store.ledger.get_job(edit.job_id)
    assert edit_job is not None and edit_job.parent_job_id == r.job_id and edit_job.kind == "edit"
    assert [j.id for j in await store.ledger.recent_jobs(GUILD, USER)] == [edit.job_id, r.job_id]
    assert await store.ledger.get_job(999) is None


async def test_partial_settle_counts_only_done_images(store: Quota) -> None:
    r = await reserve(store, images=3)
    await store.ledger.settle(r.job_id, images=1, cost=0.04)
    job = await store.ledger.get_job(r.job_id)
    assert job is not None and job.status == "partial" and job.images_done == 1
    assert (await store.ledger.usage(GUILD, USER, ())).daily_used == 1


async def test_settle_zero_images_refunds_but_keeps_cost(store: Quota) -> None:
    await store.moderation.set_budget(GUILD, 10.0, actor_id=MOD)
    r = await reserve(store, images=2, cost=0.1)
    await store.ledger.settle(r.job_id, images=0, cost=0.01, input_tokens=50)
    job = await store.ledger.get_job(r.job_id)
    assert job is not None and job.status == "failed" and job.images_done == 0
    usage = await store.ledger.usage(GUILD, USER, ())
    assert usage.daily_used == 0 and usage.budget_spent == pytest.approx(0.01)


async def test_refund_is_idempotent_and_never_undoes_a_settle(store: Quota) -> None:
    r = await reserve(store, images=2)
    assert await store.ledger.refund(r.job_id, status="blocked", error="safety") is True
    assert await store.ledger.refund(r.job_id, status="failed") is False  # no-op, keeps the first status
    job = await store.ledger.get_job(r.job_id)
    assert job is not None and job.status == "blocked" and job.error == "safety"
    assert (await store.ledger.usage(GUILD, USER, ())).daily_used == 0

    with pytest.raises(JobStateError):
        await store.ledger.settle(r.job_id, images=2, cost=0.08)  # settle after refund is refused
    with pytest.raises(JobStateError):
        await store.ledger.mark_running(r.job_id)  # a cancelled job must not start

    s = await reserve(store)
    await store.ledger.settle(s.job_id, images=1, cost=0.04)
    assert await store.ledger.refund(s.job_id, status="cancelled") is False
    job = await store.ledger.get_job(s.job_id)
    assert job is not None and job.status == "done"
    assert (await store.ledger.usage(GUILD, USER, ())).daily_used == 1
    with pytest.raises(JobStateError):
        await store.ledger.settle(s.job_id, images=1, cost=0.04)  # no double settle

    with pytest.raises(ValueError):
        await store.ledger.refund(s.job_id, status="done")
    with pytest.raises(JobNotFound):
        await store.ledger.refund(12345, status="failed")
    with pytest.raises(JobNotFound):
        await store.ledger.set_message(12345, 1)


async def test_invalid_reservations_are_rejected(store: Quota) -> None:
    for kw in ({"images": 0}, {"kind": "reroll"}, {"cost": -1.0}, {"cost": float("nan")}):
        with pytest.raises(ValueError):
            await reserve(store, **kw)
    assert await rows(store, "SELECT id FROM jobs") == []


# --------------------------------------------------------------------------- limits


async def test_daily_limit_and_resets_at(store: Quota, clock: Clock) -> None:
    await store.moderation.set_timezone(GUILD, "America/Los_Angeles", actor_id=MOD)
    for _ in range(5):
        await reserve(store)
    with pytest.raises(QuotaExceeded) as exc:
        await reserve(store)
    e = exc.value
    assert (e.scope, e.limit, e.used, e.requested) == ("daily", 5, 5, 1)
    # 12:00 UTC on June 15th is 05:00 PDT; the day rolls over at 07:00 UTC on the 16th.
    assert e.resets_at == datetime(2024, 6, 16, 7, tzinfo=UTC)
    assert "daily" in str(e)

    clock.now = datetime(2024, 6, 16, 6, 59, 59, tzinfo=UTC)
    with pytest.raises(QuotaExceeded):
        await reserve(store)
    clock.now = datetime(2024, 6, 16, 7, tzinfo=UTC)
    await reserve(store)


async def test_request_larger_than_what_is_left(store: Quota) -> None:
    await reserve(store, images=4)
    with pytest.raises(QuotaExceeded) as exc:
        await reserve(store, images=2)
    assert (exc.value.used, exc.value.requested) == (4, 2)
    await reserve(store, images=1)


async def test_monthly_limit_spans_days(store: Quota, clock: Clock) -> None:
    await store.moderation.set_user_limit(GUILD, USER, daily=None, monthly=3, actor_id=MOD)
    await reserve(store, images=2)
    clock.advance(days=1)
    await reserve(store)
    clock.advance(days=1)
    with pytest.raises(QuotaExceeded) as exc:
        await reserve(store)
    assert exc.value.scope == "monthly" and exc.value.resets_at == datetime(2024, 7, 1, tzinfo=UTC)
    clock.now = datetime(2024, 7, 1, tzinfo=UTC)
    await reserve(store)


async def test_limit_resolution_through_the_store(store: Quota) -> None:
    u = await store.ledger.usage(GUILD, USER, (7, 8))
    assert (u.limits.daily, u.limits.daily_source) == (5, "bot")
    await store.moderation.set_default_limit(GUILD, daily=2, monthly=20, actor_id=MOD)
    await store.moderation.set_role_limit(GUILD, 7, daily=3, actor_id=MOD)
    await store.moderation.set_role_limit(GUILD, 8, daily=None, actor_id=MOD)
    await store.moderation.set_role_limit(GUILD, 9, daily=100, actor_id=MOD)  # not the user's role
    u = await store.ledger.usage(GUILD, USER, (7, 8))
    assert (u.limits.daily, u.limits.daily_source, u.limits.monthly, u.limits.monthly_source) == (
        None, "role:8", 20, "server",
    )  # fmt: skip
    assert u.daily_remaining is None and u.monthly_remaining == 20
    await store.moderation.set_user_limit(GUILD, USER, daily=1, actor_id=MOD)
    assert (await store.ledger.usage(GUILD, USER, (7, 8))).limits.daily_source == "user"
    await store.moderation.set_user_limit(GUILD, USER, daily=INHERIT, actor_id=MOD)
    assert (await store.ledger.usage(GUILD, USER, (7, 8))).limits.daily_source == "role:8"
    # Other servers are unaffected.
    assert (await store.ledger.usage(GUILD + 1, USER, (7, 8))).limits.daily_source == "bot"
    overrides = await store.moderation.list_limits(GUILD)
    assert [(o.scope, o.target_id) for o in overrides] == [("server", 0), ("role", 7), ("role", 8), ("role", 9)]
    assert overrides[2].daily_set and overrides[2].daily is None and not overrides[2].monthly_set

    with pytest.raises(ValueError):
        await store.moderation.set_user_limit(GUILD, USER, daily=-1, actor_id=MOD)
    with pytest.raises(TypeError):
        await store.moderation.set_user_limit(GUILD, USER, daily=True, actor_id=MOD)


async def test_blocked_user(store: Quota) -> None:
    await store.moderation.set_user_limit(GUILD, USER, monthly=0, actor_id=MOD)
    with pytest.raises(QuotaExceeded) as exc:
        await reserve(store)
    assert exc.value.scope == "blocked" and exc.value.limit == 0


async def test_dms_use_bot_defaults_and_no_budget(store: Quota) -> None:
    await store.moderation.set_default_limit(GUILD, daily=0, actor_id=MOD)
    for _ in range(5):
        await reserve(store, guild_id=None, channel_id=None, cost=100.0)
    with pytest.raises(QuotaExceeded):
        await reserve(store, guild_id=None, channel_id=None)
    u = await store.ledger.usage(None, USER, ())
    assert (u.daily_used, u.limits.daily_source, u.budget_usd) == (5, "bot", None)
    assert (await store.ledger.usage(GUILD, USER, ())).daily_used == 0  # DMs and servers are separate
    assert len(await store.ledger.recent_jobs(None, USER)) == 5


async def test_budget_uses_estimates_then_actual_costs(store: Quota, clock: Clock) -> None:
    await store.moderation.set_user_limit(GUILD, USER, daily=None, monthly=None, actor_id=MOD)
    await store.moderation.set_budget(GUILD, 0.30, actor_id=MOD)
    a = await reserve(store, cost=0.10)
    b = await reserve(store, cost=0.10, user_id=USER + 1)  # budget is per server, not per user
    with pytest.raises(QuotaExceeded) as exc:
        await reserve(store, cost=0.11)
    e = exc.value
    assert e.scope == "budget" and e.limit == 0.30 and e.used == pytest.approx(0.20)
    assert e.requested == 0.11 and e.resets_at == datetime(2024, 7, 1, tzinfo=UTC)
    await store.ledger.settle(a.job_id, images=1, cost=0.05)  # cheaper than estimated frees budget
    await store.ledger.refund(b.job_id, status="failed")
    await reserve(store, cost=0.25)
    u = await store.ledger.usage(GUILD, USER, ())
    assert u.budget_spent == pytest.approx(0.30) and u.budget_remaining == pytest.approx(0.0)
    with pytest.raises(QuotaExceeded):
        await reserve(store, cost=0.0)  # exhausted
    clock.now = datetime(2024, 7, 1, tzinfo=UTC)  # a new month, a new budget
    await reserve(store, cost=0.25)
    await store.moderation.set_budget(GUILD, None, actor_id=MOD)
    await reserve(store, cost=1000.0)


# --------------------------------------------------------------------------- reset, audit


async def test_reset_user_clears_current_periods_only(store: Quota, clock: Clock) -> None:
    await store.moderation.set_user_limit(GUILD, USER, monthly=12, actor_id=MOD)
    for _ in range(5):
        await reserve(store)
    other = await reserve(store, user_id=USER + 1)
    with pytest.raises(QuotaExceeded):
        await reserve(store)
    await store.moderation.reset_user(GUILD, USER, actor_id=MOD)
    u = await store.ledger.usage(GUILD, USER, ())
    assert (u.daily_used, u.monthly_used) == (0, 0)
    assert (await store.ledger.usage(GUILD, USER + 1, ())).daily_used == 1  # other users keep theirs
    for _ in range(5):
        await reserve(store)  # same clock instant as the reset: these still count
    assert (await store.ledger.usage(GUILD, USER, ())).daily_used == 5
    clock.advance(days=1)
    await reserve(store)
    assert (await store.ledger.usage(GUILD, USER, ())).monthly_used == 6  # jobs before the reset stay gone
    # The ledger keeps everything.
    assert len(await rows(store, "SELECT id FROM jobs WHERE user_id = ?", (USER,))) == 11
    assert other.job_id > 0


async def test_audit_log_records_every_moderator_change(store: Quota, clock: Clock) -> None:
    await reserve(store, images=1)
    assert await store.moderation.set_user_limit(GUILD, USER, daily=3, actor_id=MOD) == {
        "daily": {"old": "inherit", "new": 3}
    }
    await store.moderation.set_user_limit(GUILD, USER, daily=None, monthly=0, actor_id=MOD + 1)
    await store.moderation.set_role_limit(GUILD, 77, daily=INHERIT, actor_id=MOD)
    assert await store.moderation.set_default_limit(GUILD, monthly=100, actor_id=MOD) == {
        "monthly": {"old": "inherit", "new": 100}
    }
    await store.moderation.set_budget(GUILD, 12.5, actor_id=MOD)
    assert await store.moderation.set_timezone(GUILD, "Asia/Tokyo", actor_id=MOD) == "Asia/Tokyo"
    await store.moderation.set_manager_role(GUILD, 555, actor_id=MOD)
    before = await store.moderation.reset_user(GUILD, USER, actor_id=MOD)  # returns the usage it cleared
    assert (before.daily_used, before.monthly_used) == (1, 1)
    # nothing given: no change, no audit row
    assert await store.moderation.set_user_limit(GUILD, USER, actor_id=MOD) == {}

    entries = await store.moderation.audit_log(GUILD)
    assert [e.action for e in reversed(entries)] == [
        "set_user_limit", "set_user_limit", "set_role_limit", "set_default_limit", "set_budget",
        "set_timezone", "set_manager_role", "reset_user",
    ]  # fmt: skip
    by_action = {e.action: e for e in entries}
    assert entries[-2].details == {"daily": {"old": 3, "new": "unlimited"}, "monthly": {"old": "inherit", "new": 0}}
    assert entries[-2].actor_id == MOD + 1 and entries[-2].target_id == USER
    assert by_action["set_budget"].details == {"old": None, "new": 12.5}
    assert by_action["set_timezone"].details == {"old": "UTC", "new": "Asia/Tokyo"}
    assert by_action["reset_user"].target_id == USER and by_action["reset_user"].details["daily_used"] == 1
    assert all(e.created_at == clock.now and e.guild_id == GUILD for e in entries)

    settings = await store.moderation.get_settings(GUILD)
    assert (settings.timezone, settings.budget_usd, settings.manager_role_id) == ("Asia/Tokyo", 12.5, 555)
    assert await store.moderation.get_manager_role(GUILD) == 555
    await store.moderation.set_manager_role(GUILD, None, actor_id=MOD)
    assert await store.moderation.get_manager_role(GUILD) is None
    assert await store.moderation.get_manager_role(GUILD + 1) is None

    with pytest.raises(ValueError):
        await store.moderation.set_timezone(GUILD, "Not/AZone", actor_id=MOD)
    with pytest.raises(ValueError):
        await store.moderation.set_budget(GUILD, -1, actor_id=MOD)
    assert len(await store.moderation.audit_log(GUILD, limit=100)) == 9


# --------------------------------------------------------------------------- reports


async def test_report_and_ledger_csv(store: Quota, clock: Clock) -> None:
    await store.moderation.set_timezone(GUILD, "Asia/Tokyo", actor_id=MOD)
    clock.now = datetime(2024, 5, 31, 14, 0, tzinfo=UTC)  # May 31st 23:00 JST: last month
    await reserve(store, prompt="old")
    clock.now = datetime(2024, 5, 31, 15, 0, tzinfo=UTC)  # June 1st 00:00 JST
    a = await reserve(store, images=2, cost=0.08, prompt='=HYPERLINK("http://evil")')
    await store.ledger.settle(a.job_id, images=2, cost=0.07)
    b = await reserve(store, user_id=USER + 1, cost=0.04, prompt="a dog, with a comma\nand a newline")
    c = await reserve(store, user_id=USER + 1, cost=0.04)
    await store.ledger.refund(c.job_id, status="cancelled")
    await reserve(store, guild_id=GUILD + 1)

    report = await store.reports.report(GUILD)
    assert report.period_start == datetime(2024, 5, 31, 15, tzinfo=UTC)
    assert report.period_end == datetime(2024, 6, 30, 15, tzinfo=UTC)
    assert (report.total_jobs, report.total_images) == (3, 3)
    assert report.total_spent == pytest.approx(0.11)
    assert [(u.user_id, u.jobs, u.images) for u in report.users] == [(USER, 1, 2), (USER + 1, 2, 1)]

    text = await store.reports.ledger_csv(GUILD)
    parsed = list(csv.DictReader(io.StringIO(text)))
    assert [int(r["id"]) for r in parsed] == [a.job_id, b.job_id, c.job_id]
    assert parsed[0]["prompt"].startswith("'=")  # formula defused
    assert parsed[1]["prompt"] == "a dog, with a comma\nand a newline"
    assert parsed[2]["status"] == "cancelled"
    everything = await store.reports.ledger_csv(GUILD, since=datetime(2024, 1, 1, tzinfo=UTC))
    assert len(list(csv.DictReader(io.StringIO(everything)))) == 4

    # The chart's days are the server's (Tokyo) days, summed from per-minute rows on either database.
    clock.now = datetime(2024, 6, 2, 16, 30, tzinfo=UTC)  # June 3rd 01:30 JST
    await reserve(store)
    daily = (await store.reports.report(GUILD)).daily
    assert [(d.day, d.images) for d in daily] == [(date(2024, 6, 1), 3), (date(2024, 6, 2), 0), (date(2024, 6, 3), 1)]
    assert [d.spent_usd for d in daily] == pytest.approx([0.11, 0.0, 0.04])


async def test_large_ledger_csv(store: Quota) -> None:
    await store.moderation.set_user_limit(GUILD, USER, daily=None, monthly=None, actor_id=MOD)
    async with store.db.write() as conn:  # bulk rows quickly
        await conn.executemany(
            "INSERT INTO jobs (guild_id, user_id, kind, prompt, model, created_at) "
            "VALUES (?, ?, 'generate', ?, 'm', ?)",
            [(GUILD, USER, f"p{i}", store.db.now().isoformat(timespec="microseconds")) for i in range(600)],
        )
    text = await store.reports.ledger_csv(GUILD)
    assert len(text.splitlines()) == 601


# --------------------------------------------------------------------------- crash recovery


async def test_recover_reservations(store: Quota) -> None:
    reserved = await reserve(store)
    running = await reserve(store)
    await store.ledger.mark_running(running.job_id)
    done = await reserve(store)
    await store.ledger.settle(done.job_id, images=1, cost=0.04)
    failed = await reserve(store)
    await store.ledger.refund(failed.job_id, status="failed", error="boom")

    assert await store.ledger.recover_reservations() == [reserved.job_id, running.job_id]
    statuses = {j.id: (j.status, j.error) for j in await store.ledger.recent_jobs(GUILD, USER)}
    assert statuses[reserved.job_id][0] == "crashed" and statuses[running.job_id][0] == "crashed"
    assert statuses[done.job_id] == ("done", None) and statuses[failed.job_id] == ("failed", "boom")
    assert (await store.ledger.usage(GUILD, USER, ())).daily_used == 1
    assert await store.ledger.recover_reservations() == []
    with pytest.raises(JobStateError):
        await store.ledger.settle(running.job_id, images=1, cost=0.04)


# --------------------------------------------------------------------------- migrations


async def test_fresh_database_reaches_latest_version(tmp_path: Path) -> None:
    async with open_database(tmp_path / "fresh.db") as conn:
        async with conn.execute("PRAGMA user_version") as cur:
            assert (await cur.fetchone())[0] == LATEST >= 2  # type: ignore[index]
        async with conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'") as cur:
            tables = {r[0] for r in await cur.fetchall()}
    assert {"jobs", "kv", "guild_settings", "quota_limits", "quota_resets", "audit_log"} <= tables


async def test_version_1_database_migrates_and_keeps_jobs(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "old.db"
    v1 = next(sql for version, _, sql in migrations() if version == 1)
    with contextlib.closing(sqlite3.connect(path)) as old:
        old.executescript(v1)
        old.executemany(
            "INSERT INTO jobs (guild_id, user_id, kind, prompt, model, status, images_reserved, images_done, "
            "cost_actual, created_at) VALUES (?, ?, 'generate', ?, 'gpt-image-1', ?, ?, ?, ?, ?)",
            [
                (GUILD, USER, "old done", "done", 2, 2, 0.08, "2024-06-15T01:00:00.000000+00:00"),
                (GUILD, USER, "old running", "running", 1, 0, 0.0, "2024-06-15T02:00:00.000000+00:00"),
            ],
        )
        old.execute("PRAGMA user_version = 1")
        old.commit()

    async with open_database(path) as conn:
        async with conn.execute("PRAGMA user_version") as cur:
            assert (await cur.fetchone())[0] == LATEST  # type: ignore[index]
        store = quota_on(conn, default_daily=5, default_monthly=50, clock=clock)
        assert (await store.ledger.usage(GUILD, USER, ())).daily_used == 3
        assert len(await store.ledger.recover_reservations()) == 1
        assert (await store.ledger.usage(GUILD, USER, ())).daily_used == 2
        job = await store.ledger.get_job(1)
        assert job is not None and job.prompt == "old done" and job.started_at is None
        await reserve(store)
        assert (await store.ledger.usage(GUILD, USER, ())).daily_used == 3


# --------------------------------------------------------------------------- concurrency


async def test_100_concurrent_reservations_admit_exactly_the_remaining(store: Quota) -> None:
    await store.moderation.set_user_limit(GUILD, USER, daily=7, actor_id=MOD)
    await reserve(store, images=2)  # 5 left
    results = await asyncio.gather(*(reserve(store) for _ in range(100)), return_exceptions=True)
    admitted = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, QuotaExceeded)]
    assert len(admitted) == 5 and len(refused) == 95
    assert (await store.ledger.usage(GUILD, USER, ())).daily_used == 7
    assert len(await rows(store, "SELECT id FROM jobs")) == 6


async def test_100_members_racing_for_the_last_of_the_budget(store: Quota) -> None:
    """Different users do not share a limit, but they share the server's budget."""
    await store.moderation.set_default_limit(GUILD, daily=None, monthly=None, actor_id=MOD)
    await store.moderation.set_budget(GUILD, 0.5, actor_id=MOD)
    results = await asyncio.gather(
        *(reserve(store, user_id=USER + i, cost=0.1) for i in range(100)), return_exceptions=True
    )
    admitted = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, QuotaExceeded) and r.scope == "budget"]
    assert len(admitted) == 5 and len(refused) == 95
    assert (await store.ledger.usage(GUILD, USER, ())).budget_spent == pytest.approx(0.5)


async def test_concurrent_reservations_on_two_connections(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "shared.db"
    async with open_database(path) as c1, open_database(path) as c2:
        s1 = quota_on(c1, default_daily=5, default_monthly=50, clock=clock)
        s2 = quota_on(c2, default_daily=5, default_monthly=50, clock=clock)
        assert s1.db.backend.lock is not s2.db.backend.lock  # type: ignore[attr-defined]  # only SQLite's transaction can keep them apart
        results = await asyncio.gather(*(reserve(s1 if i % 2 else s2) for i in range(100)), return_exceptions=True)
        admitted = [r for r in results if not isinstance(r, BaseException)]
        others = [r for r in results if isinstance(r, BaseException) and not isinstance(r, QuotaExceeded)]
        assert others == [] and len(admitted) == 5
        assert (await s2.ledger.usage(GUILD, USER, ())).daily_used == 5


async def test_stores_on_one_connection_share_the_lock(tmp_path: Path) -> None:
    async with open_database(tmp_path / "bot.storage.db") as conn:
        one = quota_on(conn, default_daily=5, default_monthly=50)
        other = quota_on(conn, default_daily=5, default_monthly=50)
        assert other.db.backend.lock is one.db.backend.lock  # type: ignore[attr-defined]


async def test_cancelled_reservation_leaves_nothing_held(store: Quota) -> None:
    await store.moderation.set_user_limit(GUILD, USER, daily=None, actor_id=MOD)
    returned, cancelled = 0, 0
    # Cancel at many points of the transaction (loop turns), and then after it (real time).
    for delay in [*range(30), 0.002, 0.005, 0.02, 0.05]:
        task = asyncio.create_task(reserve(store))
        if isinstance(delay, float):
            await asyncio.sleep(delay)
        for _ in range(delay if isinstance(delay, int) else 0):
            await asyncio.sleep(0)
        task.cancel()
        try:
            await task
            returned += 1
        except asyncio.CancelledError:
            cancelled += 1
        if store.db.backend.dialect == "sqlite":
            assert not store.db.backend.conn.in_transaction  # type: ignore[attr-defined]
    held = await rows(store, "SELECT id FROM jobs WHERE status = 'reserved'")
    assert cancelled > 0
    assert len(held) == returned == (await store.ledger.usage(GUILD, USER, ())).daily_used
    r = await reserve(store)  # the connection is usable
    await store.ledger.settle(r.job_id, images=1, cost=0.04)


async def test_cancelled_settle_still_lands(store: Quota) -> None:
    r = await reserve(store)
    task = asyncio.create_task(store.ledger.settle(r.job_id, images=1, cost=0.04))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    job = await store.ledger.get_job(r.job_id)
    assert job is not None and job.status == "done"


def test_quota_exceeded_survives_contextmanager_and_pickle() -> None:
    import pickle

    @contextlib.contextmanager
    def passthrough() -> Any:
        yield

    exc = QuotaExceeded("daily", 5, 5, datetime(2024, 1, 1, tzinfo=UTC), 1)
    with pytest.raises(QuotaExceeded):
        with passthrough():
            raise exc
    again = pickle.loads(pickle.dumps(exc))
    assert (again.scope, again.limit, again.used, again.resets_at) == ("daily", 5, 5, exc.resets_at)
