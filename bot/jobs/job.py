"""One job's money, in one place: reserved when the job is opened, charged once by ``settle``, and
refunded when the job is left without a settle, for the reason that ended it.

``JobService.open(spec)`` is the only way to start a job::

    async with jobs.open(spec) as job:     # rules, per-user limit, one reservation (or a refusal)
        ...                                # anything that can still refuse (inputs) refunds by raising
        outcome = await job.run(send)      # stream every image; ``send`` shows the progress
        ...                                # deliver
        await job.settle(delivered, message_id)  # charge what reached the user, once

Leaving the block without ``settle`` gives the images back; ``ending`` decides how, from what happened:
an exception, a cancellation (a shutdown included), or the job's own outcome (the API failed, the job was
stopped, the result never reached Discord). Images that were made but not delivered still count against
the server's budget: the image service was paid for them.
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from bot import CodedError
from bot.images_api.errors import ContentBlocked

if TYPE_CHECKING:
    from bot.images_api.types import CompletedImage, InputImage
    from bot.jobs.progress import Sender
    from bot.jobs.service import JobOutcome, JobService, JobSpec
    from bot.quota import Reservation


@dataclass(frozen=True, slots=True)
class Ending:
    """How a job left without a settle ends: ``refund`` (status, error for the ledger) or ``unpaid``
    (images were made but not delivered: recorded as failed with their cost, nothing charged to the
    user). ``cause``: the error that failed the job, for its ``failed`` log line and metrics."""

    action: Literal["refund", "unpaid"]
    status: str
    error: str | None
    reason: str | None  # for the ``refunded`` log line
    cause: BaseException | None = None


def ending(outcome: JobOutcome | None, exc: BaseException | None, *, shutting_down: bool) -> Ending:
    """What to do with a job that was not settled. Pure: the decision, not the writes."""
    if isinstance(exc, asyncio.CancelledError):
        why = "shutdown" if shutting_down else "cancelled"
        return Ending("refund", "cancelled", why, why)
    made = outcome is not None and bool(outcome.delivered)
    if exc is not None:
        if made:
            return Ending("unpaid", "failed", None, "undelivered")
        return Ending("refund", "failed", describe(exc), type(exc).__name__, exc)
    if outcome is None:
        return Ending("refund", "cancelled", "not started", "not started")
    if made:
        return Ending("unpaid", "failed", None, "undelivered")
    if outcome.stopped:
        return Ending("refund", "cancelled", outcome.stopped, outcome.stopped)
    err = outcome.first_error
    status = "blocked" if isinstance(err, ContentBlocked) else "failed"
    return Ending("refund", status, describe(err), type(err).__name__ if err else None, err)


def describe(err: BaseException | None) -> str | None:
    """The ledger's short note of an error (never shown to users)."""
    if err is None:
        return None
    text = err.code if isinstance(err, CodedError) else (str(err) or type(err).__name__)
    return text[:500]


class Job:
    """A reserved job (made by ``JobService.open``): run it, settle it once; the service ends it."""

    def __init__(self, service: JobService, spec: JobSpec, reservation: Reservation) -> None:
        self.service = service
        self.spec = spec
        self.reservation = reservation
        self.outcome: JobOutcome | None = None
        self.ended = False  # charged, or given back

    @property
    def id(self) -> int:
        return self.reservation.job_id

    def use_inputs(
        self, images: tuple[InputImage, ...], mask: InputImage | None, markup: InputImage | None = None
    ) -> None:
        """An edit's inputs, once downloaded and checked (after the reservation); a markup layer is never
        sent together with a mask."""
        self.spec = dataclasses.replace(self.spec, images=images, mask=mask, markup=markup if mask is None else None)

    async def run(self, send: Sender) -> JobOutcome:
        """Stream every image, showing progress through ``send`` (the job's message); never raises for API
        errors (they are in the outcome). A job that made no image is given back at once, before the user is
        told, so ``/quota me`` agrees with the message."""
        publisher = self.service.previews.publisher(send, self.spec.options.count)
        publisher.start()
        try:
            self.outcome = await self.service.stream(self, publisher)
        finally:
            await publisher.close()  # pending previews are dropped: the result wins
        if not self.outcome.delivered:
            await self._give_back(None)
        return self.outcome

    async def settle(self, delivered: list[CompletedImage], message_id: int | None = None) -> None:
        """Charge the images that reached the user (at least one), shown by ``message_id``; the job is then
        done."""
        if self.outcome is None or not delivered:
            raise ValueError("settle takes the images delivered by a job that ran")
        if self.ended:
            raise RuntimeError(f"job {self.id} has already ended")
        self.ended = True
        await self.service.charge(self.outcome, delivered, message_id)

    async def end(self, exc: BaseException | None) -> None:
        """Called once when the job's block is left: refund unless settled."""
        try:
            await self._give_back(exc)
        finally:
            self.service.finished(self)

    async def _give_back(self, exc: BaseException | None) -> None:
        if self.ended:
            return
        self.ended = True
        await self.service.give_back(self, ending(self.outcome, exc, shutting_down=not self.service.accepting))
