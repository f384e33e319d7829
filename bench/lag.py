"""Event-loop lag of the process it runs in: how late a 10 ms sleep wakes up."""

from __future__ import annotations

import asyncio
import time


class LagMonitor:
    """Samples ``asyncio.sleep(interval)`` overshoot; ``window()`` summarises the samples since ``mark()``."""

    def __init__(self, interval: float = 0.01) -> None:
        self.interval = interval
        self.samples: list[tuple[float, float]] = []  # (monotonic time, lag seconds)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="lag-monitor")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def _run(self) -> None:
        while True:
            before = time.monotonic()
            await asyncio.sleep(self.interval)
            now = time.monotonic()
            self.samples.append((now, max(0.0, now - before - self.interval)))

    def between(self, start: float, end: float) -> list[float]:
        return [lag for t, lag in self.samples if start <= t <= end]
