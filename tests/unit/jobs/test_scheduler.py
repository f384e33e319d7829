"""The fair scheduler: bounded concurrency, round-robin between users, cancellation-safe."""

from __future__ import annotations

import asyncio

from bot.jobs.scheduler import FairScheduler
from tests.helpers.waiting import poll


async def test_capacity_and_round_robin_between_users() -> None:
    sched = FairScheduler(capacity=1)
    order: list[str] = []
    gate = asyncio.Event()

    async def work(user: int, tag: str) -> None:
        await sched.acquire(user)
        order.append(tag)
        await gate.wait()
        sched.release()

    first = asyncio.create_task(work(1, "a1"))
    await asyncio.sleep(0)
    tasks = [asyncio.create_task(work(1, f"a{i}")) for i in (2, 3, 4)]
    await asyncio.sleep(0)
    tasks.append(asyncio.create_task(work(2, "b1")))
    await poll(lambda: sched.waiting == 4)
    assert order == ["a1"] and sched.running == 1
    gate.set()
    await asyncio.gather(first, *tasks)
    # user 2's single job is served right after the running one, not after user 1's whole batch
    assert order[:3] == ["a1", "a2", "b1"]
    assert sched.running == 0


async def test_positions_and_cancellation() -> None:
    sched = FairScheduler(capacity=1)
    await sched.acquire(1)
    seen: list[int] = []
    waiter = asyncio.create_task(sched.acquire(2, seen.append))
    other = asyncio.create_task(sched.acquire(3))
    await poll(lambda: sched.waiting == 2)
    assert seen == [1]
    waiter.cancel()
    await asyncio.gather(waiter, return_exceptions=True)
    sched.release()
    await asyncio.wait_for(other, 1)  # the cancelled waiter did not swallow the slot
    assert sched.running == 1
    sched.release()
    assert sched.running == 0
