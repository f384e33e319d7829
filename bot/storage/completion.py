"""``runs_to_completion``: a database operation finishes even when its caller is cancelled.

Interactions time out and tasks get cancelled; a half-done transaction must not be the result. The
operation runs in a task of its own that the caller's cancellation does not reach; the caller waits for it,
then sees its CancelledError. ``undo`` (optional) receives a result nobody will use, for operations whose
result holds something (a reservation) that must be given back.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Concatenate, ParamSpec, TypeVar

_S = TypeVar("_S")
_P = ParamSpec("_P")
_T = TypeVar("_T")

Method = Callable[Concatenate[_S, _P], Awaitable[_T]]
Wrapped = Callable[Concatenate[_S, _P], Coroutine[Any, Any, _T]]


def finishing(
    undo: Callable[[Any, Any], Awaitable[None]] | None = None,
) -> Callable[[Method[_S, _P, _T]], Wrapped[_S, _P, _T]]:
    """``runs_to_completion`` with an ``undo(self, result)`` for a result whose caller was cancelled."""

    def decorate(method: Method[_S, _P, _T]) -> Wrapped[_S, _P, _T]:
        @functools.wraps(method)
        async def wrapper(self: _S, *args: _P.args, **kwargs: _P.kwargs) -> _T:
            task = asyncio.ensure_future(method(self, *args, **kwargs))
            task.add_done_callback(_consume_exception)
            try:
                return await asyncio.shield(task)
            except asyncio.CancelledError:
                await asyncio.wait({task})
                if undo is not None and not task.cancelled() and task.exception() is None:
                    await undo(self, task.result())
                raise

        return wrapper

    return decorate


def runs_to_completion(method: Method[_S, _P, _T]) -> Wrapped[_S, _P, _T]:
    """Let a database operation finish even if its caller is cancelled, then re-raise."""
    return finishing()(method)


def _consume_exception(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()  # retrieved: no "exception was never retrieved" noise after a cancel
