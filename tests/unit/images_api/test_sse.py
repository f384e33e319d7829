"""Unit tests of the SSE reader: big lines, odd chunk boundaries, CRLF, [DONE], no trailing blank line."""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator

from bot.images_api.sse import SSEMessage, iter_sse


async def _chunks(data: bytes, sizes: list[int] | None = None, seed: int = 0) -> AsyncIterator[bytes]:
    rng = random.Random(seed)
    pos = 0
    i = 0
    while pos < len(data):
        size = sizes[i % len(sizes)] if sizes else rng.randint(1, 70_000)
        yield data[pos : pos + size]
        pos += size
        i += 1


async def _collect(data: bytes, sizes: list[int] | None = None, seed: int = 0) -> list[SSEMessage]:
    return [m async for m in iter_sse(_chunks(data, sizes, seed))]


async def test_big_data_line_across_odd_chunks() -> None:
    payload = json.dumps({"type": "image_generation.completed", "b64_json": "A" * 5_000_000})
    stream = (
        f"event: image_generation.partial_image\ndata: {payload}\n\n"
        f"event: image_generation.completed\ndata: {payload}\n\n"
    ).encode()
    for seed in range(3):
        msgs = await _collect(stream, seed=seed)
        assert [m.event for m in msgs] == ["image_generation.partial_image", "image_generation.completed"]
        assert all(m.data == payload for m in msgs)
    # One-byte chunks around the boundaries and a huge single chunk.
    msgs = await _collect(stream, sizes=[1, 2, 3, 65_536, 7])
    assert len(msgs) == 2 and msgs[1].data == payload
    msgs = await _collect(stream, sizes=[len(stream)])
    assert len(msgs) == 2


async def test_crlf_comments_multiline_and_no_trailing_blank_line() -> None:
    stream = b": keep-alive\r\nevent: a\r\ndata: one\r\ndata:two\r\n\r\nid: 7\r\ndata: last"
    msgs = await _collect(stream, sizes=[1])
    assert msgs == [SSEMessage("a", "one\ntwo"), SSEMessage(None, "last")]


async def test_crlf_split_between_chunks() -> None:
    stream = b"event: x\r\ndata: {}\r\n\r\n"
    for cut in range(1, len(stream)):
        msgs = [m async for m in iter_sse(_two(stream[:cut], stream[cut:]))]
        assert msgs == [SSEMessage("x", "{}")], cut


async def _two(a: bytes, b: bytes) -> AsyncIterator[bytes]:
    yield a
    yield b


async def test_done_marker_and_empty_events() -> None:
    stream = b'event: e\n\n\ndata: {"a": 1}\n\ndata: [DONE]\n\n'
    msgs = await _collect(stream, sizes=[5])
    assert [m.data for m in msgs] == ['{"a": 1}', "[DONE]"]
    assert msgs[0].event is None  # an event name without data is dropped with its block
    assert msgs[1].is_done and not msgs[0].is_done


async def test_data_without_space_and_colon_in_value() -> None:
    msgs = await _collect(b'data:{"url": "http://x"}\nevent:error\n\n')
    assert msgs == [SSEMessage("error", '{"url": "http://x"}')]


async def test_a_long_data_line_stays_in_pieces_until_someone_joins_it() -> None:
    value = b'{"type": "image_generation.partial_image", "b64_json": "' + b"QUJD" * 300_000 + b'"}'
    stream = b"event: image_generation.partial_image\r\ndata: " + value + b"\r\n\r\n"
    # The "\r" of the line end alone in the last piece, then at the end of a long piece, then a single chunk.
    for size, cut in ((65_536, len(stream) - 3), (65_536, len(stream) - 4), (len(stream), None)):
        [msg] = [m async for m in iter_sse(_pieces(stream, size, cut))]
        assert msg.size == len(value) and not msg.is_done
        if size < len(stream):  # arrived in pieces: handed over unjoined, and they join to the exact value
            pieces = msg.take()
            assert isinstance(pieces, list) and len(pieces) > 1 and b"".join(pieces) == value
            assert msg.raw == b""  # the message let go of it
        else:  # the whole line in one chunk: one slice of it, nothing to join
            assert msg.take() == value


async def test_a_message_in_pieces_reads_like_any_other() -> None:
    payload = '{"a": "' + "x" * 200_000 + '"}'
    [lazy] = [m async for m in iter_sse(_pieces(f"event: e\ndata: {payload}\n\n".encode(), 1000, None))]
    assert lazy == SSEMessage("e", payload) and lazy.data == payload and type(lazy.raw) is bytes
    assert "bytes=200009" in repr(lazy)


async def _pieces(data: bytes, size: int, cut: int | None) -> AsyncIterator[bytes]:
    """``data`` in chunks of ``size`` up to ``cut``, then the rest as one chunk."""
    end = len(data) if cut is None else cut
    for pos in range(0, end, size):
        yield data[pos : min(pos + size, end)]
    if end < len(data):
        yield data[end:]
