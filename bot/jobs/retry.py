"""Money survives a database hiccup: a settle or refund that fails (a lock timeout, a dropped connection) is
tried again with backoff, not left reserved until the next restart while the person already has the image.

A retry never charges twice: the ledger only settles or refunds a job that is still reserved or running, so
when an attempt did commit but its answer was lost, the next attempt finds the job finished (``JobStateError``)
and that is taken as done. What still fails after the last attempt is logged; the job's process then refunds
it once it has outlived the API timeout (``JobService.reclaim_overdue``).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

from bot.config.redaction import redact
from bot.quota import JobStateError

if TYPE_CHECKING:
    from bot.jobs.service import JobService

__all__ = ["LEDGER_RETRY_DELAYS", "reclaim_loop", "reclaim_overdue", "record_message", "retrying"]

log = logging.getLogger(__name__)

T = TypeVar("T")

# Seconds between attempts: about a minute in all, enough for a lock timeout or a database failover.
LEDGER_RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0)


async def retrying(
    op: Callable[[], Awaitable[T]], *, what: str, delays: tuple[float, ...] = LEDGER_RETRY_DELAYS
) -> T | None:
    """``await op()``, again after each delay while it fails; None when an earlier attempt had already done it."""
    for attempt in range(len(delays) + 1):
        try:
            return await op()
        except JobStateError as exc:
            if attempt == 0:
                raise
            log.info("%s: already recorded by an earlier attempt (%s)", what, exc)
            return None
        except (ValueError, TypeError):
            raise  # a wrong call, not a hiccup: trying again cannot help
        except Exception as exc:
            if attempt == len(delays):
                log.error("%s failed %d times; giving up: %s: %s", what, attempt + 1, type(exc).__name__, exc)
                raise
            delay = delays[attempt] * random.uniform(0.8, 1.2)
            log.warning(
                "%s failed (%s: %s); retrying in %.1fs", what, type(exc).__name__, redact(str(exc))[:300], delay
            )
            await asyncio.sleep(delay)
    raise AssertionError("unreachable")


async def reclaim_overdue(jobs: JobService, idle_seconds: float) -> list[int]:
    """Refund this process's own jobs that nothing here handles any more (their settle or refund failed for
    good) once they have outlived ``idle_seconds``; siblings' jobs are the leases' business."""
    owned = await jobs.quota.own_active_jobs(idle_seconds=idle_seconds)
    stuck = [job_id for job_id in owned if job_id not in jobs.open_jobs]
    for job_id in stuck:
        if await jobs.quota.refund(job_id, status="crashed", error="interrupted: outlived the API timeout"):
            jobs.events.refunded(job_id, status="crashed", reason="outlived the API timeout")
    return stuck


async def reclaim_loop(jobs: JobService, idle_seconds: float, every: float = 60.0) -> None:
    """``reclaim_overdue`` every ``every`` seconds until cancelled; a failure is logged and tried again on the
    next turn."""
    while True:
        await asyncio.sleep(every)
        try:
            await reclaim_overdue(jobs, idle_seconds)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("reclaiming this process's overdue jobs failed; trying again later")


async def record_message(op: Callable[[], Awaitable[None]], job_id: int) -> None:
    """Remember the message that shows a job's result; a failure is logged, never raised: the image has
    reached the person, and the charge must not depend on this (Reroll then looks the result up in vain)."""
    try:
        await retrying(op, what=f"recording job {job_id}'s message", delays=(0.5,))  # then the charge goes on
    except Exception as exc:
        log.warning("job %s: could not record its message (%s: %s)", job_id, type(exc).__name__, redact(str(exc)))
