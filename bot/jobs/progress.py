"""Paced progress updates for one job's message: the newest frame wins.

A ``ProgressPublisher`` holds the latest state of a job (status line and, per image slot, the newest
partial frame as raw bytes). One background task turns that state into message edits:

* frames are rendered (decoded and shrunk into a small JPEG) only when an edit is about to go out, so a
  frame superseded before then costs nothing: a burst of frames never queues behind itself; a render
  still queued when a newer frame of its slot arrives is cancelled (never decoded) and the newer one
  rendered instead, while a render whose decode has begun is finished and sent (every decode is shown),
  the newer frame following after the interval;
* edits are at least ``min_interval`` apart, so the bot stays inside Discord's limits and never waits
  behind a 429;
* a status-only change (queued → generating) waits ``status_grace`` first: if the first frame arrives in
  that window the two go out as one edit;
* ``close()`` drops whatever has not been sent, a preview being rendered included: the final result
  never waits behind preview work (only behind an edit already on the wire, so it lands last);
* nothing is sent once every slot is finished: the result is about to replace the message anyway;
* a frame's raw bytes are released as soon as it is rendered (megabytes per job under load);
* with a ``latency`` estimate (the bot passes ``PREVIEW_LATENCY``), a frame that could not reach Discord
  before its successor is due is dropped undecoded: its successor is expected one inter-frame gap after it
  (the gap this slot's frames have shown so far), and showing it takes about as long as recent previews took
  from the start of their render to Discord's answer. It is checked when the edit is decided and again when
  the preview thread gets to the frame. Under a rush, that keeps stale frames off the message and decodes
  close to previews; with frames seconds apart, as the real API sends them, it never triggers;
* frames are opaque here: the job's observer hands in the frame still base64-encoded, and only ``render``
  (in a preview thread) decodes it, so a frame superseded before its edit is never decoded at all.

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


@dataclass(slots=True)
class _Slot:
    raw: Frame | None = None  # the newest frame, as handed in (still encoded, if the caller kept it so)
    frame: int = 0
    arrived: float = 0.0  # when ``raw`` arrived (publisher clock)
    gap: float | None = None  # the time between this slot's frames so far: when the next one is due
    rendered_frame: int = 0
    jpeg: bytes | None = None
    done: bool = False
    failed: bool = False
    rendering: asyncio.Future[bytes] | None = None
    tracked: _Tracked | None = None  # the frame being rendered, if it is an encoded one


class TooLate(Exception):
    """A frame's render was about to begin after the moment it could still beat its successor to Discord."""


class _Tracked:
    """An encoded frame as handed to the renderer: records (in the render thread) that its decode began, and
    refuses to begin it after ``deadline`` (then the frame is dropped undecoded, see ``PreviewLatency``)."""

    __slots__ = ("began", "clock", "deadline", "frame")

    def __init__(self, frame: Any, deadline: float | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.frame = frame
        self.deadline, self.clock = deadline, clock
        self.began: float | None = None  # when its decode began (publisher clock)

    @property
    def started(self) -> bool:
        return self.began is not None

    def _begin(self) -> None:
        now = self.clock()
        if self.deadline is not None and now > self.deadline:
            raise TooLate
        self.began = now

    def decode(self) -> bytes:
        self._begin()
        data: bytes = self.frame.decode()
        return data

    def encoded(self) -> bytes | memoryview:
        self._begin()
        text: bytes | memoryview = self.frame.encoded()
        return text


class LoopLag:
    """How late this event loop runs a short timer: the bot's own measure of being behind.

    One task per loop samples every ``interval``; ``lag`` is the latest lateness, decaying by half per
    sample, so one late timer does not count for long. Started by the first publisher that asks."""

    def __init__(self, interval: float = 0.025) -> None:
        self.interval = interval
        self.lag = 0.0
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def ensure_started(self) -> None:
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done() or self._loop is not loop:
            self._loop, self.lag = loop, 0.0
            self._task = loop.create_task(self._run(), name="loop-lag")

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            start = loop.time()
            await asyncio.sleep(self.interval)
            late = loop.time() - start - self.interval
            self.lag = max(late, self.lag / 2)


LOOP_LAG = LoopLag()


class PreviewLatency:
    """How long a preview takes from the start of its render to Discord's answer to the edit: a moving
    average of recent previews (all jobs of the process), fading by half every ``half_life`` seconds
    without a new one, so that after a rush previews come back by themselves. A frame whose render would
    begin later than (its successor's due time - this) is dropped: when the edit is decided, and again
    when the preview thread gets to it (time spent waiting in that queue counts)."""

    def __init__(self, alpha: float = 0.3, half_life: float = 2.0) -> None:
        self.alpha, self.half_life = alpha, half_life
        self._value, self._at = 0.0, 0.0

    def estimate(self, now: float) -> float:
        if self._value == 0.0:
            return 0.0
        return self._value * 0.5 ** (max(0.0, now - self._at) / self.half_life)

    def observe(self, seconds: float, now: float) -> None:
        current = self.estimate(now)
        self._value = seconds if current == 0.0 else self.alpha * seconds + (1 - self.alpha) * current
        self._at = now


PREVIEW_LATENCY = PreviewLatency()
# Loop lag (seconds) above which no preview render starts: the bot is behind (a rush), a frame rendered now
# would reach Discord late and probably stale, and its decode would compete with results and
# acknowledgements. The frame stays encoded; once the loop is back on time it is rendered, unless a newer
# frame or the result has replaced it by then (measured with the bench's burst profile:
# docs/development/performance-history.md).
SHED_LAG = 0.1

Frame = Any  # opaque here: raw bytes, or a frame still base64-encoded (``PartialImage``); only ``render`` looks
Renderer = Callable[[Frame], Awaitable[bytes]]
Sender = Callable[[ProgressView], Awaitable[None]]


@dataclass
class ProgressPublisher:
    send: Sender
    render: Renderer
    slots: int = 1
    frames_per_slot: int = 2
    min_interval: float = 1.0
    status_grace: float = 0.7
    clock: Callable[[], float] = time.monotonic
    started_at: float = field(default_factory=time.time)
    shed_lag: float | None = SHED_LAG  # None: render whatever the loop's lag
    latency: PreviewLatency | None = None  # None: never drop a frame as too late (see the module docstring)

    _state: list[_Slot] = field(init=False)
    _status: str = field(init=False, default="generating")
    _position: int | None = field(init=False, default=None)
    _dirty: asyncio.Event = field(init=False, default_factory=asyncio.Event)
    _frame_dirty: bool = field(init=False, default=False)
    _created: float = field(init=False)
    _last_sent: float | None = field(init=False, default=None)
    _closed: bool = field(init=False, default=False)
    _sending: bool = field(init=False, default=False)
    _rendered_new: bool = field(init=False, default=False)
    _task: asyncio.Task[None] | None = field(init=False, default=None)
    _status_dirty: bool = field(init=False, default=False)
    _render_began: float | None = field(init=False, default=None)  # when the last snapshot's first decode began
    _generating_since: float = field(init=False)
    sent_edits: int = field(init=False, default=0)
    too_late: int = field(init=False, default=0)  # frames dropped undecoded as too late to be worth showing

    def __post_init__(self) -> None:
        self._state = [_Slot() for _ in range(self.slots)]
        self._created = self._generating_since = self.clock()

    # --- inputs (cheap, synchronous: callable from any coroutine) ----------------------------------

    def start(self) -> None:
        if self._task is None:
            if self.shed_lag is not None:
                LOOP_LAG.ensure_started()
            self._task = asyncio.create_task(self._run(), name="progress-publisher")

    def set_queued(self, position: int) -> None:
        if self._status != "queued" or self._position != position:
            self._status, self._position = "queued", position
            self._status_dirty = True
            self._dirty.set()

    def set_generating(self) -> None:
        if self._status != "generating":
            self._status, self._position = "generating", None
            self._generating_since = self.clock()
            self._status_dirty = True
            self._dirty.set()

    def announce(self) -> None:
        """Send the status even though it did not change: a job without partial frames (an animated
        GIF, an SVG) says what it is doing instead of leaving the message silent until the result."""
        self._status_dirty = True
        self._dirty.set()

    def frame(self, slot: int, index: int, data: Frame) -> None:
        """A partial frame arrived (``index`` is the API's 0-based partial index). It is kept as given (an
        encoded frame stays encoded) until ``render`` is called on it; a newer frame replaces it unrendered."""
        s = self._state[slot]
        if s.done or index + 1 <= s.frame:
            return  # late or duplicate: never go backwards
        now = self.clock()
        since = s.arrived if s.frame else self._generating_since
        s.gap = (now - since) / (index + 1 - s.frame)  # frames skipped by the API share the interval
        s.raw, s.frame, s.arrived = data, index + 1, now
        if s.rendering is not None and not (s.tracked is not None and s.tracked.started):
            s.rendering.cancel()  # the older frame's render has not begun: drop it undecoded, render this one
        # (a render whose decode has begun is finished and shown: its cost is paid, and it is the progress
        # there is; this frame follows after the interval, unless the result replaces it first)
        self._frame_dirty = True
        self._dirty.set()

    def slot_finished(self, slot: int, *, failed: bool = False) -> None:
        s = self._state[slot]
        s.done, s.failed, s.raw = True, failed, None
        if s.rendering is not None:
            s.rendering.cancel()  # its preview would never be shown: if it is still queued, it is never decoded
        if self.slots > 1:
            self._dirty.set()

    @property
    def shown_frame(self) -> bool:
        """Has any frame been rendered for an edit yet? (Renderers favour jobs that show nothing.)"""
        return any(s.rendered_frame for s in self._state)

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
        with contextlib.suppress(Exception):  # its own failures are logged in _run
            await asyncio.wait([task])

    # --- the publishing loop ---------------------------------------------------------------------

    async def _run(self) -> None:
        try:
            while True:
                await self._dirty.wait()
                if self._closed:
                    return
                delay = self._delay()
                if delay > 0:
                    await self._sleep_unless_closed(delay)
                    if self._closed:
                        return
                    if self._delay() > 0:
                        continue  # woken early by new state: wait out the rest of the interval
                self._dirty.clear()
                if self._all_done():
                    continue  # the result replaces the message: nothing left worth an edit
                if self._behind():
                    await self._sleep_unless_closed(0.1)  # keep the frame encoded for now; look again
                    if self._closed:
                        return
                    continue
                if self._drop_too_late() and not self._pending() and not self._status_dirty:
                    self._frame_dirty = False
                    continue  # nothing else to show: no edit
                decided, status_change, late_before = self.clock(), self._status_dirty, self.too_late
                view = await self._snapshot()
                if self._closed:
                    return
                if self.too_late != late_before and not self._rendered_new and not status_change:
                    continue  # its frame came too late to show, and nothing else changed: no edit
                if self._stale() and not self._rendered_new:
                    continue  # a newer frame is waiting and nothing new was rendered: render that one
                if self._all_done():
                    continue
                self._sending = True
                try:
                    await self.send(view)
                finally:
                    self._sending = False
                self.sent_edits += 1
                self._last_sent = self.clock()
                if self.latency is not None and view.new_frame and self._rendered_new:
                    began = self._render_began if self._render_began is not None else decided
                    self.latency.observe(self._last_sent - began, self._last_sent)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("progress update failed; further previews for this job are skipped")

    def _delay(self) -> float:
        now = self.clock()
        if self._last_sent is not None:
            return self._last_sent + self.min_interval - now
        if self._frame_dirty:
            return 0.0
        return self._created + self.status_grace - now

    async def _sleep_unless_closed(self, delay: float) -> None:
        self._dirty.clear()
        try:
            await asyncio.wait_for(self._dirty.wait(), timeout=delay)
        except TimeoutError:
            pass
        self._dirty.set()

    async def _snapshot(self) -> ProgressView:
        new_frame = self._frame_dirty
        self._frame_dirty = self._status_dirty = False
        self._rendered_new = False
        pending = [(i, s, s.raw, s.frame) for i, s in enumerate(self._state) if s.raw and s.frame != s.rendered_frame]
        if pending:
            tasks = []
            tracked: list[_Tracked | None] = []
            for _, s, raw, _ in pending:
                s.tracked = (
                    None
                    if isinstance(raw, bytes | bytearray | memoryview)
                    else _Tracked(raw, self._deadline(s), self.clock)
                )
                tracked.append(s.tracked)
                s.rendering = asyncio.ensure_future(self.render(raw if s.tracked is None else s.tracked))
                tasks.append(s.rendering)
            try:
                rendered = await asyncio.gather(*tasks, return_exceptions=True)
            finally:
                for _, s, _, _ in pending:
                    s.rendering, s.tracked = None, None
            began = [t.began for t in tracked if t is not None and t.began is not None]
            self._render_began = min(began) if began else None
            for (_, s, _, frame), jpeg in zip(pending, rendered, strict=True):
                if isinstance(jpeg, asyncio.CancelledError):
                    continue  # superseded by a newer frame while rendering
                if isinstance(jpeg, TooLate):
                    self.too_late += 1
                    if s.frame == frame:
                        s.raw = None  # never decoded; a newer frame (or the result) takes its place
                    continue
                if isinstance(jpeg, BaseException):
                    log.warning("could not render a preview frame: %s", jpeg)
                    continue
                if not s.done:
                    s.jpeg, s.rendered_frame = jpeg, frame
                    self._rendered_new = True
                    if s.frame == frame:
                        s.raw = None  # rendered: the megabytes are no longer needed
        slots = tuple(
            SlotPreview(i, s.rendered_frame, self.frames_per_slot, s.jpeg, s.done, s.failed)
            for i, s in enumerate(self._state)
        )
        return ProgressView(self._status, self._position, self.started_at, slots, new_frame)

    def _behind(self) -> bool:
        """Would this edit need a render while the loop is late? (Then it waits, see ``SHED_LAG``.)"""
        if self.shed_lag is None or LOOP_LAG.lag <= self.shed_lag:
            return False
        return self._pending()

    def _pending(self) -> bool:
        """Has some slot a frame not shown yet?"""
        return any(s.raw is not None and not s.done and s.frame != s.rendered_frame for s in self._state)

    def _deadline(self, s: _Slot) -> float | None:
        """The latest moment a render of ``s``'s frame may begin and still reach Discord before its
        successor is due (None: no limit)."""
        if self.latency is None or s.gap is None:
            return None
        return s.arrived + s.gap - self.latency.estimate(self.clock())

    def _drop_too_late(self) -> bool:
        """Drop (undecoded) each frame that would reach Discord after its successor is due. True if any."""
        if self.latency is None:
            return False
        now = self.clock()
        dropped = False
        for s in self._state:
            if s.raw is None or s.done or s.frame == s.rendered_frame:
                continue
            deadline = self._deadline(s)
            if deadline is not None and now > deadline:
                s.raw = None
                self.too_late += 1
                dropped = True
        return dropped

    def _all_done(self) -> bool:
        return all(s.done for s in self._state)

    def _stale(self) -> bool:
        return any(s.raw is not None and not s.done and s.frame > s.rendered_frame for s in self._state)
