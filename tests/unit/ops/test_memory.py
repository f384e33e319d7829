"""When the bot hands freed memory back to the system (``bot/ops/memory.py``)."""

from __future__ import annotations

import threading

from bot.ops.memory import MemoryTrimmer, glibc_malloc_trim
from tests.helpers.waiting import poll


class Trims:
    """A trim function that records the threads it ran on."""

    def __init__(self) -> None:
        self.threads: list[int] = []

    def __call__(self) -> int:
        self.threads.append(threading.get_ident())
        return 1


async def test_the_last_job_of_a_rush_trims_once_off_the_loop() -> None:
    trims, told = Trims(), []
    memory = MemoryTrimmer(trims, idle_delay=0.0, every_jobs=100, on_trim=lambda: told.append(1))
    for active in (2, 1):
        memory.job_ended(active)
    memory.job_ended(0)
    await poll(lambda: memory.trims == 1, what="a trim once no job is left")
    await memory.close()
    assert len(trims.threads) == 1 and trims.threads[0] != threading.get_ident()
    assert told == [1]


async def test_a_job_started_before_the_delay_postpones_the_trim() -> None:
    trims = Trims()
    memory = MemoryTrimmer(trims, idle_delay=30.0, every_jobs=100)
    memory.job_ended(0)
    memory.job_started()
    await memory.close()
    assert trims.threads == [] and memory._pending is None


async def test_under_load_that_never_pauses_it_trims_every_so_many_jobs() -> None:
    trims = Trims()
    memory = MemoryTrimmer(trims, idle_delay=30.0, every_jobs=3)
    for _ in range(7):
        memory.job_ended(5)
        await memory.close()  # the trim started by the 3rd and the 6th job, finished
    assert memory.trims == 2


async def test_without_a_trim_function_nothing_happens() -> None:
    memory = MemoryTrimmer(None, idle_delay=0.0)
    memory.job_ended(0)
    await memory.close()
    assert memory.trims == 0 and memory._pending is None


def test_glibc_trim_is_found_and_callable_here() -> None:
    trim = glibc_malloc_trim()  # the test machines run glibc (Debian)
    assert trim is not None and trim() in (0, 1)
