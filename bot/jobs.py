"""Jobs: reserve quota, wait fairly for a slot, stream each image, settle or refund.

One job is one ``/imagine`` (or edit) with ``count`` images. Each image is its own single-image stream,
so each gets its own preview slot, and the scheduler hands out stream slots round-robin between users:
one user's batch of ten never blocks everyone else.

The Discord side implements ``JobObserver``; nothing here imports Discord.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from bot.images.client import ImagesClient
from bot.images.errors import ContentBlocked, ImagesAPIError, StreamError
from bot.images.models import ModelInfo
from bot.images.types import (
    CompletedImage,
    EditRequest,
    GenerateRequest,
    ImageEvent,
    InputImage,
    PartialImage,
    hashed_user,
)
from bot.quota import QuotaStore, Reservation

log = logging.getLogger(__name__)


class TooManyJobs(Exception):
    """The user already has the maximum number of jobs queued or running."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"at most {limit} jobs at a time")
        self.limit = limit


@dataclass(frozen=True, slots=True)
class ImageOptions:
    """Validated options, as sent to the API (None = let the API decide)."""

    size: str | None = None
    quality: str | None = None
    background: str | None = None
    output_format: str | None = None
    count: int = 1

    def as_settings(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "quality": self.quality,
            "background": self.background,
            "format": self.output_format,
            "count": self.count,
        }

    @classmethod
    def from_settings(cls, d: dict[str, Any]) -> ImageOptions:
        return cls(d.get("size"), d.get("quality"), d.get("background"), d.get("format"), int(d.get("count") or 1))


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
    mask: InputImage | None = None
    parent_job_id: int | None = None
    source_image_url: str | None = None


@dataclass(slots=True)
class JobOutcome:
    job_id: int
    images: list[CompletedImage | None]
    errors: list[BaseException | None]
    cost: float = 0.0
    status: str = "done"

    @property
    def delivered(self) -> list[CompletedImage]:
        return [im for im in self.images if im is not None]

    @property
    def first_error(self) -> BaseException | None:
        return next((e for e in self.errors if e is not None), None)


class JobObserver(Protocol):
    """What the Discord side does as a job moves on. Implementations must not raise."""

    def queued(self, position: int) -> None: ...
    def generating(self) -> None: ...
    def partial(self, slot: int, frame: PartialImage) -> None: ...
    def slot_done(self, slot: int, image: CompletedImage | None) -> None: ...


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

    def _forget(self, user_id: int, fut: asyncio.Future[None]) -> None:
        queue = self._waiting.get(user_id)
        if queue and fut in queue:
            queue.remove(fut)
        if not queue:
            self._waiting.pop(user_id, None)
            if user_id in self._turns:
                self._turns.remove(user_id)


@dataclass
class JobService:
    client: ImagesClient
    quota: QuotaStore
    model: ModelInfo
    model_name: str
    partial_images: int = 2
    max_concurrent_images: int = 8
    max_jobs_per_user: int = 3
    moderation: str | None = None
    output_compression: int | None = None
    scheduler: FairScheduler = field(init=False)
    _active: dict[int, int] = field(init=False, default_factory=dict)
    _tasks: set[asyncio.Task[Any]] = field(init=False, default_factory=set)

    def __post_init__(self) -> None:
        self.scheduler = FairScheduler(self.max_concurrent_images)

    def estimate(self, spec: JobSpec) -> float:
        o = spec.options
        return self.model.estimate_cost(
            o.count, o.size or "auto", o.quality or "auto", prompt_chars=len(spec.prompt), input_images=len(spec.images)
        )

    async def reserve(self, spec: JobSpec) -> Reservation:
        """Check the per-user job limit and reserve quota. Raises ``TooManyJobs`` or ``QuotaExceeded``."""
        if self._active.get(spec.user_id, 0) >= self.max_jobs_per_user:
            raise TooManyJobs(self.max_jobs_per_user)
        self._active[spec.user_id] = self._active.get(spec.user_id, 0) + 1
        try:
            return await self.quota.reserve(
                guild_id=spec.guild_id,
                channel_id=spec.channel_id,
                user_id=spec.user_id,
                role_ids=spec.role_ids,
                kind=spec.kind,
                prompt=spec.prompt,
                settings=spec.options.as_settings(),
                model=self.model_name,
                images=spec.options.count,
                cost_estimate=self.estimate(spec),
                parent_job_id=spec.parent_job_id,
                source_image_url=spec.source_image_url,
            )
        except BaseException:
            self._release_user(spec.user_id)
            raise

    async def abandon(self, reservation: Reservation, spec: JobSpec, *, error: str) -> None:
        """Give back a reservation that will never run (e.g. Discord lost the interaction)."""
        try:
            await self.quota.refund(reservation.job_id, status="cancelled", error=error)
        finally:
            self._release_user(spec.user_id)

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

    async def run(self, reservation: Reservation, spec: JobSpec, observer: JobObserver) -> JobOutcome:
        """Stream every image of a reserved job, then settle or refund. Never raises for API errors."""
        n = spec.options.count
        outcome = JobOutcome(reservation.job_id, [None] * n, [None] * n)
        try:
            await asyncio.gather(*(self._run_slot(spec, slot, observer, outcome) for slot in range(n)))
            await self._settle(outcome)
            return outcome
        except BaseException:
            await asyncio.shield(self.quota.refund(reservation.job_id, status="cancelled", error="cancelled"))
            raise
        finally:
            self._release_user(spec.user_id)

    async def _run_slot(self, spec: JobSpec, slot: int, observer: JobObserver, outcome: JobOutcome) -> None:
        await self.scheduler.acquire(spec.user_id, observer.queued)
        try:
            observer.generating()
            if slot == 0:
                await self.quota.mark_running(outcome.job_id)
            async for event in self._events(spec):
                if isinstance(event, PartialImage):
                    observer.partial(slot, event)
                    del event  # the publisher keeps the newest frame; don't pin megabytes until the next one
                else:
                    outcome.images[slot] = event
                    break
            else:
                raise StreamError("the image service returned no image")
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # one image's failure never breaks the others
            outcome.errors[slot] = exc
            if isinstance(exc, ImagesAPIError):
                log.warning("job %s image %d failed: %s", outcome.job_id, slot + 1, exc)
            else:
                log.exception("job %s image %d failed unexpectedly", outcome.job_id, slot + 1)
        finally:
            self.scheduler.release()
        observer.slot_done(slot, outcome.images[slot])

    def _events(self, spec: JobSpec) -> AsyncIterator[ImageEvent]:
        o = spec.options
        common: dict[str, Any] = {
            "model": self.model_name,
            "prompt": spec.prompt,
            "n": 1,
            "size": o.size,
            "quality": o.quality,
            "background": o.background,
            "output_format": o.output_format,
            "output_compression": self.output_compression if o.output_format in ("jpeg", "webp") else None,
            "partial_images": self.partial_images,
            "stream": self.partial_images > 0,
            "user": hashed_user(spec.user_id),  # sent as user and safety_identifier; never the raw id
        }
        if spec.kind == "edit":
            return self.client.edit(EditRequest(images=spec.images, mask=spec.mask, **common))
        return self.client.generate(GenerateRequest(moderation=self.moderation, **common))

    async def _settle(self, outcome: JobOutcome) -> None:
        delivered = outcome.delivered
        if not delivered:
            err = outcome.first_error
            outcome.status = "blocked" if isinstance(err, ContentBlocked) else "failed"
            await self.quota.refund(outcome.job_id, status=outcome.status, error=_short(err))
            return
        usage = [im.usage for im in delivered]
        outcome.cost = sum(self.model.cost_from_usage(u) for u in usage if u is not None)
        missing = sum(1 for u in usage if u is None)
        if missing:  # a gateway that sends no usage: charge the estimate for those images
            est = self.model.estimate_cost(1, delivered[0].size or "auto", delivered[0].quality or "auto")
            outcome.cost += est * missing
        outcome.status = "done" if len(delivered) == len(outcome.images) else "partial"
        await self.quota.settle(
            outcome.job_id,
            images=len(delivered),
            cost=outcome.cost,
            input_tokens=sum(u.input_tokens for u in usage if u is not None),
            output_tokens=sum(u.output_tokens for u in usage if u is not None),
        )

    def _release_user(self, user_id: int) -> None:
        left = self._active.get(user_id, 0) - 1
        if left > 0:
            self._active[user_id] = left
        else:
            self._active.pop(user_id, None)

    async def shutdown(self) -> None:
        """Cancel running jobs (their reservations are refunded as cancelled)."""
        tasks = list(self._tasks)
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)


def _short(err: BaseException | None) -> str | None:
    if err is None:
        return None
    text = str(err) or type(err).__name__
    return text[:500]
