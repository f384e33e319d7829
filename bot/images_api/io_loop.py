"""An event loop of its own, in a thread of its own, for the Images API's traffic.

A streamed image arrives as megabytes of base64 in 64-256 KB socket reads: on the bot's event loop, every read
is a wake-up, a copy and a piece of SSE parsing, and while the loop does that (or waits to take the GIL back
after each read) interactions wait to be answered. Here the Images client's requests and streams run on this
loop instead (``ImagesClient(io=...)``): the bot's loop sees one hand-over per whole event, a frame or a
result, and keeps its time for Discord.

``stream`` bridges an async iterator running here to a consumer on the caller's loop: closing or cancelling
the consumer cancels the producer (the HTTP response is closed); the producer's exceptions are raised in the
consumer, unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

_ITEM, _END, _ERROR = 0, 1, 2


class ImagesLoop:
    def __init__(self, name: str = "images-io") -> None:
        self.name = name
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None:
            return
        ready = threading.Event()

        def main() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self.loop = loop
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        self._thread = threading.Thread(target=main, name=self.name, daemon=True)
        self._thread.start()
        ready.wait()

    async def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on this loop and await its result from the caller's loop."""
        assert self.loop is not None, "ImagesLoop.start() first"
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))

    async def stream(self, make: Callable[[], AsyncIterator[T]]) -> AsyncGenerator[T, None]:
        """The items of the iterator ``make()`` builds, produced on this loop, consumed on the caller's."""
        assert self.loop is not None, "ImagesLoop.start() first"
        consumer = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[int, Any]] = asyncio.Queue()

        def put(kind: int, value: object) -> None:
            with contextlib.suppress(RuntimeError):  # the consumer's loop is closed: nobody is listening
                consumer.call_soon_threadsafe(queue.put_nowait, (kind, value))

        async def produce() -> None:
            items = make()
            try:
                async for item in items:
                    put(_ITEM, item)
                    del item  # the queue holds it now; nothing here keeps its megabytes
            except asyncio.CancelledError:
                raise
            except BaseException as exc:
                put(_ERROR, exc)
            else:
                put(_END, None)
            finally:
                aclose = getattr(items, "aclose", None)
                if aclose is not None:
                    with contextlib.suppress(Exception):
                        await aclose()

        producer = asyncio.run_coroutine_threadsafe(produce(), self.loop)
        try:
            while True:
                kind, value = await queue.get()
                if kind == _ITEM:
                    yield value
                    del value
                elif kind == _END:
                    return
                else:
                    raise value
        finally:
            producer.cancel()  # done, failed or abandoned: stop reading (a no-op once it has finished)

    async def close(self, *closers: Callable[[], Awaitable[object]]) -> None:
        """Run ``closers`` (e.g. the HTTP session's ``close``) on this loop, cancel what is left, stop it."""
        loop, thread = self.loop, self._thread
        if loop is None or thread is None:
            return

        async def shutdown() -> None:
            for close in closers:
                with contextlib.suppress(Exception):
                    await close()
            me = asyncio.current_task()
            rest = [t for t in asyncio.all_tasks() if t is not me]
            for task in rest:
                task.cancel()
            await asyncio.gather(*rest, return_exceptions=True)

        with contextlib.suppress(Exception):
            await self.run(shutdown())
        loop.call_soon_threadsafe(loop.stop)
        await asyncio.to_thread(thread.join, 10)
        self.loop, self._thread = None, None
