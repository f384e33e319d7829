"""Progress updates: the pacer's decisions on a fake clock (no sleeps), then the publisher around it."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from bot.jobs.progress import SHED_RECHECK, Drop, LoopLag, Pacer, ProgressPublisher, ProgressView, Send, Wait

WAIT = 5.0


def pacer(slots: int = 1, *, min_interval: float = 1.0, status_grace: float = 0.7, shed: float | None = 0.1) -> Pacer:
    return Pacer(slots, min_interval=min_interval, status_grace=status_grace, created=0.0, shed_lag=shed)


# --- the pacer ---------------------------------------------------------------------------------------


def test_nothing_to_show_is_a_drop() -> None:
    assert pacer().decide(5.0) == Drop()


def test_the_first_frame_goes_out_at_once() -> None:
    p = pacer()
    p.status()  # queued -> generating: merged into the frame's edit
    assert p.frame(0, 1)
    assert p.decide(0.01) == Send()


def test_a_status_alone_waits_for_the_grace_period() -> None:
    p = pacer(status_grace=0.3)
    p.status()
    assert p.decide(0.1) == Wait(0.3)
    assert p.decide(0.3) == Send()
    p.sent(0.31, [0])
    assert p.decide(0.4) == Drop()  # sent: nothing left


def test_edits_are_at_least_the_interval_apart() -> None:
    p = pacer(min_interval=1.0)
    p.frame(0, 1)
    p.sent(0.05, [1])
    p.frame(0, 2)
    assert p.decide(0.2) == Wait(1.05)
    assert p.decide(1.05) == Send()


def test_late_or_duplicate_frames_are_refused() -> None:
    p = pacer()
    assert p.frame(0, 2)
    assert not p.frame(0, 2) and not p.frame(0, 1)
    assert p.newest == [2]


def test_the_result_drops_a_waiting_frame() -> None:
    p = pacer()
    p.frame(0, 1)
    p.sent(0.05, [1])
    p.frame(0, 2)
    p.finished(0)
    assert p.decide(2.0) == Drop()
    assert not p.frame(0, 3)  # nothing after the result


def _simulate(p: Pacer, arrivals: dict[float, int], result_at: float, step: float = 0.01) -> list[tuple[float, int]]:
    """Drive the pacer on a fake clock: frames of slot 0 arrive at the given times, every ``Send`` shows
    the newest frame at once. Returns (time, frame) of each edit before the result."""
    edits: list[tuple[float, int]] = []
    pending = sorted(arrivals.items())
    t = 0.0
    while t < result_at:
        while pending and pending[0][0] <= t:
            p.frame(0, pending.pop(0)[1])
        decision = p.decide(t)
        if isinstance(decision, Send):
            edits.append((t, p.newest[0]))
            p.sent(t, list(p.newest))
        else:
            assert p.unshown() == [] or isinstance(decision, Wait), "a frame was dropped before its successor"
        t = round(t + step, 6)
    p.finished(0)
    return edits


def test_the_newest_frame_is_never_left_unshown_however_close_its_predecessor() -> None:
    # Two frames 30 ms apart, the result 12 s later (the real API at high quality): frame 2 is shown
    # one interval after frame 1, not dropped on a guess of when a successor might come.
    edits = _simulate(pacer(min_interval=1.0), {1.0: 1, 1.03: 2}, result_at=13.0)
    assert [f for _, f in edits] == [1, 2]
    assert edits[1][0] == pytest.approx(2.0, abs=0.02)


def test_a_frame_is_skipped_only_for_a_newer_frame() -> None:
    # Three frames inside one interval: the middle one is superseded before the edit, the newest shown.
    edits = _simulate(pacer(min_interval=1.0), {0.5: 1, 0.6: 2, 0.7: 3}, result_at=5.0)
    assert [f for _, f in edits] == [1, 3]


def test_a_late_loop_makes_frames_wait_not_vanish() -> None:
    p = pacer(shed=0.1)
    p.frame(0, 1)
    assert p.decide(1.0, lag=0.5) == Wait(1.0 + SHED_RECHECK)
    assert p.unshown() == [0]  # still there
    assert p.decide(1.1, lag=0.01) == Send()


def test_a_late_loop_does_not_hold_a_status_change() -> None:
    p = pacer(status_grace=0.0)
    p.status()
    assert p.decide(1.0, lag=5.0) == Send()


def test_each_slot_keeps_its_frame_until_every_slot_is_done() -> None:
    p = pacer(2)
    p.frame(0, 1)
    p.frame(1, 1)
    p.finished(0)
    assert p.unshown() == [1] and p.decide(0.0) == Send()
    p.finished(1)
    assert p.decide(0.0) == Drop()


def test_a_frame_that_cannot_be_rendered_is_passed_over() -> None:
    p = pacer()
    p.frame(0, 1)
    p.passed_over(0, 1)
    assert p.decide(3.0) == Drop()
    assert p.frame(0, 2) and p.decide(3.0) == Send()


# --- the publisher ---------------------------------------------------------------------------------


@dataclass
class Frame:
    """An encoded frame: only ``decode()`` (in the renderer) reads its data."""

    index: int
    data: bytes

    def decode(self) -> bytes:
        return self.data


class Recorder:
    """Records edits and decodes; while ``gate`` is clear, renders wait before decoding (a busy queue)."""

    def __init__(self) -> None:
        self.views: list[ProgressView] = []
        self.rendered: list[bytes] = []  # frames decoded
        self.started = 0  # renders handed over
        self.urgent: list[bool] = []
        self.changed = asyncio.Event()
        self.gate = asyncio.Event()
        self.gate.set()

    async def send(self, view: ProgressView) -> None:
        self.views.append(view)
        self.changed.set()

    async def render(self, frame: Frame, urgent: bool) -> bytes:
        self.started += 1
        self.urgent.append(urgent)
        self.changed.set()
        await self.gate.wait()
        data = frame.decode()
        self.rendered.append(data)
        return b"jpeg:" + data

    async def until(self, predicate: Callable[[], bool]) -> None:
        async def wait() -> None:
            while not predicate():
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(wait(), WAIT)


async def test_first_frame_goes_out_at_once_with_the_status() -> None:
    rec = Recorder()
    pub = ProgressPublisher(rec.send, rec.render, min_interval=10, status_grace=10)
    pub.start()
    pub.set_queued(2)
    pub.set_generating()
    pub.frame(0, 0, Frame(0, b"f1"))
    await rec.until(lambda: bool(rec.views))
    await pub.close()
    [view] = rec.views
    assert view.status == "generating" and view.new_frame
    assert view.slots[0].frame == 1 and view.slots[0].jpeg == b"jpeg:f1"
    assert rec.urgent == [True]  # nothing shown yet: first in the preview queue


async def test_frames_superseded_while_a_render_is_queued_are_never_rendered() -> None:
    rec = Recorder()
    rec.gate.clear()  # the first render waits (a busy preview queue)
    pub = ProgressPublisher(rec.send, rec.render, frames_per_slot=3, min_interval=0, status_grace=0)
    pub.start()
    pub.frame(0, 0, Frame(0, b"f1"))
    await rec.until(lambda: rec.started == 1)
    pub.frame(0, 2, Frame(2, b"f3"))  # cancels f1's queued render
    pub.frame(0, 1, Frame(1, b"late"))  # out of order: ignored
    rec.gate.set()
    await rec.until(lambda: bool(rec.views))
    await pub.close()
    assert [v.slots[0].frame for v in rec.views] == [3]
    assert rec.rendered == [b"f3"] and rec.started == 2  # f1 was handed over, cancelled undecoded


async def test_the_newest_frame_follows_one_interval_later() -> None:
    rec = Recorder()
    pub = ProgressPublisher(rec.send, rec.render, min_interval=0.05, status_grace=0)
    pub.start()
    pub.frame(0, 0, Frame(0, b"f1"))
    await rec.until(lambda: len(rec.views) == 1)
    pub.frame(0, 1, Frame(1, b"f2"))  # right after frame 1: kept, not guessed away
    await rec.until(lambda: len(rec.views) == 2)
    pub.slot_finished(0)
    await pub.close()
    assert [v.slots[0].frame for v in rec.views] == [1, 2]


async def test_close_drops_pending_frames() -> None:
    rec = Recorder()
    pub = ProgressPublisher(rec.send, rec.render, min_interval=60, status_grace=0)
    pub.start()
    pub.frame(0, 0, Frame(0, b"f1"))
    await rec.until(lambda: bool(rec.views))
    pub.frame(0, 1, Frame(1, b"f2"))  # waits for the interval...
    await pub.close()  # ...and is dropped: the final result wins
    assert [v.slots[0].frame for v in rec.views] == [1] and rec.rendered == [b"f1"]


async def test_multiple_slots_each_keep_their_frame() -> None:
    rec = Recorder()
    pub = ProgressPublisher(rec.send, rec.render, slots=2, min_interval=0, status_grace=0)
    pub.start()
    pub.slot_finished(0)
    pub.frame(1, 0, Frame(0, b"b1"))
    await rec.until(lambda: bool(rec.views))
    await pub.close()
    last = rec.views[-1]
    assert last.slots[0].done and last.slots[1].jpeg == b"jpeg:b1"


async def test_a_failing_send_stops_previews_without_raising(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[ProgressView] = []

    rec = Recorder()

    async def bad_send(view: ProgressView) -> None:
        calls.append(view)
        asyncio.get_running_loop().call_soon(rec.changed.set)  # runs once the failure has been handled
        raise RuntimeError("discord down")

    pub = ProgressPublisher(bad_send, rec.render, min_interval=0, status_grace=0)
    pub.start()
    with caplog.at_level(logging.ERROR, logger="bot.jobs.progress"):
        pub.frame(0, 0, Frame(0, b"x"))
        await rec.until(lambda: "progress update failed" in caplog.text)
        pub.frame(0, 1, Frame(1, b"y"))  # the publisher has stopped: no second attempt
        await pub.close()  # does not raise
    assert len(calls) == 1 and rec.rendered == [b"x"]


async def test_loop_lag_measures_a_blocked_loop() -> None:
    lag = LoopLag(interval=0.005)
    lag.start()
    try:
        await asyncio.sleep(0.02)
        time.sleep(0.1)  # noqa: ASYNC251  (the point: the loop is blocked, the next sample ~0.1 s late)
        seen = 0.0
        for _ in range(20):  # a few loop iterations: the overdue sample runs (then decays by half per sample)
            await asyncio.sleep(0)
            seen = max(seen, lag.lag)
        assert seen > 0.08
    finally:
        await lag.stop()


def test_an_announced_status_goes_out_at_once_without_waiting_for_the_grace() -> None:
    pacer = Pacer(1, min_interval=1.0, status_grace=0.7, created=100.0)
    pacer.status()
    assert pacer.decide(100.1) == Wait(100.7)  # a plain status waits: a first frame may come with it
    pacer.announce()
    assert pacer.decide(100.1) == Send()
