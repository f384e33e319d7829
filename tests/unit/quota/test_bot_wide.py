"""The bot-wide caps (``BOT_USER_DAILY_LIMIT``, ``BOT_MONTHLY_BUDGET_USD``): every server together.

Run against both databases (``tests/helpers/stores.py``). Servers' own limits still apply first; the bot-wide
ones count one person's images in every server and DM per UTC day, and the whole bot's spend per UTC
month.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import pytest

from bot.quota import Quota, QuotaExceeded
from tests.helpers.stores import (
    GUILD,
    USER,
    BackendOpener,
    Clock,
    clock,
    database,
    dialect,
    open_backend,
    quota_on,
    reserve,
    rows,
)

__all__ = ["clock", "database", "dialect", "open_backend"]  # fixtures used here

OTHER_GUILD = GUILD + 1


@asynccontextmanager
async def capped(
    open_backend: BackendOpener, clock: Clock, *, daily: int | None = None, budget: float | None = None
) -> AsyncIterator[Quota]:
    async with open_backend() as backend:
        yield quota_on(
            backend, default_daily=25, default_monthly=300, bot_user_daily=daily, bot_budget_usd=budget, clock=clock
        )


async def test_a_persons_images_count_in_every_server_and_in_dms(open_backend: BackendOpener, clock: Clock) -> None:
    async with capped(open_backend, clock, daily=3) as store:
        await reserve(store, guild_id=GUILD)
        await reserve(store, guild_id=OTHER_GUILD, images=1)
        await reserve(store, guild_id=None)
        with pytest.raises(QuotaExceeded) as info:
            await reserve(store, guild_id=OTHER_GUILD + 1)
        refused = info.value
        assert refused.scope == "bot_daily" and refused.limit == 3 and refused.used == 3
        assert refused.resets_at == datetime(2024, 6, 16, tzinfo=UTC)  # the UTC day's end, whatever the server's zone
        # Someone else is not affected, and the server's own usage is its own.
        await reserve(store, guild_id=GUILD, user_id=USER + 1)
        usage = await store.ledger.usage(OTHER_GUILD, USER, ())
        assert usage.daily_used == 1 and usage.everywhere_used == 3 and usage.everywhere_daily == 3
        assert len(await rows(store, "SELECT id FROM jobs")) == 4  # the refusal wrote nothing


async def test_refunds_free_the_bot_wide_cap_and_a_new_utc_day_resets_it(
    open_backend: BackendOpener, clock: Clock
) -> None:
    async with capped(open_backend, clock, daily=2) as store:
        first = await reserve(store, guild_id=GUILD, images=2)
        with pytest.raises(QuotaExceeded):
            await reserve(store, guild_id=OTHER_GUILD)
        await store.ledger.refund(first.job_id, status="failed")
        await reserve(store, guild_id=OTHER_GUILD, images=2)
        clock.advance(hours=12)  # 2024-06-16 00:00 UTC
        await reserve(store, guild_id=GUILD)


async def test_the_servers_own_limit_is_checked_first_and_a_moderator_reset_does_not_lift_the_bot_cap(
    open_backend: BackendOpener, clock: Clock
) -> None:
    async with capped(open_backend, clock, daily=2) as store:
        await store.moderation.set_user_limit(GUILD, USER, daily=1, actor_id=1)
        await reserve(store, guild_id=GUILD)
        with pytest.raises(QuotaExceeded) as server:
            await reserve(store, guild_id=GUILD)
        assert server.value.scope == "daily"  # the server's own limit, worded as such
        await reserve(store, guild_id=OTHER_GUILD)
        await store.moderation.reset_user(OTHER_GUILD, USER, actor_id=1)
        with pytest.raises(QuotaExceeded) as everywhere:
            await reserve(store, guild_id=OTHER_GUILD)
        assert everywhere.value.scope == "bot_daily"


async def test_zero_blocks_everyone(open_backend: BackendOpener, clock: Clock) -> None:
    async with capped(open_backend, clock, daily=0) as store:
        with pytest.raises(QuotaExceeded) as info:
            await reserve(store)
        assert info.value.scope == "bot_daily" and info.value.limit == 0


async def test_the_bot_budget_counts_every_servers_spend(open_backend: BackendOpener, clock: Clock) -> None:
    async with capped(open_backend, clock, budget=0.10) as store:
        a = await reserve(store, guild_id=GUILD, cost=0.04)
        await reserve(store, guild_id=OTHER_GUILD, user_id=USER + 1, cost=0.04)
        with pytest.raises(QuotaExceeded) as info:
            await reserve(store, guild_id=OTHER_GUILD + 1, user_id=USER + 2, cost=0.04)
        assert info.value.scope == "bot_budget" and info.value.limit == pytest.approx(0.10)
        assert info.value.resets_at == datetime(2024, 7, 1, tzinfo=UTC)
        # A job that ends cheaper than estimated frees the difference (its actual cost counts once it ended).
        await store.ledger.settle(a.job_id, images=1, cost=0.01)
        await reserve(store, guild_id=OTHER_GUILD + 1, user_id=USER + 2, cost=0.04)


async def test_racing_reservations_of_one_person_in_many_servers_admit_exactly_the_cap(
    open_backend: BackendOpener, clock: Clock
) -> None:
    async with capped(open_backend, clock, daily=5) as store:
        results = await asyncio.gather(*(reserve(store, guild_id=GUILD + n) for n in range(30)), return_exceptions=True)
    refused = [r for r in results if isinstance(r, QuotaExceeded)]
    assert len(results) - len(refused) == 5 and len(refused) == 25
    assert all(r.scope == "bot_daily" for r in refused)


async def test_racing_reservations_against_the_bot_budget_admit_exactly_what_fits(
    open_backend: BackendOpener, clock: Clock
) -> None:
    async with capped(open_backend, clock, budget=0.20) as store:
        results = await asyncio.gather(
            *(reserve(store, guild_id=GUILD + n, user_id=USER + n, cost=0.04) for n in range(20)),
            return_exceptions=True,
        )
    admitted = [r for r in results if not isinstance(r, BaseException)]
    assert len(admitted) == 5 and all(isinstance(r, QuotaExceeded) for r in results if r not in admitted)


async def test_a_servers_own_key_is_outside_the_operators_caps(open_backend: BackendOpener, clock: Clock) -> None:
    # A job paid by the server's own key: the bot-wide caps (the operator's money) neither refuse it nor count it;
    # the server's own limits still do.
    async with capped(open_backend, clock, daily=1, budget=0.05) as store:
        own = await reserve(store, guild_id=GUILD, images=2, cost=1.0, payer="server")
        await store.ledger.settle(own.job_id, images=2, cost=1.0)
        usage = await store.ledger.usage(GUILD, USER, ())
        assert usage.daily_used == 2 and usage.everywhere_used == 0  # the server's count, not the operator's
        paid = await reserve(store, guild_id=OTHER_GUILD, cost=0.04)  # the operator's budget is still untouched
        with pytest.raises(QuotaExceeded) as info:
            await reserve(store, guild_id=OTHER_GUILD + 1, user_id=USER + 1, cost=0.04)
        assert info.value.scope == "bot_budget" and info.value.used == pytest.approx(0.04)
        assert [r[0] for r in await rows(store, "SELECT payer FROM jobs ORDER BY id")] == ["server", "operator"]
        assert paid.job_id > own.job_id
        with pytest.raises(ValueError):
            await reserve(store, payer="someone")
