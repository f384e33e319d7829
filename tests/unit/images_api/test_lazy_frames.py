"""Partial frames stay base64-encoded until a preview of them is rendered: a rush of
jobs must not pay for decoding frames nobody sees.

* the Images client hands partial frames over still encoded (``PartialImage.b64``) and decodes finals;
* a frame superseded by a newer one, or by the result, before its render started is never decoded;
* the SIMD base64 path (``bot/images/b64.py``) gives what ``base64.b64decode`` gives on malformed input,
  and a malformed partial frame costs its preview only, never the job.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import threading
from collections.abc import AsyncIterator

import aiohttp
import pytest
from PIL import Image

from bot.demo.images import FakeImagesAPI
from bot.images_api import CompletedImage, GenerateRequest, ImagesClient, PartialImage, b64
from bot.imaging.work import URGENT, PreviewPool, make_preview_sync
from bot.jobs.progress import ProgressPublisher, ProgressView
from tests.conftest import FAKE_API_KEY

WAIT = 5.0


def _png(colour: tuple[int, int, int], size: tuple[int, int] = (96, 64)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "PNG")
    return buf.getvalue()


def _frame(index: int, colour: tuple[int, int, int]) -> PartialImage:
    return PartialImage(index=index, b64=memoryview(base64.b64encode(_png(colour))))


def _partial_decodes() -> int:
    return int(b64.snapshot()["decodes"]["partial"])


# --- the client keeps partial frames encoded ------------------------------------------------------


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


async def test_client_hands_partial_frames_over_encoded_and_decodes_the_final(
    fake: FakeImagesAPI, session: aiohttp.ClientSession
) -> None:
    client = ImagesClient(session, fake.base_url, FAKE_API_KEY)
    before = b64.snapshot()["decodes"]
    req = GenerateRequest(model="gpt-image-2", prompt="a fox", partial_images=2)
    events = [e async for e in client.generate(req)]
    after = b64.snapshot()["decodes"]
    partials = [e for e in events if isinstance(e, PartialImage)]
    assert len(partials) == 2 and isinstance(events[-1], CompletedImage)
    assert after["partial"] == before["partial"]  # nothing decoded a partial frame yet
    assert after["final"] == before["final"] + 1
    png = partials[0].decode()
    assert _partial_decodes() == before["partial"] + 1
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and Image.open(io.BytesIO(png)).size == (1024, 1024)
    assert events[-1].data.startswith(b"\x89PNG")


# --- the publisher never decodes a superseded frame ---------------------------------------------


class _HeldPool:
    """A one-thread preview pool whose thread is held in a first job until ``release()``."""

    def __init__(self) -> None:
        self.pool = PreviewPool(workers=1, name="test-held")
        self.gate = threading.Event()
        started = threading.Event()

        def hold() -> None:
            started.set()
            assert self.gate.wait(WAIT)

        self.pool.submit(URGENT, hold)
        assert started.wait(WAIT)

    async def render(self, frame: PartialImage) -> bytes:
        return await asyncio.wrap_future(self.pool.submit(URGENT, make_preview_sync, frame, 32))

    def release(self) -> None:
        self.gate.set()


async def _until(predicate: object, timeout: float = WAIT) -> None:  # noqa: ASYNC109
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():  # type: ignore[operator]
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.005)


async def test_a_frame_superseded_before_its_render_started_is_never_decoded() -> None:
    held = _HeldPool()
    views: list[ProgressView] = []

    async def send(view: ProgressView) -> None:
        views.append(view)

    pub = ProgressPublisher(send, held.render, frames_per_slot=2, min_interval=0.05, status_grace=0)
    pub.start()
    before = _partial_decodes()
    try:
        pub.frame(0, 0, _frame(0, (200, 0, 0)))  # render queued behind the held job
        await asyncio.sleep(0.05)
        pub.frame(0, 1, _frame(1, (0, 0, 200)))  # supersedes frame 1 while it waits
        await asyncio.sleep(0.05)
        assert _partial_decodes() == before  # nothing ran yet
        held.release()
        await _until(lambda: views)
        await asyncio.sleep(0.1)
    finally:
        held.release()
        await pub.close()
    assert [v.slots[0].frame for v in views] == [2]  # only the newest frame was shown...
    assert _partial_decodes() == before + 1  # ...and it is the only one decoded
    jpeg = views[0].slots[0].jpeg
    assert jpeg is not None
    with Image.open(io.BytesIO(jpeg)) as im:
        r, _g, b_ = im.convert("RGB").getpixel((5, 5))  # type: ignore[misc]
        assert b_ > 150 and r < 60  # frame 2's blue, not frame 1's red


async def test_the_result_drops_a_waiting_frame_undecoded() -> None:
    held = _HeldPool()
    sent: list[ProgressView] = []

    async def send(view: ProgressView) -> None:
        sent.append(view)

    pub = ProgressPublisher(send, held.render, frames_per_slot=2, min_interval=0.05, status_grace=0)
    pub.start()
    before = _partial_decodes()
    try:
        pub.frame(0, 0, _frame(0, (0, 200, 0)))
        await asyncio.sleep(0.05)
        pub.slot_finished(0)  # the result arrived first
        await pub.close()
        held.release()
        await asyncio.sleep(0.1)  # give the thread time to (wrongly) run the dropped render
    finally:
        held.release()
        await pub.close()
    assert sent == [] and _partial_decodes() == before
    assert held.pool.queued == 0


async def test_a_malformed_frame_costs_its_preview_only() -> None:
    views: list[ProgressView] = []

    async def send(view: ProgressView) -> None:
        views.append(view)

    async def render(frame: PartialImage) -> bytes:
        return await asyncio.to_thread(make_preview_sync, frame, 32)

    pub = ProgressPublisher(send, render, frames_per_slot=2, min_interval=0.05, status_grace=0)
    pub.start()
    try:
        pub.frame(0, 0, PartialImage(index=0, b64=b"not base64 at all \xff"))
        await asyncio.sleep(0.1)
        assert views == []
        pub.frame(0, 1, _frame(1, (10, 20, 30)))
        await _until(lambda: views)
    finally:
        await pub.close()
    assert views[-1].slots[0].frame == 2 and views[-1].slots[0].jpeg


# --- base64: the SIMD path agrees with the standard library on malformed input -------------------

_IMAGE = base64.b64encode(bytes(range(256)) * 4000)
MALFORMED = [
    b"QUJ",  # a length that is not a multiple of 4
    b"QU=D",  # padding inside
    b"QQ==QUJD",  # data after padding (base64 stops at it)
    b"QUJD\n",  # trailing newline (lenient: ignored)
    b"QU JD",  # whitespace inside
    b"QUJDQR==",  # non-zero padding bits
    b"QUJ=",  # short final group
    b"====",
    b"",
    _IMAGE[:1000] + b"*" + _IMAGE[1000:],  # a non-alphabet character in a long field
    _IMAGE[: len(_IMAGE) // 2] + b"=" + _IMAGE[len(_IMAGE) // 2 :],  # padding in the middle of a long field
    _IMAGE[:-1],  # a long field cut short
    _IMAGE,
]


def _outcome(fn: object, text: bytes | memoryview) -> object:
    try:
        return fn(text)  # type: ignore[operator]
    except (binascii.Error, ValueError) as exc:
        return type(exc).__name__ if not isinstance(exc, binascii.Error) else "binascii.Error"


@pytest.mark.parametrize("text", MALFORMED, ids=range(len(MALFORMED)))
def test_simd_b64decode_matches_the_standard_library(text: bytes) -> None:
    expected = _outcome(base64.b64decode, text)
    assert _outcome(b64.b64decode, text) == expected
    assert _outcome(b64.b64decode, memoryview(text)) == expected
    assert _outcome(lambda t: PartialImage(index=0, b64=t).decode(), text) == expected


def test_non_ascii_base64_raises_value_error() -> None:
    text = _IMAGE[:100] + "é".encode() + _IMAGE[100:]
    with pytest.raises(ValueError):
        b64.b64decode(text)
    with pytest.raises(ValueError):
        PartialImage(index=0, b64=text).decode()


def test_the_simd_decoder_is_in_use() -> None:
    assert b64.snapshot()["simd"] is True  # pybase64 is a dependency: the fast path must not silently be off


# --- a late loop sheds preview renders: the frame waits, encoded ---------------------------------


async def test_no_render_starts_while_the_loop_is_late(monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.jobs import progress

    class _Lag:  # the loop-lag reading, set by the test instead of measured
        interval = 0.025
        lag = 1.0

        def ensure_started(self) -> None:
            pass

    lag = _Lag()
    monkeypatch.setattr(progress, "LOOP_LAG", lag)
    views: list[ProgressView] = []

    async def send(view: ProgressView) -> None:
        views.append(view)

    async def render(frame: PartialImage) -> bytes:
        return await asyncio.to_thread(make_preview_sync, frame, 32)

    pub = ProgressPublisher(send, render, frames_per_slot=2, min_interval=0.05, status_grace=0)
    pub.start()
    before = _partial_decodes()
    try:
        pub.frame(0, 0, _frame(0, (1, 2, 3)))
        pub.frame(0, 1, _frame(1, (4, 5, 6)))
        await asyncio.sleep(0.3)
        assert views == [] and _partial_decodes() == before  # behind: nothing decoded, nothing sent
        lag.lag = 0.0
        await _until(lambda: views)
    finally:
        await pub.close()
    assert [v.slots[0].frame for v in views] == [2] and _partial_decodes() == before + 1


async def test_a_frame_whose_decode_began_is_finished_and_shown_then_the_newer_one() -> None:
    decoding = threading.Event()
    gate = threading.Event()

    def slow_preview(frame: PartialImage) -> bytes:
        data = frame.decode()
        decoding.set()
        assert gate.wait(WAIT)
        return make_preview_sync(data, 32)

    async def render(frame: PartialImage) -> bytes:
        return await asyncio.to_thread(slow_preview, frame)

    views: list[ProgressView] = []

    async def send(view: ProgressView) -> None:
        views.append(view)

    pub = ProgressPublisher(send, render, frames_per_slot=2, min_interval=0.1, status_grace=0, shed_lag=None)
    pub.start()
    before = _partial_decodes()
    try:
        pub.frame(0, 0, _frame(0, (200, 0, 0)))
        assert await asyncio.to_thread(decoding.wait, WAIT)  # frame 1 is being decoded...
        decoding.clear()
        pub.frame(0, 1, _frame(1, (0, 0, 200)))  # ...when frame 2 arrives: frame 1 is not thrown away
        gate.set()
        await _until(lambda: len(views) >= 2)
    finally:
        gate.set()
        await pub.close()
    assert [v.slots[0].frame for v in views] == [1, 2]
    assert _partial_decodes() == before + 2 == before + len(views)  # every decode was shown


def test_the_process_experiment_hands_the_encoded_field_to_a_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    """``PREVIEW_PROCESSES`` (off by default): the preview thread sends the field still encoded to a
    worker process and gets the JPEG back; the hand-over counts as the frame's decode."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from bot.imaging import work as imaging

    pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
    monkeypatch.setattr(imaging, "_processes", pool)
    try:
        before = _partial_decodes()
        jpeg = imaging._preview_job(_frame(0, (0, 200, 0)), 32)
        assert _partial_decodes() == before + 1
        with Image.open(io.BytesIO(jpeg)) as im:
            assert im.format == "JPEG" and max(im.size) == 32
        assert imaging._preview_job(_png((1, 2, 3)), 32)[:2] == b"\xff\xd8"  # raw bytes: rendered in the thread
        with pytest.raises(ValueError):
            imaging._preview_job(PartialImage(index=0, b64=b"**not base64**"), 32)
    finally:
        pool.shutdown()
