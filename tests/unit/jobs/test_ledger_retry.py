"""Settle/refund retried through a database hiccup, and a process reclaiming its own stuck jobs, on both
databases (the real stores; only the hiccup itself is staged, by a store whose next call fails)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.images_api.models import get_model
from bot.images_api.types import CompletedImage, Usage
from bot.jobs.retry import reclaim_overdue, retrying
from bot.jobs.service import JobOutcome, JobService
from bot.quota import JobStateError
from bot.quota.compose import Quota
from tests.helpers.stores import BackendOpener, Clock, clock, database, dialect, open_backend, quota_on, reserve, rows

__all__ = ["clock", "database", "dialect", "open_backend"]  # fixtures used by name


@pytest.fixture
async def owned(open_backend: BackendOpener, clock: Clock) -> AsyncIterator[Quota]:
    async with open_backend() as backend:
        yield quota_on(backend, default_daily=50, default_monthly=500, clock=clock, instance_id="me")


class Hiccup(Exception):
    pass


async def test_retrying_tries_again_and_takes_an_earlier_commit_as_done() -> None:
    calls: list[int] = []

    async def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise Hiccup("database is locked")
        return "ok"

    assert await retrying(flaky, what="settling job 1", delays=(0.0, 0.0, 0.0)) == "ok" and len(calls) == 3

    async def committed_then_lost() -> str:
        calls.append(1)
        if len(calls) == 4:
            raise Hiccup("connection dropped after COMMIT")
        raise JobStateError(1, "done", "settle")

    assert await retrying(committed_then_lost, what="settling job 1", delays=(0.0,)) is None

    async def wrong() -> None:
        raise ValueError("images must be an int >= 0")

    with pytest.raises(ValueError):
        await retrying(wrong, what="settling job 1", delays=(0.0, 0.0))


async def test_a_failed_settle_is_retried_and_charged_once(owned: Quota, clock: Clock) -> None:
    job = await reserve(owned, images=1)
    await owned.ledger.mark_running(job.job_id)
    real_settle = owned.ledger.settle
    attempts: list[int] = []

    async def settle(*args: Any, **kw: Any) -> None:
        attempts.append(1)
        await real_settle(*args, **kw)  # committed ...
        if len(attempts) == 1:
            raise Hiccup("connection reset")  # ... but the answer was lost

    owned.ledger.settle = settle  # type: ignore[method-assign]
    model = get_model("gpt-image-1")
    service = JobService(client=None, quota=owned.ledger, model=model, model_name="gpt-image-1")  # type: ignore[arg-type]
    image = CompletedImage(b"\x89PNG", size="1024x1024", quality="medium", usage=Usage(10, 4160, 4170, 10, 0))
    outcome = JobOutcome(job.job_id, [image], [None])
    await service.charge(outcome, [image], None)
    assert len(attempts) == 2  # the second found it settled: taken as done, not settled again
    [(status, done, cost)] = await rows(
        owned, "SELECT status, images_done, cost_actual FROM jobs WHERE id = ?", (job.job_id,)
    )
    assert (status, done) == ("done", 1) and cost == pytest.approx(outcome.cost)


async def test_a_process_reclaims_its_own_stuck_jobs_but_not_open_or_recent_ones(owned: Quota, clock: Clock) -> None:
    model = get_model("gpt-image-1")
    service = JobService(client=None, quota=owned.ledger, model=model, model_name="gpt-image-1")  # type: ignore[arg-type]
    stuck, open_, recent = (await reserve(owned), await reserve(owned), None)
    for j in (stuck, open_):
        await owned.ledger.mark_running(j.job_id)
    service.open_jobs.add(open_.job_id)  # still handled by this process (a long stream)
    clock.advance(seconds=1300)
    recent = await reserve(owned)
    assert await reclaim_overdue(service, idle_seconds=1200) == [stuck.job_id]
    got = {r[0]: r[1] for r in await rows(owned, "SELECT id, status FROM jobs")}
    assert got == {stuck.job_id: "crashed", open_.job_id: "running", recent.job_id: "reserved"}
