"""The Images API's own loop: a stream produced there is consumed here, errors and cancellation cross over."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator

import pytest

from bot.images_api import StreamError
from bot.images_api.io_loop import ImagesLoop

WAIT = 5.0


@pytest.fixture
async def io() -> AsyncIterator[ImagesLoop]:
    loop = ImagesLoop(name="test-images-io")
    loop.start()
    yield loop
    await loop.close()


async def test_items_are_produced_on_the_other_loop_in_order(io: ImagesLoop) -> None:
    threads: list[str] = []

    async def produce() -> AsyncIterator[int]:
        for i in range(3):
            threads.append(threading.current_thread().name)
            yield i

    got = [i async for i in io.stream(produce)]
    assert got == [0, 1, 2] and set(threads) == {"test-images-io"}


async def test_an_error_reaches_the_consumer_unchanged(io: ImagesLoop) -> None:
    async def produce() -> AsyncIterator[int]:
        yield 1
        raise StreamError("the stream was interrupted", request_id="req_1")

    got: list[int] = []
    with pytest.raises(StreamError) as caught:
        async for i in io.stream(produce):
            got.append(i)
    assert got == [1] and caught.value.request_id == "req_1"


async def test_leaving_the_stream_cancels_the_producer(io: ImagesLoop) -> None:
    closed = threading.Event()
    produced = threading.Event()

    async def produce() -> AsyncIterator[int]:
        try:
            yield 1
            produced.set()
            await asyncio.sleep(3600)  # a stream that would go on for an hour
            yield 2
        finally:
            closed.set()

    stream = io.stream(produce)
    async for i in stream:
        assert i == 1
        break
    await stream.aclose()  # what a cancelled job does to its events
    assert await asyncio.to_thread(closed.wait, WAIT)


async def test_a_cancelled_consumer_cancels_the_producer(io: ImagesLoop) -> None:
    closed = threading.Event()
    started = asyncio.Event()

    async def produce() -> AsyncIterator[int]:
        try:
            await asyncio.sleep(3600)
            yield 1
        finally:
            closed.set()

    async def consume() -> None:
        started.set()
        async for _ in io.stream(produce):
            pass

    task = asyncio.ensure_future(consume())
    await started.wait()
    await asyncio.sleep(0)  # the consumer is waiting for its first item
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await asyncio.to_thread(closed.wait, WAIT)


async def test_run_returns_a_coroutines_result(io: ImagesLoop) -> None:
    async def where() -> str:
        return threading.current_thread().name

    assert await io.run(where()) == "test-images-io"
