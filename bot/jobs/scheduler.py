"""The fair queue of image streams: at most ``capacity`` at once, waiting ones served round-robin by user.

One user's batch of ten never blocks everyone else: each image is its own stream, and the next free slot
goes to the next user in turn. Used by ``bot/jobs.py``; no Discord, no I/O.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any, Protocol


class SlotScheduler(Protocol):
    """What ``bot/jobs.py`` needs of a scheduler: ``FairScheduler`` in one process, or
    ``bot/jobs/cluster.py``'s ``ClusterScheduler`` across the processes sharing a PostgreSQL database."""

    running: int

    async def acquire(self, user_id: int, on_wait: Any = None) -> None: ...
    def release(self) -> None: ...
    @property
    def waiting(self) -> int: ...


class FairScheduler:
    """At most ``capacity`` image streams at once; waiting streams are served round-robin by user."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.running = 0
        self._waiting: dict[int, deque[asyncio.Future[None]]] = {}
        self._turns: deque[int] = deque()

    def position(self, user_id: int, fut: asyncio.Future[None]) -> int:
        """1-based place in line of ``fut`` (approximate for round-robin: streams served before it)."""
        mine = self._waiting.get(user_id, deque())
        try:
            depth = list(mine).index(fut)
        except ValueError:
            return 0
        ahead = depth
        for other, queue in self._waiting.items():
            if other != user_id:
                ahead += min(len(queue), depth + 1)
        return ahead + 1

    async def acquire(self, user_id: int, on_wait: Any = None) -> None:
        if self.running < self.capacity and not self._turns:
            self.running += 1
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue = self._waiting.setdefault(user_id, deque())
        queue.append(fut)
        if user_id not in self._turns:
            self._turns.append(user_id)
        try:
            while True:
                if on_wait is not None:
                    on_wait(self.position(user_id, fut))
                try:
                    await asyncio.wait_for(asyncio.shield(fut), timeout=2.0)
                    return
                except TimeoutError:
                    continue
        except BaseException:
            if fut.done() and not fut.cancelled():
                self.release()  # we were handed a slot but will not use it
            else:
                fut.cancel()
                self._forget(user_id, fut)
            raise

    def release(self) -> None:
        self.running -= 1
        while self._turns and self.running < self.capacity:
            user = self._turns.popleft()
            queue = self._waiting.get(user)
            if not queue:
                self._waiting.pop(user, None)
                continue
            fut = queue.popleft()
            if queue:
                self._turns.append(user)
            else:
                self._waiting.pop(user, None)
            if not fut.done():
                self.running += 1
                fut.set_result(None)

    @property
    def waiting(self) -> int:
        """Streams waiting for a slot."""
        return sum(len(q) for q in self._waiting.values())

    def _forget(self, user_id: int, fut: asyncio.Future[None]) -> None:
        queue = self._waiting.get(user_id)
        if queue and fut in queue:
            queue.remove(fut)
        if not queue:
            self._waiting.pop(user_id, None)
            if user_id in self._turns:
                self._turns.remove(user_id)
