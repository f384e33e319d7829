"""Paced progress updates for one job's message: the newest frame wins, and is never left unshown.

Two parts:

* ``Pacer`` decides, from the job's state and the time, what to do next: ``Send`` an edit now, ``Wait``
  until a moment, or ``Drop`` (nothing worth an edit: everything shown, or every slot finished, when the
  result is about to replace the message). It is pure (no asyncio, no clock of its own) and unit-tested
  with a fake clock.
* ``ProgressPublisher`` is the job's observer (``bot.jobs.service.JobObserver``): it keeps the newest
  frame of each slot, asks the pacer, renders and sends.

The rules:

* edits are at least ``min_interval`` apart, so the bot stays inside Discord's limits and never waits
  behind a 429;
* a status-only change (queued → generating) waits ``status_grace`` first: if the first frame arrives in
  that window the two go out as one edit;
* a frame is skipped only once a newer frame of its slot, or its result, has actually arrived: the newest
  frame is always shown, at the latest one interval after the previous edit, however soon after its
  predecessor it came and however long the result takes;
* frames are rendered (decoded and shrunk into a small JPEG) only when an edit is about to go out, so a
  frame superseded before then is never decoded; a render still queued when a newer frame of its slot
  arrives is cancelled and the newer one rendered instead, while a render whose decode has begun is
  finished and sent, the newer frame following after the interval;
* while the event loop runs late (a rush, see ``LoopLag``), no render starts: the frame waits, still
  encoded, and is rendered when the loop is back on time unless a newer frame or the result replaced it;
* ``close()`` drops whatever has not been sent, a preview being rendered included: the final result never
  waits behind preview work (only behind an edit already on the wire, so it lands last);
* a frame's raw bytes are released as soon as it is rendered (megabytes per job under load).

No Discord imports: ``send`` is any coroutine that applies a ``ProgressView`` to a message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

# Loop lag (seconds) above which no preview render starts: the bot is behind (a rush), a frame rendered now
# would compete with results and acknowledgements. The frame stays encoded and waits (never dropped for it).
SHED_LAG = 0.1
SHED_RECHECK = 0.1  # seconds between looks at the loop's lag while shedding


@dataclass(frozen=True, slots=True)
class SlotPreview:
    slot: int
    frame: int  # 1-based frame number shown to users
    total: int  # partial frames expected for this slot
    jpeg: bytes | None  # the rendered preview; None when the slot has no frame yet
    done: bool = False
    failed: bool = False


@dataclass(frozen=True, slots=True)
class ProgressView:
    status: str  # "queued" | "generating"
    queue_position: int | None
    started_at: float  # wall-clock epoch seconds when the job was submitted
    slots: tuple[SlotPreview, ...]
    new_frame: bool  # does this edit carry a frame not shown before?


# --- the pure pacer -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Send:
    """Render the frames not shown yet and send an edit now."""


@dataclass(frozen=True, slots=True)
class Wait:
    """Nothing before ``until`` (the interval, the status grace, or a late loop); then decide again."""

    until: float


@dataclass(frozen=True, slots=True)
class Drop:
    """No edit: nothing new to show, or every slot has its result (which replaces the message)."""


Decision = Send | Wait | Drop


class Pacer:
    """When the next edit goes out. Frame numbers are 1-based; ``now`` is any monotonic clock's reading."""

    def __init__(
        self,
        slots: int,
        *,
        min_interval: float,
        status_grace: float,
        created: float,
        shed_lag: float | None = SHED_LAG,
    ) -> None:
        self.min_interval, self.status_grace, self.shed_lag = min_interval, status_grace, shed_lag
        self.created = created
        self.newest = [0] * slots  # the newest frame that arrived, per slot
        self.shown = [0] * slots  # the frame the message shows, per slot
        self.done = [False] * slots
        self.status_dirty = False
        self.announced = False  # a job without frames: its status goes out at once, not after the grace
        self.last_sent: float | None = None

    def frame(self, slot: int, number: int) -> bool:
        """Frame ``number`` of ``slot`` arrived. False (ignore it) if it is late, a duplicate, or the slot
        has its result already."""
        if self.done[slot] or number <= self.newest[slot]:
            return False
        self.newest[slot] = number
        return True

    def status(self) -> None:
        self.status_dirty = True

    def announce(self) -> None:
        """No frame will come (an animated GIF, an SVG): send the status now rather than wait for one."""
        self.status_dirty = self.announced = True

    def finished(self, slot: int) -> None:
        self.done[slot] = True

    def sent(self, now: float, shown: list[int]) -> None:
        """An edit showing ``shown`` (frame per slot) reached Discord at ``now``."""
        self.last_sent = now
        self.shown = [max(a, b) for a, b in zip(self.shown, shown, strict=True)]
        self.status_dirty = False

    def passed_over(self, slot: int, number: int) -> None:
        """Frame ``number`` of ``slot`` cannot be shown (it would not render): wait for the next one."""
        self.shown[slot] = max(self.shown[slot], number)

    def unshown(self) -> list[int]:
        """The slots whose newest frame is not on the message yet (and that have no result)."""
        return [i for i, n in enumerate(self.newest) if not self.done[i] and n > self.shown[i]]

    @property
    def all_done(self) -> bool:
        return all(self.done)

    def decide(self, now: float, lag: float = 0.0) -> Decision:
        if self.all_done:
            return Drop()
        frames = bool(self.unshown())
        if not frames and not self.status_dirty:
            return Drop()
        if self.last_sent is not None:
            earliest = self.last_sent + self.min_interval
        elif frames or self.announced:
            earliest = now  # the first frame goes out at once, with any status change
        else:
            earliest = self.created + self.status_grace
        if now < earliest:
            return Wait(earliest)
        if frames and self.shed_lag is not None and lag > self.shed_lag:
            return Wait(now + SHED_RECHECK)
        return Send()


# --- loop lag -----------------------------------------------------------------------------------


class LoopLag:
    """How late this event loop runs a short timer: the bot's own measure of being behind.

    One task samples every ``interval``; ``lag`` is the latest lateness, decaying by half per sample, so
    one late timer does not count for long; ``on_sample`` (the bot's metrics) sees every lateness measured.
    Built and started once by the composition root."""

    def __init__(self, interval: float = 0.025, on_sample: Callable[[float], None] | None = None) -> None:
        self.interval = interval
        self.on_sample = on_sample
        self.lag = 0.0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="loop-lag")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            start = loop.time()
            await asyncio.sleep(self.interval)
            late = max(0.0, loop.time() - start - self.interval)
            self.lag = max(late, self.lag / 2)
            if self.on_sample is not None:
                self.on_sample(late)


# --- the publisher ------------------------------------------------------------------------------


class _Encoded:
    """An encoded frame as handed to the renderer: records (in the render thread) that its decode began,
    so that a newer frame does not cancel a render whose cost is already being paid."""

    __slots__ = ("began", "frame")

    def __init__(self, frame: Any) -> None:
        self.frame = frame
        self.began = False

    def decode(self) -> bytes:
        self.began = True
        data: bytes = self.frame.decode()
        return data


@dataclass(slots=True)
class _Slot:
    raw: Frame | None = None  # the newest frame, as handed in (still encoded, if the caller kept it so)
    jpeg: bytes | None = None
    failed: bool = False
    rendering: asyncio.Future[bytes] | None = None
    tracked: _Encoded | None = None  # the frame being rendered, if it is an encoded one


Frame = Any  # opaque here: raw bytes, or a frame still base64-encoded (``PartialImage``); only ``render`` looks
Renderer = Callable[[Frame, bool], Awaitable[bytes]]  # (frame, urgent: the job shows no frame yet) -> JPEG
Sender = Callable[[ProgressView], Awaitable[None]]


@dataclass
class ProgressPublisher:
    """The job's observer (``bot.jobs.service.JobObserver``): ``set_queued``, ``set_generating``, ``frame`` and
    ``slot_finished`` are cheap and synchronous; ``start()`` and ``close()`` bracket the job."""

    send: Sender
    render: Renderer
    slots: int = 1
    frames_per_slot: int = 2
    min_interval: float = 1.0
    status_grace: float = 0.7
    clock: Callable[[], float] = time.monotonic
    started_at: float = field(default_factory=time.time)
    lag: LoopLag | None = None  # None: render whatever the loop's lag

    _pacer: Pacer = field(init=False)
    _state: list[_Slot] = field(init=False)
    _status: str = field(init=False, default="generating")
    _position: int | None = field(init=False, default=None)
    _dirty: asyncio.Event = field(init=False, default_factory=asyncio.Event)
    _closed: bool = field(init=False, default=False)
    _sending: bool = field(init=False, default=False)
    _task: asyncio.Task[None] | None = field(init=False, default=None)
    sent_edits: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self._state = [_Slot() for _ in range(self.slots)]
        self._pacer = Pacer(
            self.slots,
            min_interval=self.min_interval,
            status_grace=self.status_grace,
            created=self.clock(),
            shed_lag=SHED_LAG if self.lag is not None else None,
        )

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="progress-publisher")

    # --- JobObserver ------------------------------------------------------------------------------

    def set_queued(self, position: int) -> None:
        if self._status != "queued" or self._position != position:
            self._status, self._position = "queued", position
            self._pacer.status()
            self._dirty.set()

    def set_generating(self) -> None:
        if self._status != "generating":
            self._status, self._position = "generating", None
            self._pacer.status()
            self._dirty.set()

    def announce(self) -> None:
        """Send the status even though it did not change: a job without partial frames (an animated
        GIF, an SVG) says what it is doing instead of leaving the message silent until the result."""
        self._pacer.announce()
        self._dirty.set()

    def frame(self, slot: int, index: int, data: Frame) -> None:
        """A partial frame arrived (``index`` is the API's 0-based partial index). It is kept as given (an
        encoded frame stays encoded) until it is rendered; a newer frame replaces it unrendered."""
        if not self._pacer.frame(slot, index + 1):
            return  # late or duplicate: never go backwards
        s = self._state[slot]
        s.raw = data
        if s.rendering is not None and not (s.tracked is not None and s.tracked.began):
            s.rendering.cancel()  # the older frame's render has not begun: drop it undecoded, render this one
        self._dirty.set()

    def slot_finished(self, slot: int, *, failed: bool = False) -> None:
        s = self._state[slot]
        self._pacer.finished(slot)
        s.failed, s.raw = failed, None
        if s.rendering is not None:
            s.rendering.cancel()  # its preview would never be shown: if it is still queued, it is never decoded
        self._dirty.set()

    async def close(self) -> None:
        """Stop publishing; an edit already on the wire is awaited, anything else (waiting for the
        interval, or a preview being rendered) is dropped at once."""
        self._closed = True
        self._dirty.set()
        task = self._task
        if task is None or task.done():
            return
        if not self._sending:
            task.cancel()  # a render in a queue or a thread is abandoned, not waited for
        with contextlib.suppress(Exception, asyncio.CancelledError):  # its own failures are logged in _run
            await asyncio.wait([task])

    # --- the publishing loop ---------------------------------------------------------------------

    async def _run(self) -> None:
        try:
            while not self._closed:
                self._dirty.clear()  # cleared before deciding: a change during the wait below wakes it
                decision = self._pacer.decide(self.clock(), self.lag.lag if self.lag is not None else 0.0)
                if isinstance(decision, Drop):
                    await self._dirty.wait()
                elif isinstance(decision, Wait):
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._dirty.wait(), max(0.0, decision.until - self.clock()))
                else:
                    await self._publish()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("progress update failed; further previews for this job are skipped")

    async def _publish(self) -> None:
        shown, new_frame = await self._render()
        if self._closed or self._pacer.all_done:
            return
        if self._pacer.unshown() and not new_frame:
            return  # the render was superseded by a newer frame: render that one first
        view = ProgressView(self._status, self._position, self.started_at, self._slots(shown), new_frame)
        self._sending = True
        try:
            await self.send(view)
        finally:
            self._sending = False
        self.sent_edits += 1
        self._pacer.sent(self.clock(), shown)

    async def _render(self) -> tuple[list[int], bool]:
        """Render each slot's unshown frame. Returns the frame each slot will show, and whether any is new."""
        shown = list(self._pacer.shown)
        pending = [(i, self._state[i], self._state[i].raw, self._pacer.newest[i]) for i in self._pacer.unshown()]
        pending = [p for p in pending if p[2] is not None]
        if not pending:
            return shown, False
        urgent = not any(shown)  # a job that shows nothing yet goes first in the preview queue
        renders: list[asyncio.Future[bytes]] = []
        for _, s, raw, _ in pending:
            s.tracked = None if isinstance(raw, bytes | bytearray | memoryview) else _Encoded(raw)
            s.rendering = asyncio.ensure_future(self.render(raw if s.tracked is None else s.tracked, urgent))
            renders.append(s.rendering)
        try:
            rendered = await asyncio.gather(*renders, return_exceptions=True)
        finally:
            for _, s, _, _ in pending:
                s.rendering, s.tracked = None, None
        new = False
        for (i, s, _, number), jpeg in zip(pending, rendered, strict=True):
            if isinstance(jpeg, asyncio.CancelledError):
                continue  # superseded by a newer frame, or the result, while queued
            if isinstance(jpeg, BaseException):
                log.warning("could not render a preview frame: %s", jpeg)
                if self._pacer.newest[i] == number:
                    s.raw = None  # never retried; a newer frame (or the result) takes its place
                    self._pacer.passed_over(i, number)
                continue
            if not self._pacer.done[i]:
                s.jpeg, shown[i], new = jpeg, number, True
                if self._pacer.newest[i] == number:
                    s.raw = None  # rendered: the megabytes are no longer needed
        return shown, new

    def _slots(self, shown: list[int]) -> tuple[SlotPreview, ...]:
        return tuple(
            SlotPreview(i, shown[i], self.frames_per_slot, s.jpeg, self._pacer.done[i], s.failed)
            for i, s in enumerate(self._state)
        )
