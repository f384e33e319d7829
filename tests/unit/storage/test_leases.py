"""Jobs owned by a process (bot/storage/leases.py), the cross-process race, the key-value table and
PostgreSQL's migrations, on both databases (``tests/helpers/stores.py``)."""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest

from bot.quota import JobStateError, Quota, Reservation, defaults_from
from bot.storage.connect import default_instance_id, open_storage
from bot.storage.db import kv_get, kv_set, migrations, open_database
from bot.storage.postgres import PostgresBackend, to_dollar_params
from bot.storage.sqlite import Backend
from tests.helpers import pgserver
from tests.helpers.stores import (
    GUILD,
    MOD,
    USER,
    BackendOpener,
    Clock,
    clock,
    connect,
    database,
    dialect,
    lease_of,
    open_backend,
    quota_on,
    race_worker,
    reserve,
    rows,
    store,
)

__all__ = ["clock", "database", "dialect", "open_backend", "store"]  # fixtures used here


async def started(backend: Backend, clock: Clock, name: str) -> Quota:
    """A store as instance ``name`` would open it: lease registered (ttl 30 s)."""
    s = quota_on(backend, default_daily=50, default_monthly=500, clock=clock, instance_id=name)
    await lease_of(s).renew()
    return s


async def running(store: Quota) -> Reservation:
    r = await reserve(store)
    await store.ledger.mark_running(r.job_id)
    return r


async def test_recovery_refunds_only_jobs_of_expired_leases(open_backend: BackendOpener, clock: Clock) -> None:
    async with open_backend() as b1, open_backend() as b2:
        a, b = await started(b1, clock, "a"), await started(b2, clock, "b")
        ja = await running(a)
        queued = await reserve(a)  # reserved, not yet running: also a's
        jb = await running(b)
        assert (await a.ledger.get_job(ja.job_id)).owner == "a"  # type: ignore[union-attr]

        # A third process starting now must not touch a's or b's work: both leases are live.
        c = await started(b2, clock, "c")
        assert await c.ledger.recover_reservations() == []
        assert await b.ledger.recover_reservations(at_start=False) == []

        # a is killed: it stops renewing. Just before its lease runs out nothing happens...
        clock.advance(seconds=29)
        await lease_of(b).renew()
        assert await b.ledger.recover_reservations(at_start=False) == []
        # ...after it, b's periodic recovery refunds a's jobs, and only those.
        clock.advance(seconds=2)
        await lease_of(b).renew()
        await lease_of(c).renew()
        assert await b.ledger.recover_reservations(at_start=False) == [ja.job_id, queued.job_id]
        crashed = await a.ledger.get_job(ja.job_id)
        assert crashed is not None and crashed.status == "crashed" and crashed.error is not None
        assert (await b.ledger.get_job(jb.job_id)).status == "running"  # type: ignore[union-attr]
        await b.ledger.settle(jb.job_id, images=1, cost=0.04)  # the live sibling's job is charged once
        with pytest.raises(JobStateError):
            await a.ledger.settle(ja.job_id, images=1, cost=0.04)  # a late settle of a refunded job is refused
        assert (await b.ledger.usage(GUILD, USER, ())).daily_used == 1
        assert await c.ledger.recover_reservations(at_start=False) == []


async def test_restart_with_the_same_id_recovers_its_earlier_jobs_at_once(
    open_backend: BackendOpener, clock: Clock
) -> None:
    async with open_backend() as b1, open_backend() as b2:
        old, sibling = await started(b1, clock, "shards-0"), await started(b2, clock, "shards-1")
        left = await running(old)
        other = await running(sibling)
        legacy = await reserve(quota_on(b1, default_daily=50, default_monthly=500, clock=clock))  # no owner

        # "shards-0" was SIGKILLed and comes back at once: its lease is still live, but a job
        # of its own id can only be its earlier life's, and a job without owner predates leases.
        new = await started(b1, clock, "shards-0")
        assert await new.ledger.recover_reservations() == [left.job_id, legacy.job_id]
        assert (await new.ledger.get_job(other.job_id)).status == "running"  # type: ignore[union-attr]


async def test_released_lease_is_recovered_without_waiting(open_backend: BackendOpener, clock: Clock) -> None:
    async with open_backend() as b1, open_backend() as b2:
        a, b = await started(b1, clock, "a"), await started(b2, clock, "b")
        j = await reserve(a)
        await lease_of(a).release()  # a clean stop that still had a job (e.g. the shutdown grace ran out)
        assert await b.ledger.recover_reservations(at_start=False) == [j.job_id]
        assert [tuple(r) for r in await rows(b, "SELECT instance_id FROM instances")] == [("b",)]


@dataclass
class _Settings:
    database_url: str
    database_path: Path
    default_daily_limit: int | None = 5
    default_monthly_limit: int | None = 50
    bot_user_daily_limit: int | None = None
    bot_monthly_budget_usd: float | None = None
    shard_ids: tuple[int, ...] | None = None


async def test_open_storage_renews_its_lease_and_recovers_dead_siblings(
    dialect: str, database: str, open_backend: BackendOpener
) -> None:
    url = database if dialect == "postgresql" else f"sqlite:///{database}"
    settings = _Settings(url, Path(database), shard_ids=(2, 3))
    assert default_instance_id(settings.shard_ids) == "shards-2,3" and default_instance_id(None) == "main"
    async with open_storage(settings, lease_ttl=0.3) as db, open_backend() as other:
        live = Quota.on(db, defaults_from(settings))
        assert live.db.instance_id == "shards-2,3" and live.db.backend.dialect == dialect
        # A sibling process that registers a lease, reserves, and then freezes (never renews).
        dead = quota_on(other, default_daily=5, default_monthly=50, instance_id="dead")
        lease_of(dead).ttl = 0.3
        await lease_of(dead).renew()
        job = await reserve(dead)
        mine = await reserve(live, user_id=USER + 1)

        async def lease_until() -> str:
            return str(
                (await rows(live, "SELECT lease_until FROM instances WHERE instance_id = ?", ("shards-2,3",)))[0][0]
            )

        first = await lease_until()
        deadline = time.monotonic() + 5
        while (await live.ledger.get_job(job.job_id)).status != "crashed":  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "the live instance never recovered the dead one's job"
            await asyncio.sleep(0.05)
        # Renewed in the background (on a slow machine the recovery may come in the turn whose renewal
        # ``first`` already saw: wait for the next one rather than assume).
        while await lease_until() <= first:
            assert time.monotonic() < deadline, "the lease was never renewed"
            await asyncio.sleep(0.05)
        assert (await live.ledger.get_job(mine.job_id)).status == "reserved"  # type: ignore[union-attr]
    # open_storage released its lease on exit.
    async with open_storage(settings, instance_id="after") as db:
        after = Quota.on(db, defaults_from(settings))
        names = {r[0] for r in await rows(after, "SELECT instance_id FROM instances")}
        assert names == {"after", "dead"}


async def test_kv_on_both_databases(open_backend: BackendOpener) -> None:
    async with open_backend() as backend:
        assert await kv_get(backend, "command_sync:1:global") is None
        await kv_set(backend, "command_sync:1:global", "abc")
        await kv_set(backend, "command_sync:1:global", "def")
        assert await kv_get(backend, "command_sync:1:global") == "def"


async def test_kv_on_a_bare_sqlite_connection(tmp_path: Path) -> None:
    async with open_database(tmp_path / "bot.storage.db") as conn:
        await kv_set(conn, "k", "v")
        assert await kv_get(conn, "k") == "v"


# --------------------------------------------------------------------------- cross-process race


def test_100_reservations_in_4_processes_admit_exactly_the_last_5(dialect: str, database: str) -> None:
    """4 OS processes, 25 simultaneous reservations each, for the last 5 images of the day."""
    now = "2024-06-15T12:00:00+00:00"

    async def setup() -> None:
        async with connect(dialect, database) as backend:
            s = quota_on(backend, default_daily=5, default_monthly=50, clock=Clock(datetime.fromisoformat(now)))
            await s.moderation.set_user_limit(GUILD, USER, daily=7, actor_id=MOD)
            await reserve(s, images=2)  # 5 left

    asyncio.run(setup())
    start_at = time.time() + 3.0  # every process is connected and waiting by then
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        results = pool.map(race_worker, [(dialect, database, now, start_at, 25)] * 4)
    flat = [r for worker in results for r in worker]
    unexpected = [r for r in flat if r not in ("ok", "refused")]
    assert unexpected == [] and len(flat) == 100
    assert flat.count("ok") == 5

    async def count() -> int:
        async with connect(dialect, database) as backend:
            async with backend.plain() as tx:
                return len(await tx.fetchall("SELECT id FROM jobs WHERE status = 'reserved'"))

    assert asyncio.run(count()) == 6


# --------------------------------------------------------------------------- PostgreSQL specifics


async def test_postgres_migrations_apply_once_even_when_two_processes_start_together() -> None:
    url = await pgserver.server().new_database()
    one, two = await asyncio.gather(PostgresBackend.connect(url), PostgresBackend.connect(url))
    try:
        assert await one.migrate() == await two.migrate() == migrations("postgresql")[-1][0]
        async with one.plain() as tx:
            applied = await tx.fetchall("SELECT version FROM schema_migrations ORDER BY version")
            assert [r[0] for r in applied] == [v for v, _, _ in migrations("postgresql")]
            kinds = {
                r[0]: r[1]
                for r in await tx.fetchall(
                    "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'jobs'"
                )
            }
        assert kinds["guild_id"] == "bigint" and kinds["cost_actual"] == "double precision"
        assert kinds["owner"] == "text"
    finally:
        await one.close()
        await two.close()


def test_dollar_params() -> None:
    assert to_dollar_params("SELECT ? + ?, 'x' WHERE a = ?") == "SELECT $1 + $2, 'x' WHERE a = $3"


def test_pg_server_found() -> None:
    assert pgserver.find_bin_dir() is not None, "PostgreSQL must be installed for the tests (see .ci/run)"


async def test_a_new_process_waits_for_a_crashed_predecessors_lease_and_refuses_a_live_twin(
    open_backend: BackendOpener,
) -> None:
    from bot.storage.leases import InstanceInUse, stop_lease

    async with open_backend() as b1, open_backend() as b2:
        old = quota_on(b1, default_daily=5, default_monthly=50, instance_id="shards-0")
        lease_of(old).ttl = 0.6
        await lease_of(old).renew()  # ... and then the process is killed: nobody renews it
        new = quota_on(b2, default_daily=5, default_monthly=50, instance_id="shards-0")
        started = time.monotonic()
        await asyncio.wait_for(lease_of(new).wait_for_predecessor(poll=0.05), 5)
        assert time.monotonic() - started > 0.3  # it waited for the lease to run out
        other = quota_on(b2, default_daily=5, default_monthly=50, instance_id="other")
        await asyncio.wait_for(lease_of(other).wait_for_predecessor(), 1)  # an id nobody holds: no wait

        # A twin that is alive (renewing) is refused, not waited for.
        await lease_of(old).renew()
        renewing = asyncio.create_task(lease_of(old).run())
        try:
            with pytest.raises(InstanceInUse, match="give every process its own SHARD_IDS"):
                await asyncio.wait_for(lease_of(new).wait_for_predecessor(poll=0.05), 5)
        finally:
            await stop_lease(renewing)
