"""Waiting for an exact state instead of sleeping: ``poll`` re-checks a condition until it holds.

Prefer the fakes' own waits when the state is theirs (``fd.wait_for``, ``handle.wait_for``,
``fd.wait_for_request``): they wake on every request and gateway frame instead of polling. ``poll`` is for
everything the fakes are not told about: the bot's database, a metrics endpoint, a scheduler's counters.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

POLL_INTERVAL = 0.05


async def poll(
    predicate: Callable[[], Any | Awaitable[Any]],
    timeout: float = 10.0,  # noqa: ASYNC109
    what: str = "condition",
    interval: float = POLL_INTERVAL,
) -> Any:
    """Wait until ``predicate()`` (a plain function or a coroutine function) returns something truthy, and
    return it; an AssertionError naming ``what`` after ``timeout`` seconds. ``interval``: seconds between
    looks (shorter for a state that does not last, cheap to check)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = predicate()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if loop.time() > deadline:
            raise AssertionError(f"{what} not met after {timeout}s")
        await asyncio.sleep(interval)
