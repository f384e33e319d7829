"""Partial frames stay base64-encoded until a preview of them is rendered: a rush of
jobs must not pay for decoding frames nobody sees.

* the Images client hands partial frames over still encoded (``PartialImage.b64``) and decodes finals;
* a frame superseded by a newer one, or by the result, before its render started is never decoded;
* the SIMD base64 path (``bot/images_api/b64.py``) gives what ``base64.b64decode`` gives on malformed input,
  and a malformed partial frame costs its preview only, never the job.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import threading
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from PIL import Image

from bot.demo.images import FakeImagesAPI
from bot.images_api import CompletedImage, GenerateRequest, ImagesClient, PartialImage, b64
from bot.imaging.work import URGENT, PreviewRenderer, make_preview_sync
from bot.jobs.progress import LoopLag, ProgressPublisher, ProgressView
from tests.helpers.waiting import poll
from tests.plugins.fakes import FAKE_API_KEY

WAIT = 5.0


def _png(colour: tuple[int, int, int], size: tuple[int, int] = (96, 64)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "PNG")
    return buf.getvalue()


def _frame(index: int, colour: tuple[int, int, int]) -> PartialImage:
    return PartialImage(index=index, b64=memoryview(base64.b64encode(_png(colour))))


class Decodes:
    """Counts decodes the way the bot's metrics do (the renderer's ``on_decode`` hook)."""

    def __init__(self) -> None:
        self.n = 0

    def __call__(self) -> None:
        self.n += 1


# --- the client keeps partial frames encoded ------------------------------------------------------


async def test_client_hands_partial_frames_over_encoded_and_decodes_the_final(
    fake: FakeImagesAPI, session: aiohttp.ClientSession
) -> None:
    finals = Decodes()
    client = ImagesClient(session, fake.base_url, FAKE_API_KEY, on_decode=finals)
    req = GenerateRequest(model="gpt-image-2", prompt="a fox", partial_images=2)
    events = [e async for e in client.generate(req)]
    partials = [e for e in events if isinstance(e, PartialImage)]
    assert len(partials) == 2 and isinstance(events[-1], CompletedImage)
    assert all(isinstance(p.b64, bytes | memoryview) for p in partials)  # handed over still encoded
    assert finals.n == 1  # the final image was decoded (and counted), once
    png = partials[0].decode()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and Image.open(io.BytesIO(png)).size == (1024, 1024)
    assert events[-1].data.startswith(b"\x89PNG")


# --- the publisher never decodes a superseded frame ---------------------------------------------


class _HeldPool:
    """The preview renderer, its thread held in a first job until ``release()``."""

    def __init__(self) -> None:
        self.decodes = Decodes()
        self.previews = PreviewRenderer(32, on_decode=self.decodes)
        self.pool = self.previews.pool
        self.gate = threading.Event()
        started = threading.Event()

        def hold() -> None:
            started.set()
            assert self.gate.wait(WAIT)

        self.pool.submit(URGENT, hold)
        assert started.wait(WAIT)

    async def render(self, frame: PartialImage, urgent: bool) -> bytes:
        return await self.previews.render(frame, urgent)

    def release(self) -> None:
        self.gate.set()


async def _until(predicate: Callable[[], Any], timeout: float = WAIT) -> None:  # noqa: ASYNC109
    """Looks often: the states waited for here (a queue's length, a list) are cheap to read, some brief."""
    await poll(predicate, timeout, interval=0.005)


async def test_a_frame_superseded_before_its_render_started_is_never_decoded() -> None:
    held = _HeldPool()
    views: list[ProgressView] = []

    async def send(view: ProgressView) -> None:
        views.append(view)

    pub = ProgressPublisher(send, held.render, frames_per_slot=2, min_interval=0.05, status_grace=0)
    pub.start()
    try:
        pub.frame(0, 0, _frame(0, (200, 0, 0)))  # render queued behind the held job
        await _until(lambda: held.pool.queued == 1)
        pub.frame(0, 1, _frame(1, (0, 0, 200)))  # supersedes frame 1 while it waits
        await _until(lambda: held.pool.queued == 2)
        assert held.decodes.n == 0  # nothing ran yet
        held.release()
        await _until(lambda: views)
        await _until(lambda: held.pool.queued == 0)
    finally:
        held.release()
        await pub.close()
    assert [v.slots[0].frame for v in views] == [2]  # only the newest frame was shown...
    assert held.decodes.n == 1  # ...and it is the only one decoded
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
    try:
        pub.frame(0, 0, _frame(0, (0, 200, 0)))
        await _until(lambda: held.pool.queued == 1)
        pub.slot_finished(0, failed=True)  # the result arrived first
        await pub.close()
        held.release()
        # barrier: a later job on the same single thread runs only after the dropped entry was passed over
        assert await held.previews.render(_png((1, 2, 3)), False)
    finally:
        held.release()
        await pub.close()
    assert sent == [] and held.decodes.n == 0
    assert held.pool.queued == 0


async def test_a_malformed_frame_costs_its_preview_only() -> None:
    views: list[ProgressView] = []

    async def send(view: ProgressView) -> None:
        views.append(view)

    failed = asyncio.Event()

    async def render(frame: PartialImage, urgent: bool) -> bytes:
        try:
            return await asyncio.to_thread(make_preview_sync, frame, 32)
        except ValueError:
            failed.set()
            raise

    pub = ProgressPublisher(send, render, frames_per_slot=2, min_interval=0.05, status_grace=0)
    pub.start()
    try:
        pub.frame(0, 0, PartialImage(index=0, b64=b"not base64 at all \xff"))
        await asyncio.wait_for(failed.wait(), WAIT)
        pub.frame(0, 1, _frame(1, (10, 20, 30)))
        await _until(lambda: any(v.slots[0].jpeg for v in views))
    finally:
        await pub.close()
    assert [v.slots[0].frame for v in views if v.new_frame] == [2] and views[-1].slots[0].jpeg


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
    assert b64.SIMD is True  # pybase64 is a dependency: the fast path must not silently be off


# --- a late loop sheds preview renders: the frame waits, encoded ---------------------------------


class _SetLag(LoopLag):
    """Not started: its reading is set by the test instead of measured, and each look is counted."""

    def __init__(self, value: float) -> None:
        super().__init__()
        self.value, self.looks = value, 0

    @property
    def lag(self) -> float:
        self.looks += 1
        return self.value

    @lag.setter
    def lag(self, value: float) -> None:
        self.value = value


async def test_no_render_starts_while_the_loop_is_late() -> None:
    lag = _SetLag(1.0)
    views: list[ProgressView] = []
    decodes = Decodes()
    previews = PreviewRenderer(32, on_decode=decodes)

    async def send(view: ProgressView) -> None:
        views.append(view)

    pub = ProgressPublisher(send, previews.render, frames_per_slot=2, min_interval=0.05, status_grace=0, lag=lag)
    pub.start()
    try:
        pub.frame(0, 0, _frame(0, (1, 2, 3)))
        pub.frame(0, 1, _frame(1, (4, 5, 6)))
        await _until(lambda: lag.looks >= 3)  # it looked, and looked again SHED_RECHECK later, twice
        assert views == [] and decodes.n == 0  # behind: nothing decoded, nothing sent
        lag.value = 0.0
        await _until(lambda: views)
    finally:
        await pub.close()
    assert [v.slots[0].frame for v in views] == [2] and decodes.n == 1


async def test_a_frame_whose_decode_began_is_finished_and_shown_then_the_newer_one() -> None:
    decoding = threading.Event()
    gate = threading.Event()
    decodes = Decodes()

    def slow_preview(frame: PartialImage) -> bytes:
        data = frame.decode()
        decodes()
        decoding.set()
        assert gate.wait(WAIT)
        return make_preview_sync(data, 32)

    async def render(frame: PartialImage, urgent: bool) -> bytes:
        return await asyncio.to_thread(slow_preview, frame)

    views: list[ProgressView] = []

    async def send(view: ProgressView) -> None:
        views.append(view)

    pub = ProgressPublisher(send, render, frames_per_slot=2, min_interval=0.1, status_grace=0)
    pub.start()
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
    assert decodes.n == 2 == len(views)  # every decode was shown
