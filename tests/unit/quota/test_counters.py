"""Quota counters (``bot/quota/counters.py``) on both databases: what a reservation takes, settle, refund,
crash recovery and ``/quota reset`` give back exactly once; and the purge of old prompts
(``bot/quota/retention.py``) with an injected clock."""

from __future__ import annotations

import pytest

from bot.quota import Quota, QuotaExceeded
from bot.quota.retention import PromptRetention
from tests.helpers.stores import (
    GUILD,
    MOD,
    USER,
    BackendOpener,
    Clock,
    clock,
    database,
    dialect,
    lease_of,
    open_backend,
    quota_on,
    reserve,
    rows,
    store,
)

__all__ = ["clock", "database", "dialect", "open_backend", "store"]  # fixtures used here


async def counter_values(quota: Quota) -> dict[str, float]:
    return {r[0][0]: float(r[1]) for r in await rows(quota, "SELECT key, used FROM quota_counters")}


async def test_refund_gives_the_images_back_once(store: Quota) -> None:
    held = [await reserve(store) for _ in range(5)]  # the day's 5
    with pytest.raises(QuotaExceeded):
        await reserve(store)
    assert await store.ledger.refund(held[0].job_id, status="failed") is True
    assert await store.ledger.refund(held[0].job_id, status="failed") is False  # nothing more to give
    await reserve(store)  # the one given back
    with pytest.raises(QuotaExceeded) as info:
        await reserve(store)
    assert info.value.scope == "daily" and info.value.used == 5
    assert await counter_values(store) == {"d": 5.0, "m": 5.0}


async def test_settle_gives_back_what_was_not_made(store: Quota) -> None:
    r = await reserve(store, images=4)
    await store.ledger.settle(r.job_id, images=1, cost=0.01)
    assert await counter_values(store) == {"d": 1.0, "m": 1.0}
    with pytest.raises(QuotaExceeded):
        await reserve(store, images=5)
    await reserve(store, images=4)


async def test_budget_counter_follows_estimates_then_costs(store: Quota) -> None:
    await store.moderation.set_budget(GUILD, 1.0, actor_id=MOD)
    a = await reserve(store, cost=0.6, user_id=USER + 1)
    with pytest.raises(QuotaExceeded) as info:
        await reserve(store, cost=0.5, user_id=USER + 2)
    assert info.value.scope == "budget" and info.value.used == pytest.approx(0.6)
    await store.ledger.settle(a.job_id, images=1, cost=0.2)  # cost less than estimated
    await reserve(store, cost=0.5, user_id=USER + 2)
    assert (await counter_values(store))["b"] == pytest.approx(0.7)
    # A new budget starts the counter again from the ledger, which agrees with it.
    await store.moderation.set_budget(GUILD, 0.75, actor_id=MOD)
    with pytest.raises(QuotaExceeded):
        await reserve(store, cost=0.1, user_id=USER + 3)
    await reserve(store, cost=0.05, user_id=USER + 3)
    assert (await counter_values(store))["b"] == pytest.approx(0.75)


async def test_crash_recovery_gives_counters_back_once(open_backend: BackendOpener, clock: Clock) -> None:
    async with open_backend() as backend:
        first = quota_on(backend, default_daily=3, default_monthly=50, clock=clock, instance_id="main")
        await lease_of(first).renew()
        for _ in range(3):
            await reserve(first)
        # The process dies; its next life recovers the jobs at start.
        again = quota_on(backend, default_daily=3, default_monthly=50, clock=clock, instance_id="main")
        assert len(await again.ledger.recover_reservations()) == 3
        assert await again.ledger.recover_reservations() == []
        assert await counter_values(again) == {"d": 0.0, "m": 0.0}
        for _ in range(3):
            await reserve(again)
        with pytest.raises(QuotaExceeded):
            await reserve(again)


async def test_a_refund_after_a_reset_gives_nothing_back(store: Quota) -> None:
    before = [await reserve(store) for _ in range(3)]
    await store.moderation.reset_user(GUILD, USER, actor_id=MOD)
    after = await reserve(store)
    await store.ledger.refund(before[0].job_id, status="cancelled")  # no longer counted: nothing to give
    assert await counter_values(store) == {"d": 1.0, "m": 1.0}
    await store.ledger.refund(after.job_id, status="cancelled")
    assert await counter_values(store) == {"d": 0.0, "m": 0.0}
    assert (await store.ledger.usage(GUILD, USER, ())).daily_used == 0


async def test_counters_started_from_the_ledger_after_a_time_zone_change(store: Quota, clock: Clock) -> None:
    for _ in range(4):
        await reserve(store)
    await store.moderation.set_timezone(GUILD, "Asia/Shanghai", actor_id=MOD)  # other day boundaries: new keys
    await reserve(store)  # the new day's counter starts at the ledger's 4
    with pytest.raises(QuotaExceeded) as info:
        await reserve(store)
    assert info.value.used == 5


async def test_old_prompts_are_erased_and_the_money_kept(store: Quota, clock: Clock) -> None:
    old = await reserve(store, prompt="a secret", source_image_url="https://cdn/x.png", cost=0.05)
    await store.ledger.settle(old.job_id, images=1, cost=0.042)
    stuck = await reserve(store, prompt="still running")
    await store.ledger.mark_running(stuck.job_id)
    clock.advance(days=30)
    recent = await reserve(store, prompt="recent")
    clock.advance(days=61)  # the first two are 91 days old, the last one 61

    assert await PromptRetention(store.db, 0).purge_once() == 0  # 0 keeps everything
    retention = PromptRetention(store.db, 90)
    assert await retention.purge_once() == 1
    assert await retention.purge_once() == 0
    job = await store.ledger.get_job(old.job_id)
    assert job is not None and job.prompt == "" and job.source_image_url is None and job.purged_at == clock.now
    assert (job.status, job.images_done, job.cost_actual, job.cost_estimate) == ("done", 1, 0.042, 0.05)
    running = await store.ledger.get_job(stuck.job_id)
    assert running is not None and running.prompt == "still running"  # a job in flight is never touched
    kept = await store.ledger.get_job(recent.job_id)
    assert kept is not None and kept.prompt == "recent" and kept.purged_at is None
    assert await counter_values(store) == {}  # the counters of periods long over went with it
    csv = await store.reports.ledger_csv(GUILD, since=clock.now.replace(year=2000))
    assert "a secret" not in csv and "0.042" in csv
