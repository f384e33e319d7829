"""Giving freed memory back to the system after a rush.

A job's images pass through buffers of megabytes (base64 text, decoded bytes, uploads) allocated on several
threads: the event loop's, the Images API's loop, the preview thread, the pools. glibc's allocator keeps what
such threads free in per-thread arenas for reuse and rarely returns it, so without a trim the bot's resident
memory stays near the peak of its busiest rush, with nothing alive in it (docs/development/benchmark.md, the
long run). ``malloc_trim(0)`` hands every arena's free pages back.

``MemoryTrimmer.job_ended`` is told each time a job ends: when no job is left it trims ``IDLE_DELAY`` seconds
later (if none started meanwhile), and under load that never pauses, after every ``EVERY_JOBS`` jobs. The
trim runs in a worker thread (it walks the heap: milliseconds, never on the event loop). Where the C library
is not glibc (musl, macOS) there is nothing to call and it does nothing.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
from collections.abc import Callable

log = logging.getLogger(__name__)

IDLE_DELAY = 0.5
EVERY_JOBS = 100


def glibc_malloc_trim() -> Callable[[], int] | None:
    """glibc's ``malloc_trim(0)``, or None where the C library has none."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return lambda: int(trim(0))


class MemoryTrimmer:
    def __init__(
        self,
        trim: Callable[[], int] | None = None,
        *,
        idle_delay: float = IDLE_DELAY,
        every_jobs: int = EVERY_JOBS,
        on_trim: Callable[[], None] | None = None,
    ) -> None:
        self._trim = trim
        self._on_trim = on_trim
        self.idle_delay = idle_delay
        self.every_jobs = every_jobs
        self.trims = 0
        self._ended = 0
        self._pending: asyncio.TimerHandle | None = None
        self._running: asyncio.Task[None] | None = None

    @classmethod
    def for_this_system(cls, on_trim: Callable[[], None] | None = None) -> MemoryTrimmer:
        """glibc's trim where there is one; ``on_trim`` is told after each (the bot's ``/metrics``)."""
        return cls(glibc_malloc_trim(), on_trim=on_trim)

    def job_ended(self, active: int) -> None:
        """A job ended and ``active`` are still open in this process."""
        if self._trim is None:
            return
        self._ended += 1
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
        if self._ended >= self.every_jobs:
            self._start()
        elif active == 0:
            self._pending = asyncio.get_running_loop().call_later(self.idle_delay, self._start)

    def job_started(self) -> None:
        """A job opened: a trim waiting for the bot to be idle waits for the next quiet moment."""
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None

    def _start(self) -> None:
        self._pending = None
        if self._running is not None and not self._running.done():
            return
        self._ended = 0
        self._running = asyncio.get_running_loop().create_task(self._run(), name="malloc-trim")

    async def _run(self) -> None:
        trim = self._trim
        assert trim is not None
        try:
            await asyncio.to_thread(trim)
            self.trims += 1
            if self._on_trim is not None:
                self._on_trim()
        except Exception:  # never worth more than a log line
            log.exception("returning freed memory to the system failed")

    async def close(self) -> None:
        if self._pending is not None:
            self._pending.cancel()
        if self._running is not None:
            await asyncio.gather(self._running, return_exceptions=True)
