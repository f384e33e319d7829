"""How a job that was not settled ends (``bot.jobs.job.ending``): the one decision of a job's money."""

from __future__ import annotations

import asyncio

from bot.images_api.errors import ContentBlocked, StreamError
from bot.images_api.types import CompletedImage
from bot.imaging.inputs import InputRejected
from bot.jobs.job import ending
from bot.jobs.service import JobOutcome


def outcome(*, made: int = 0, failed: BaseException | None = None, stopped: str | None = None) -> JobOutcome:
    images: list[CompletedImage | None] = [CompletedImage(b"png") for _ in range(made)]
    errors: list[BaseException | None] = [None] * made
    if failed is not None or not made:
        images.append(None)
        errors.append(failed)
    return JobOutcome(1, images, errors, stopped=stopped)


def test_a_cancelled_task_is_refunded_as_cancelled_or_shutdown() -> None:
    for out in (None, outcome(), outcome(made=1)):
        how = ending(out, asyncio.CancelledError(), shutting_down=False)
        assert (how.action, how.status, how.error) == ("refund", "cancelled", "cancelled")
    how = ending(outcome(made=1), asyncio.CancelledError(), shutting_down=True)
    assert (how.action, how.status, how.error) == ("refund", "cancelled", "shutdown")


def test_an_error_before_any_image_refunds_as_failed_with_its_code() -> None:
    rejected = InputRejected("damaged", what="The image", name="cut.png")
    how = ending(None, rejected, shutting_down=False)
    assert (how.action, how.status, how.error, how.reason) == ("refund", "failed", "damaged", "InputRejected")
    assert how.cause is rejected


def test_images_made_but_not_delivered_are_unpaid_not_charged() -> None:
    for exc in (None, RuntimeError("upload failed")):
        how = ending(outcome(made=2), exc, shutting_down=False)
        assert (how.action, how.status, how.reason) == ("unpaid", "failed", "undelivered")


def test_a_job_left_before_it_ran_is_refunded_as_cancelled() -> None:
    how = ending(None, None, shutting_down=False)
    assert (how.action, how.status) == ("refund", "cancelled")


def test_the_outcome_decides_when_nothing_was_raised() -> None:
    stopped = ending(outcome(stopped="message deleted"), None, shutting_down=False)
    assert (stopped.status, stopped.error, stopped.cause) == ("cancelled", "message deleted", None)
    blocked = ending(outcome(failed=ContentBlocked("no")), None, shutting_down=False)
    assert (blocked.action, blocked.status, blocked.reason) == ("refund", "blocked", "ContentBlocked")
    broken = ending(outcome(failed=StreamError("cut")), None, shutting_down=False)
    assert (broken.status, broken.error) == ("failed", "cut")
    empty = ending(outcome(), None, shutting_down=False)
    assert (empty.status, empty.error, empty.reason) == ("failed", None, None)
