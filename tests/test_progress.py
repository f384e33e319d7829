"""The progress publisher: newest frame wins, paced edits, status coalesced with the first frame."""

from __future__ import annotations

import asyncio

from bot.progress import ProgressPublisher, ProgressView


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
