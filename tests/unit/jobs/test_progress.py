"""The progress publisher: newest frame wins, paced edits, status coalesced with the first frame."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bot.jobs.progress import PreviewLatency, ProgressPublisher, ProgressView


class Recorder:
    def __init__(self, send_delay: float = 0.0) -> None:
        self.views: list[ProgressView] = []
        self.rendered: list[bytes] = []
        self.send_delay = send_delay

    async def send(self, view: ProgressView) -> None:
        await asyncio.sleep(self.send_delay)
        self.views.append(view)

    async def render(self, raw: bytes) -> bytes:
        self.rendered.append(raw)
        await asyncio.sleep(0.001)
        return b"jpeg:" + raw


async def test_first_frame_goes_out_at_once_and_status_is_merged_into_it() -> None:
    rec = Recorder()
    pub = ProgressPublisher(rec.send, rec.render, min_interval=0.5, status_grace=0.3)
    pub.start()
    pub.set_generating()
    pub.frame(0, 0, b"f1")
    await asyncio.sleep(0.05)
    assert len(rec.views) == 1
    assert rec.views[0].slots[0].frame == 1 and rec.views[0].slots[0].jpeg == b"jpeg:f1"
    await pub.close()


async def test_status_alone_waits_for_the_grace_period() -> None:
    rec = Recorder()
    pub = ProgressPublisher(rec.send, rec.render, min_interval=0.05, status_grace=0.2)
    pub.start()
    pub.set_queued(3)
    await asyncio.sleep(0.1)
    assert rec.views == []
    await asyncio.sleep(0.2)
    assert [v.status for v in rec.views] == ["queued"]
    assert rec.views[0].queue_position == 3
    await pub.close()


async def test_burst_of_frames_sends_only_the_newest_and_never_goes_backwards() -> None:
    rec = Recorder()
    pub = ProgressPublisher(rec.send, rec.render, frames_per_slot=3, min_interval=0.2, status_grace=0)
    pub.start()
    pub.frame(0, 0, b"f1")
    await asyncio.sleep(0.02)
    pub.frame(0, 1, b"f2")
    pub.frame(0, 2, b"f3")
    pub.frame(0, 1, b"late")  # out of order: ignored
    await asyncio.sleep(0.35)
    assert [v.slots[0].frame for v in rec.views] == [1, 3]
    assert b"f2" not in rec.rendered and b"late" not in rec.rendered  # superseded frames are never decoded
    await pub.close()


async def test_edits_are_paced() -> None:
    rec = Recorder()
    pub = ProgressPublisher(rec.send, rec.render, frames_per_slot=3, min_interval=0.15, status_grace=0)
    pub.start()
    loop = asyncio.get_running_loop()
    times = []

    async def send(view: ProgressView) -> None:
        times.append(loop.time())

    pub.send = send
    for i in range(3):
        pub.frame(0, i, bytes([i]))
        await asyncio.sleep(0.03)
    await asyncio.sleep(0.4)
    assert len(times) == 2
    assert times[1] - times[0] >= 0.14
    await pub.close()


async def test_close_drops_pending_frames() -> None:
    rec = Recorder()
    pub = ProgressPublisher(rec.send, rec.render, min_interval=1.0, status_grace=0)
    pub.start()
    pub.frame(0, 0, b"f1")
    await asyncio.sleep(0.05)
    pub.frame(0, 1, b"f2")  # waits for the interval...
    await pub.close()  # ...and is dropped: the final result wins
    await asyncio.sleep(0.05)
    assert [v.slots[0].frame for v in rec.views] == [1]


async def test_multiple_slots_each_keep_their_frame() -> None:
    rec = Recorder()
    pub = ProgressPublisher(rec.send, rec.render, slots=2, min_interval=0.05, status_grace=0)
    pub.start()
    pub.frame(0, 0, b"a1")
    pub.frame(1, 0, b"b1")
    await asyncio.sleep(0.03)
    pub.slot_finished(0)
    await asyncio.sleep(0.1)
    last = rec.views[-1]
    assert last.slots[0].done and last.slots[1].jpeg == b"jpeg:b1"
    await pub.close()


async def test_a_failing_send_stops_previews_without_raising() -> None:
    async def bad_send(view: ProgressView) -> None:
        raise RuntimeError("discord down")

    rec = Recorder()
    pub = ProgressPublisher(bad_send, rec.render, min_interval=0, status_grace=0)
    pub.start()
    pub.frame(0, 0, b"x")
    await asyncio.sleep(0.05)
    await pub.close()


# --- frames too late to be worth showing (PreviewLatency) -------------------------------------------


async def test_a_frame_that_would_reach_discord_after_its_successor_is_due_is_dropped_undecoded() -> None:
    latency = PreviewLatency()
    latency.observe(5.0, time.monotonic())  # previews take seconds to reach Discord just now (a rush)
    rec = Recorder()
    pub = ProgressPublisher(rec.send, rec.render, frames_per_slot=2, min_interval=0.05, status_grace=0, latency=latency)
    pub.start()
    pub.set_generating()
    await asyncio.sleep(0.1)
    pub.frame(0, 0, b"f1")  # 0.1 s after the start: the next is due in ~0.1 s, this one would take seconds
    await asyncio.sleep(0.1)
    assert rec.rendered == [] and pub.too_late == 1
    assert [v.new_frame for v in rec.views] == []  # and no edit for it
    await pub.close()


async def test_frames_far_enough_apart_are_shown_and_the_latency_is_learnt_from_the_edits() -> None:
    latency = PreviewLatency()  # nothing learnt yet
    rec = Recorder(send_delay=0.05)
    pub = ProgressPublisher(rec.send, rec.render, frames_per_slot=2, min_interval=0.05, status_grace=0, latency=latency)
    pub.start()
    pub.set_generating()
    await asyncio.sleep(0.2)
    pub.frame(0, 0, b"f1")  # the next is due ~0.2 s later: time enough
    await asyncio.sleep(0.15)
    assert rec.rendered == [b"f1"] and pub.too_late == 0
    assert 0.04 < latency.estimate(time.monotonic()) < 5  # learnt from this edit: ~0.05 s (more on a busy machine)
    await pub.close()


async def test_after_a_rush_the_estimate_fades_and_previews_come_back() -> None:
    latency = PreviewLatency(half_life=0.05)
    latency.observe(0.5, time.monotonic())
    await asyncio.sleep(0.4)  # eight half-lives without a preview: ~2 ms
    rec = Recorder()
    pub = ProgressPublisher(rec.send, rec.render, min_interval=0.05, status_grace=0, latency=latency)
    pub.start()
    pub.set_generating()
    await asyncio.sleep(0.3)
    pub.frame(0, 0, b"f1")  # its successor is due ~0.3 s later; the faded estimate is ~1 ms
    await asyncio.sleep(0.1)
    assert rec.rendered == [b"f1"]
    await pub.close()


def test_preview_latency_is_a_fading_moving_average() -> None:
    est = PreviewLatency(alpha=0.5, half_life=1.0)
    assert est.estimate(0.0) == 0.0  # nothing learnt yet: never drops a frame
    est.observe(0.4, now=10.0)
    assert est.estimate(10.0) == 0.4  # the first sample is taken as it is
    est.observe(0.2, now=10.0)
    assert abs(est.estimate(10.0) - 0.3) < 1e-9
    assert abs(est.estimate(11.0) - 0.15) < 1e-9 and abs(est.estimate(12.0) - 0.075) < 1e-9


async def test_a_frame_whose_render_would_begin_too_late_is_never_decoded() -> None:
    # The check also runs when the preview thread gets to the frame: time spent waiting in its queue counts.
    latency = PreviewLatency()
    latency.observe(0.05, time.monotonic())

    class Encoded:
        decoded = 0

        def decode(self) -> bytes:
            Encoded.decoded += 1
            return b"pixels"

    async def slow_queue(frame: Any) -> bytes:
        await asyncio.sleep(0.25)  # a busy preview queue: by now the successor is due
        return b"jpeg:" + frame.decode()

    rec = Recorder()
    pub = ProgressPublisher(rec.send, slow_queue, frames_per_slot=2, min_interval=0.05, status_grace=0, latency=latency)
    pub.start()
    pub.set_generating()
    await asyncio.sleep(0.2)
    pub.frame(0, 0, Encoded())  # due: ~0.2 s after it; checked now (in time) and at pickup (too late)
    await asyncio.sleep(0.4)
    assert Encoded.decoded == 0 and pub.too_late == 1 and rec.views == []
    await pub.close()
