"""One cap and one fair queue across processes (``bot/jobs/cluster.py``), on a real PostgreSQL.

Each "process" here is a store of its own (its own pool and instance lease) on one database.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager

from bot.jobs.cluster import ClusterScheduler
from bot.storage.postgres import PostgresBackend
from tests.helpers import pgserver
from tests.helpers.stores import lease_of, quota_on


@asynccontextmanager
async def instances(
    url: str, names: list[str], capacity: int, ttl: float = 30.0
) -> AsyncIterator[list[ClusterScheduler]]:
    async with AsyncExitStack() as stack:
        made = []
        for name in names:
            backend = await PostgresBackend.connect(url, min_size=1, max_size=5)
            stack.push_async_callback(backend.close)
            store = quota_on(backend, default_daily=None, default_monthly=None, instance_id=name)
            lease_of(store).ttl = ttl
            await lease_of(store).renew()
            sched = ClusterScheduler(store.db, capacity)
            await sched.start()
            stack.push_async_callback(sched.close)
            made.append(sched)
        yield made


async def until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def count(url: str, sql: str) -> int:
    backend = await PostgresBackend.connect(url, min_size=1, max_size=1)
    try:
        async with backend.plain() as tx:
            return int((await tx.fetchone(sql))[0])
    finally:
        await backend.close()


async def test_the_cap_holds_across_processes_and_every_stream_gets_its_turn() -> None:
    url = await pgserver.server().new_database()
    running = peak = 0
    done: list[int] = []

    async def stream(sched: ClusterScheduler, user: int) -> None:
        nonlocal running, peak
        await sched.acquire(user)
        try:
            running += 1
            peak = max(peak, running)
            await asyncio.sleep(0.05)
            running -= 1
            done.append(user)
        finally:
            sched.release()

    async with instances(url, ["a", "b"], capacity=3) as (a, b):
        await asyncio.wait_for(asyncio.gather(*(stream(a if i % 2 else b, 100 + i % 5) for i in range(24))), timeout=60)
        assert len(done) == 24 and peak <= 3
        await asyncio.sleep(0.3)  # the last releases land
        assert a.running == b.running == 0
    assert await count(url, "SELECT COUNT(*) FROM image_slots") == 0
    assert await count(url, "SELECT COUNT(*) FROM image_turns") == 0


async def test_slots_go_round_robin_between_users_whatever_process_they_wait_in() -> None:
    url = await pgserver.server().new_database()
    order: list[int] = []
    release = asyncio.Event()

    async def stream(sched: ClusterScheduler, user: int) -> None:
        await sched.acquire(user)
        order.append(user)
        await release.wait()
        release.clear()
        sched.release()

    async with instances(url, ["a", "b"], capacity=1) as (a, b):
        first = asyncio.create_task(stream(a, 1))  # takes the one slot
        await until(lambda: order == [1])
        waiting = [asyncio.create_task(stream(a, 1)) for _ in range(3)]  # user 1 queues three more in a
        await until(lambda: a.waiting == 3)
        waiting.append(asyncio.create_task(stream(b, 2)))  # then users 2 and 3, in b
        await until(lambda: b.waiting == 1)
        waiting.append(asyncio.create_task(stream(b, 3)))
        await until(lambda: b.waiting == 2)
        assert order == [1]
        for n in range(2, 7):
            release.set()  # the holder gives the slot back; the next in line gets it
            deadline = time.monotonic() + 10
            while len(order) < n:
                assert time.monotonic() < deadline, order
                await asyncio.sleep(0.02)
        release.set()
        await asyncio.wait_for(asyncio.gather(first, *waiting), 10)
    # as FairScheduler: user 1 was in line first, then 2 and 3 joined; turns alternate between users
    assert order == [1, 1, 2, 3, 1, 1]


async def test_a_dead_process_slots_come_back_when_its_lease_expires() -> None:
    url = await pgserver.server().new_database()
    async with (
        instances(url, ["dead"], capacity=2, ttl=0.5) as (dead,),
        instances(url, ["live"], capacity=2) as (live,),
    ):
        await dead.acquire(1)
        await dead.acquire(1)
        assert dead.db.lease is not None
        dead.db.lease.ttl = 30.0  # (not renewed any more: the process is "frozen")
        started = time.monotonic()
        await asyncio.wait_for(live.acquire(2), timeout=10)  # granted once the dead lease ran out
        assert time.monotonic() - started >= 0.3
        assert await count(url, "SELECT COUNT(*) FROM image_slots WHERE instance_id = 'dead'") == 0
        live.release()
