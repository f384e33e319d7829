"""Jobs: reserve quota, wait fairly for a slot, stream each image; ``bot/jobs/job.py`` settles or refunds.

One job is one ``/imagine`` (or edit) with ``count`` images. Each image is its own single-image stream,
so each gets its own preview slot, and the scheduler hands out stream slots round-robin between users:
one user's batch of ten never blocks everyone else.

A job is opened with ``JobService.open`` (its money: ``bot/jobs/job.py``) and watched by its progress
publisher (``JobObserver``, built by ``bot/jobs/previews.py``); nothing here imports Discord.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from bot.images_api.client import ImagesClient
from bot.images_api.errors import ContentBlocked, ImagesAPIError, StreamError
from bot.images_api.models import ModelInfo
from bot.images_api.types import (
    CompletedImage,
    EditRequest,
    GenerateRequest,
    ImageEvent,
    InputImage,
    PartialImage,
    hashed_user,
)
from bot.jobs.job import Ending, Job
from bot.jobs.options import ImageOptions
from bot.jobs.payers import Payer, Payers
from bot.jobs.previews import Previews
from bot.jobs.retry import record_message, retrying
from bot.jobs.scheduler import FairScheduler, SlotScheduler
from bot.jobs.usage_check import plausible
from bot.jobs.whole import whole_image
from bot.ops.job_events import JobEvents
from bot.ops.memory import MemoryTrimmer
from bot.quota import Ledger, Reservation
from bot.rules import RuleStore

log = logging.getLogger(__name__)

STOPPED_JOBS_WAIT = 2.5  # seconds stopped jobs get to tell their users and refund, before being cut off


class ShuttingDown(Exception):
    """The bot is stopping: it takes no new jobs."""


class TooManyJobs(Exception):
    """The user already has the maximum number of jobs queued or running."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"at most {limit} jobs at a time")
        self.limit = limit


@dataclass(frozen=True, slots=True)
class JobSpec:
    kind: Literal["generate", "edit"]
    user_id: int
    guild_id: int | None
    channel_id: int | None
    role_ids: tuple[int, ...]
    prompt: str
    options: ImageOptions
    images: tuple[InputImage, ...] = ()  # edits: the input images, the first one is masked
    # edits whose inputs are downloaded after the reservation: how many there will be (for the estimate)
    expected_inputs: int = 0
    mask: InputImage | None = None
    parent_job_id: int | None = None
    source_image_url: str | None = None
    channel_nsfw: bool = False  # an age-restricted channel: rules limited to other channels do not apply
    markup: InputImage | None = None  # edits: a transparent layer of marks (never with ``mask``)
    model: str | None = None  # one of the configured models (None: IMAGE_MODEL)


@dataclass(slots=True)
class JobOutcome:
    job_id: int
    images: list[CompletedImage | None]
    errors: list[BaseException | None]
    cost: float = 0.0
    status: str = "done"
    stopped: str | None = None  # why the job was stopped early: "cancelled", "message deleted", "shutdown"
    stopped_by: str | None = None  # who cancelled it (a display name), for "cancelled"
    model: str | None = None  # the job's model (None: IMAGE_MODEL)

    @property
    def delivered(self) -> list[CompletedImage]:
        return [im for im in self.images if im is not None]

    @property
    def first_error(self) -> BaseException | None:
        return next((e for e in self.errors if e is not None), None)


class JobObserver(Protocol):
    """What watches a job as it moves on: the job's ``ProgressPublisher`` (``bot/jobs/previews.py``).
    Implementations must not raise."""

    def set_queued(self, position: int) -> None: ...
    def set_generating(self) -> None: ...
    def announce(self) -> None: ...
    def frame(self, slot: int, index: int, data: PartialImage) -> None: ...
    def slot_finished(self, slot: int, *, failed: bool = False) -> None: ...


@dataclass
class JobService:
    client: ImagesClient
    quota: Ledger
    model: ModelInfo
    model_name: str
    partial_images: int = 2
    max_concurrent_images: int = 8
    max_jobs_per_user: int = 3
    moderation: str | None = None
    output_compression: int | None = None
    events: JobEvents = field(default_factory=JobEvents)  # log lines and metrics of each job event
    rules: RuleStore | None = None  # the servers' prompt rules, checked before anything is reserved
    user_hash_key: bytes = b""  # the key of the hashed ``user`` sent to the API (bot/images_api/types.py)
    previews: Previews = field(default_factory=Previews)  # each job's progress publisher, its observer
    slot_scheduler: SlotScheduler | None = None  # None: the in-process FairScheduler (MAX_CONCURRENT_IMAGES)
    payers: Payers | None = None  # who pays in each server; None: the operator's key everywhere
    models: dict[str, ModelInfo] = field(default_factory=dict)  # every configured model, by name
    memory: MemoryTrimmer = field(default_factory=MemoryTrimmer)  # gives freed memory back after a rush
    scheduler: SlotScheduler = field(init=False)
    _active: dict[int, int] = field(init=False, default_factory=dict)
    _tasks: set[asyncio.Task[Any]] = field(init=False, default_factory=set)
    _running: dict[int, _RunningJob] = field(init=False, default_factory=dict)
    _job_payers: dict[int, Payer] = field(init=False, default_factory=dict)
    open_jobs: set[int] = field(init=False, default_factory=set)  # reserved here, not yet settled or refunded
    accepting: bool = field(init=False, default=True)

    def __post_init__(self) -> None:
        self.scheduler = self.slot_scheduler or FairScheduler(self.max_concurrent_images)

    def model_of(self, name: str | None) -> tuple[str, ModelInfo]:
        """(name, registry entry) of a job's model; None or a model no longer configured: IMAGE_MODEL."""
        if name and name != self.model_name and name in self.models:
            return name, self.models[name]
        return self.model_name, self.model

    def estimate(self, spec: JobSpec) -> float:
        o = spec.options
        inputs = max(len(spec.images), spec.expected_inputs) + (1 if spec.markup is not None else 0)
        return self.model_of(spec.model)[1].estimate_cost(
            o.count,
            o.size or "auto",
            o.quality or "auto",
            prompt_chars=len(spec.prompt),
            input_images=inputs,
            output_format=o.output_format,
            complexity=o.complexity,
            frames=o.frame_count,
        )

    @contextlib.asynccontextmanager
    async def open(self, spec: JobSpec) -> AsyncIterator[Job]:
        """Reserve a job and own its money until the block ends (``bot/jobs/job.py``).

        Raises a refusal before anything is reserved: ``PromptRefused`` (the refusal audited),
        ``TooManyJobs``, ``QuotaExceeded`` or, once a shutdown has begun, ``ShuttingDown``. Every way in
        (``/imagine``, Reroll, ``/edit``, replies, the menu and the Edit button) comes through here. The
        task that opens the job is tracked: a shutdown cancels it, which refunds the job.
        """
        with self.tracked():
            job = Job(self, spec, await self._reserve(spec))
            try:
                yield job
            except BaseException as exc:
                await job.end(exc)
                raise
            await job.end(None)

    async def _reserve(self, spec: JobSpec) -> Reservation:
        if not self.accepting:
            raise ShuttingDown()
        payer = await self.payer(spec.guild_id)  # ServerNotCovered: refused before anything else
        if self.rules is not None and spec.guild_id is not None:
            await self.rules.check(
                guild_id=spec.guild_id, user_id=spec.user_id, channel_id=spec.channel_id,
                prompt=spec.prompt, nsfw_channel=spec.channel_nsfw,
            )  # fmt: skip
        if self._active.get(spec.user_id, 0) >= self.max_jobs_per_user:
            raise TooManyJobs(self.max_jobs_per_user)
        self._active[spec.user_id] = self._active.get(spec.user_id, 0) + 1
        try:
            reservation = await self.quota.reserve(
                guild_id=spec.guild_id,
                channel_id=spec.channel_id,
                user_id=spec.user_id,
                role_ids=spec.role_ids,
                kind=spec.kind,
                prompt=spec.prompt,
                settings=spec.options.as_settings(),
                model=self.model_of(spec.model)[0],
                images=spec.options.count,
                cost_estimate=self.estimate(spec),
                parent_job_id=spec.parent_job_id,
                source_image_url=spec.source_image_url,
                payer=payer.kind,
            )
        except BaseException:
            self.release_user(spec.user_id)
            raise
        self._job_payers[reservation.job_id] = payer
        self.open_jobs.add(reservation.job_id)
        self.memory.job_started()
        self.events.queued(
            reservation.job_id,
            guild_id=spec.guild_id,
            user_id=spec.user_id,
            model=self.model_of(spec.model)[0],
            kind=spec.kind,
            images=spec.options.count,
            prompt=spec.prompt,
        )
        return reservation

    async def payer(self, guild_id: int | None) -> Payer:
        """Whose key pays for a job in this server; raises ``ServerNotCovered`` when nobody's does."""
        if self.payers is None:
            return Payer("operator", self.client)
        return await self.payers.payer_for(guild_id)

    @contextlib.contextmanager
    def tracked(self) -> Iterator[None]:
        """Own the current task until the block ends: ``shutdown`` cancels it (and waits for it)."""
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            yield
        finally:
            if task is not None:
                self._tasks.discard(task)

    async def stream(self, job: Job, observer: JobObserver) -> JobOutcome:
        """Stream every image of a reserved job (``Job.run``). Never raises for API errors; the job's
        owner (``open``) charges or refunds it afterwards."""
        spec = job.spec
        n = spec.options.count
        outcome = JobOutcome(job.id, [None] * n, [None] * n, model=spec.model)
        started = _Once(lambda: self._mark_running(job.id))
        tasks = [
            asyncio.create_task(
                self._run_slot(spec, slot, observer, outcome, started), name=f"job-{outcome.job_id}-{slot}"
            )
            for slot in range(n)
        ]
        running = self._running[outcome.job_id] = _RunningJob(tasks)
        try:
            await asyncio.wait(tasks)
            outcome.stopped, outcome.stopped_by = running.reason, running.by
            if not outcome.delivered:
                outcome.status = "cancelled" if outcome.stopped else _failed_status(outcome.first_error)
            return outcome
        except BaseException:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        finally:
            self._running.pop(outcome.job_id, None)

    def cancel(self, job_id: int, *, reason: str = "cancelled", by: str | None = None) -> bool:
        """Stop a job that is queued or streaming here: its waiting slots leave the queue at once, its
        streams are closed. Images already made are kept (and charged once delivered). False when the
        job is not running in this process, or has nothing left to stop (its result is on its way)."""
        running = self._running.get(job_id)
        if running is None:
            return False
        pending = [t for t in running.tasks if not t.done()]
        if not pending:
            return False
        if running.reason is None:
            running.reason, running.by = reason, by
        for t in pending:
            t.cancel()
        return True

    async def _mark_running(self, job_id: int) -> None:
        await self.quota.mark_running(job_id)
        self.events.started(job_id)

    async def _run_slot(
        self, spec: JobSpec, slot: int, observer: JobObserver, outcome: JobOutcome, started: _Once
    ) -> None:
        await self.scheduler.acquire(spec.user_id, observer.set_queued)
        try:
            # Every slot waits for the job to be marked running; if that fails, no slot calls the API.
            await started.wait()
            payer = self._job_payers.get(outcome.job_id) or await self.payer(spec.guild_id)
            observer.set_generating()
            if spec.options.preview_format:  # no frames will come (GIF, SVG): say what is happening
                observer.announce()
            async for event in self._events(spec, payer.client):
                if isinstance(event, PartialImage):
                    self.events.first_frame(outcome.job_id)
                    observer.frame(slot, event.index, event)
                    del event  # the publisher keeps the newest frame; don't pin megabytes until the next one
                else:
                    model = self.model_of(spec.model)[1]
                    image = await whole_image(event, spec.options.output_format, model)
                    outcome.images[slot] = plausible(image, spec, model, outcome.job_id)
                    break
            else:
                raise StreamError("the image service returned no image")
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # one image's failure never breaks the others
            outcome.errors[slot] = exc
            self.events.api_error(outcome.job_id, exc)
            if isinstance(exc, ImagesAPIError):
                log.warning("job %s image %d failed: %s", outcome.job_id, slot + 1, exc)
            else:
                log.exception("job %s image %d failed unexpectedly", outcome.job_id, slot + 1)
        finally:
            self.scheduler.release()
        observer.slot_finished(slot, failed=outcome.images[slot] is None)

    def _events(self, spec: JobSpec, client: ImagesClient) -> AsyncIterator[ImageEvent]:
        o = spec.options
        # GIF and SVG are never streamed and have no partial frames (the API refuses both).
        streaming = self.partial_images > 0 and not o.preview_format
        common: dict[str, Any] = {
            "model": self.model_of(spec.model)[0],
            "prompt": spec.prompt,
            "n": 1,
            "size": o.size,
            "quality": o.quality,
            "background": o.background,
            "output_format": o.output_format,
            "output_compression": self.output_compression if o.output_format in ("jpeg", "webp") else None,
            "partial_images": self.partial_images if streaming else 0,
            "stream": streaming,
            "user": hashed_user(spec.user_id, self.user_hash_key),  # user and safety_identifier; never the raw id
            "complexity": o.complexity,
            "frame_count": o.frame_count,
            "frame_duration_ms": o.frame_duration_ms,
        }
        if spec.kind == "edit":
            markup = spec.markup if spec.mask is None else None
            return client.edit(EditRequest(images=spec.images, mask=spec.mask, markup=markup, **common))
        return client.generate(GenerateRequest(moderation=self.moderation, **common))

    async def charge(self, outcome: JobOutcome, delivered: list[CompletedImage], message_id: int | None) -> None:
        """Charge what reached the user: the images ``delivered`` (and the cost of every image made), and
        remember the message that shows them (``message_id``), which the result's buttons look for."""
        if message_id is not None:  # a failure here must not turn a delivered image into a free one
            await record_message(lambda: self.quota.set_message(outcome.job_id, message_id), outcome.job_id)
        outcome.status = "done" if len(delivered) == len(outcome.images) else "partial"
        await self._record(outcome, delivered)

    async def give_back(self, job: Job, how: Ending) -> None:
        """End a job that was not settled (``bot/jobs/job.py`` decides ``how``); finishes even when the
        caller is being cancelled (the store's writes run to completion)."""
        outcome = job.outcome
        if outcome is not None:
            outcome.status = how.status
        if how.action == "unpaid" and outcome is not None:
            await self._record(outcome, [])  # refunded, but the images' cost counts against the budget
            self.events.refunded(job.id, status=how.status, reason=how.reason)
            return
        if how.status != "cancelled":
            self.events.failed(job.id, status=how.status, error=how.cause)
        refund = lambda: self.quota.refund(job.id, status=how.status, error=how.error)  # noqa: E731
        await retrying(refund, what=f"refunding job {job.id}")
        self.events.refunded(job.id, status=how.status, reason=how.reason)

    async def _record(self, outcome: JobOutcome, delivered: list[CompletedImage]) -> None:
        made = outcome.delivered
        outcome.cost = self._cost(made, self.model_of(outcome.model)[1])
        usage = [im.usage for im in made if im.usage is not None]
        tokens = {"input_tokens": sum(u.input_tokens for u in usage)}
        tokens["output_tokens"] = sum(u.output_tokens for u in usage)
        settle = lambda: self.quota.settle(outcome.job_id, images=len(delivered), cost=outcome.cost, **tokens)  # noqa: E731
        await retrying(settle, what=f"settling job {outcome.job_id}")  # a lost commit is not charged twice
        request_ids = [im.request_id for im in made if im.request_id]
        self.events.completed(
            outcome.job_id,
            status=outcome.status,
            images=len(delivered),
            cost=outcome.cost,
            request_ids=request_ids,
            **tokens,
        )

    def _cost(self, images: list[CompletedImage], model: ModelInfo) -> float:
        cost = sum(model.cost_from_usage(im.usage, im.svg_usage) for im in images if im.usage is not None)
        missing = sum(1 for im in images if im.usage is None)
        if missing:  # a gateway that sends no usage: charge the estimate for those images
            first = images[0]
            cost += (
                model.estimate_cost(1, first.size or "auto", first.quality or "auto", output_format=first.output_format)
                * missing
            )
        return cost

    def finished(self, job: Job) -> None:
        """A job's block was left (``Job.end``): forget who paid for it, free the member's place."""
        self._job_payers.pop(job.id, None)
        self.open_jobs.discard(job.id)  # still unsettled from here on: bot/jobs/retry.py's reclaim_overdue
        self.release_user(job.spec.user_id)
        self.memory.job_ended(len(self.open_jobs))

    def release_user(self, user_id: int) -> None:
        if (left := self._active.pop(user_id, 0) - 1) > 0:
            self._active[user_id] = left

    async def shutdown(self, grace: float = 0.0) -> None:
        """Stop taking jobs, give running ones ``grace`` seconds to finish, then stop the rest.

        Stopped jobs end through their normal path (refunded, their message says why) while Discord is
        still connected; whatever has not ended a few seconds later is cancelled outright (and refunded).
        """
        self.accepting = False
        if self._tasks and grace > 0:
            await asyncio.wait(list(self._tasks), timeout=grace)
        for job_id in list(self._running):
            self.cancel(job_id, reason="shutdown")
        if self._tasks:  # with SHUTDOWN_GRACE's default, grace + this stays under Docker's 10 s stop timeout
            await asyncio.wait(list(self._tasks), timeout=STOPPED_JOBS_WAIT)
        tasks = list(self._tasks)
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)


@dataclass(slots=True)
class _RunningJob:
    tasks: list[asyncio.Task[None]]
    reason: str | None = None
    by: str | None = None


class _Once:
    """An awaitable step shared by a job's slots: started by the first slot, awaited by all."""

    def __init__(self, factory: Callable[[], Awaitable[None]]) -> None:
        self._factory = factory
        self._task: asyncio.Future[None] | None = None

    async def wait(self) -> None:
        if self._task is None:
            self._task = asyncio.ensure_future(self._factory())
        await asyncio.shield(self._task)


def _failed_status(err: BaseException | None) -> str:
    return "blocked" if isinstance(err, ContentBlocked) else "failed"
