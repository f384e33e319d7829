"""Unit tests of the load-benchmark hot paths.

* ``bot.imaging.work``: ``PreviewPool`` / ``PreviewRenderer`` (priorities, cancellation, errors), PNG frames decoded
  in one piece (``_png_in_one_piece`` / ``open_image``: same pixels as a plain ``Image.open``), previews
  and the untouched-upload shortcut.
* ``bot.images_api.sse``: the SSE reader's contract at awkward chunk boundaries.
* ``bot.images_api.payloads``: cutting ``b64_json`` out of an event without a JSON scan (``_split_b64``),
  sliced base64 (``_b64decode``) and the event decoders, checked against ``json.loads`` + ``base64``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import io
import itertools
import json
import random
import threading
import weakref
import zlib
from collections.abc import AsyncIterator, Callable
from typing import Any, cast

import pytest
from PIL import Image

from bot.images_api import payloads
from bot.images_api.payloads import OFFLOAD_BYTES, _b64decode, _decode_event, _split_b64
from bot.images_api.sse import SSEMessage, iter_sse
from bot.imaging import work as imaging
from bot.imaging.work import (
    ROUTINE,
    URGENT,
    PreviewPool,
    PreviewRenderer,
    _png_in_one_piece,
    fit_upload,
    fit_upload_sync,
    make_preview_sync,
    open_image,
)

# Field lengths around 256 KB boundaries (and multiples): awkward sizes for any chunked decoder.
B64_CHUNK = 256 * 1024
WAIT = 5.0  # seconds: generous upper bound for a thread hand-off; never reached when things work

# =========================================================================================================
# PreviewPool / PreviewRenderer
# =========================================================================================================


class _Blocked:
    """A one-thread pool whose thread is held inside a first job until ``release()``."""

    def __init__(self, name: str) -> None:
        self.pool = PreviewPool(workers=1, name=name)
        self.started = threading.Event()
        self.gate = threading.Event()

        def block() -> str:
            self.started.set()
            assert self.gate.wait(WAIT)
            return "blocker"

        self.blocker = self.pool.submit(URGENT, block)
        assert self.started.wait(WAIT)  # the thread holds the blocker: everything else now queues

    def release(self) -> None:
        self.gate.set()


def test_pool_urgent_before_routine_and_fifo_within_priority() -> None:
    """Pins: lower priority value runs first; equal priorities run in submission order."""
    b = _Blocked("t_order")
    ran: list[str] = []
    try:
        futs = [
            b.pool.submit(prio, ran.append, label)
            for prio, label in [(ROUTINE, "r1"), (URGENT, "u1"), (ROUTINE, "r2"), (URGENT, "u2"), (ROUTINE, "r3")]
        ]
        assert b.pool.queued == 5
    finally:
        b.release()
    for f in futs:
        f.result(WAIT)
    assert ran == ["u1", "u2", "r1", "r2", "r3"]
    assert b.pool.queued == 0


class _Frame:
    """Stands for a frame's megabytes; weak-referenceable so a test can see when it is let go."""


def test_pool_cancelled_while_queued_never_runs_and_lets_go_of_its_args() -> None:
    """Pins: cancel() of a queued future succeeds, its function never runs, and its arguments are released
    at once (not when a thread reaches the entry)."""
    b = _Blocked("t_cancel")
    ran: list[str] = []
    try:
        frame = _Frame()
        ref = weakref.ref(frame)
        doomed = b.pool.submit(ROUTINE, lambda f: ran.append("doomed"), frame)
        del frame
        assert ref() is not None  # held by the queue entry while queued
        assert doomed.cancel()
        assert ref() is None  # dropped by cancel(), the thread is still busy with the blocker
        after = b.pool.submit(ROUTINE, ran.append, "after")
    finally:
        b.release()
    after.result(WAIT)  # FIFO: the cancelled entry was popped (and skipped) before this one ran
    assert ran == ["after"]
    assert doomed.cancelled()


def test_pool_exception_reaches_the_future_and_the_thread_survives() -> None:
    """Pins: an exception (even a BaseException) is set on the future; the worker keeps serving."""

    class Fatalish(BaseException):
        pass

    pool = PreviewPool(workers=1, name="t_exc")

    def boom(exc: BaseException) -> None:
        raise exc

    f1 = pool.submit(ROUTINE, boom, ValueError("bad frame"))
    f2 = pool.submit(ROUTINE, boom, Fatalish())
    f3 = pool.submit(ROUTINE, lambda: 42)
    assert f3.result(WAIT) == 42  # the single thread survived both errors
    assert isinstance(f1.exception(WAIT), ValueError) and str(f1.exception()) == "bad frame"
    assert isinstance(f2.exception(WAIT), Fatalish)
    with pytest.raises(ValueError, match="bad frame"):
        f1.result()


def test_pool_starts_threads_lazily_and_at_most_workers() -> None:
    """Pins: no thread before the first submit; never more than ``workers`` threads."""
    name = "t_threads_pool"

    def mine() -> list[threading.Thread]:
        return [t for t in threading.enumerate() if t.name.startswith(name + "_")]

    pool = PreviewPool(workers=2, name=name)
    assert mine() == []
    futs = [pool.submit(ROUTINE, pow, 2, i) for i in range(20)]
    assert [f.result(WAIT) for f in futs] == [2**i for i in range(20)]
    threads = mine()
    assert 1 <= len(threads) <= 2 and all(t.daemon for t in threads)


class _Tagged:
    """An encoded frame that records when it is decoded."""

    def __init__(self, tag: str, log: list[str]) -> None:
        self.tag, self.log = tag, log

    def decode(self) -> bytes:
        self.log.append(self.tag)
        buf = io.BytesIO()
        Image.new("RGB", (8, 8), (9, 9, 9)).save(buf, "PNG")
        return buf.getvalue()


async def test_previews_render_urgent_frames_first_and_never_decode_a_cancelled_one() -> None:
    """Pins: ``PreviewRenderer.render`` returns the JPEG, honours ``urgent``, counts each decode, and a render
    cancelled while queued is never decoded; a failing render raises in the caller."""
    b = _Blocked("t_previews")
    decoded: list[str] = []
    counted: list[None] = []
    previews = PreviewRenderer(16, on_decode=lambda: counted.append(None))
    previews.pool = b.pool
    try:
        routine = asyncio.ensure_future(previews.render(_Tagged("routine", decoded)))
        await asyncio.sleep(0)  # let it submit first
        urgent = asyncio.ensure_future(previews.render(_Tagged("urgent", decoded), urgent=True))
        dropped = asyncio.ensure_future(previews.render(_Tagged("dropped", decoded), urgent=True))
        await asyncio.sleep(0)
        assert b.pool.queued == 3
        dropped.cancel()
        with pytest.raises(asyncio.CancelledError):
            await dropped
    finally:
        b.release()
    jpegs = await asyncio.wait_for(asyncio.gather(routine, urgent), WAIT)
    assert all(j[:2] == b"\xff\xd8" for j in jpegs)
    assert decoded == ["urgent", "routine"] and len(counted) == 2
    with pytest.raises(OSError):  # not an image: Pillow's error reaches the caller
        await asyncio.wait_for(previews.render(b"not an image"), WAIT)


# =========================================================================================================
# PNG in one piece
# =========================================================================================================

_SIG = b"\x89PNG\r\n\x1a\n"


def _encode(im: Image.Image, fmt: str = "PNG", **kw: Any) -> bytes:
    out = io.BytesIO()
    im.save(out, fmt, **kw)
    return out.getvalue()


def _noise(mode: str, size: tuple[int, int], seed: int = 0) -> Image.Image:
    per_pixel = 2 if mode == "I;16" else len(Image.new(mode, (1, 1)).getbands())
    return Image.frombytes(mode, size, random.Random(seed).randbytes(size[0] * size[1] * per_pixel))


def _chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """(type, body) of every chunk of a well-formed PNG (CRCs checked)."""
    assert data.startswith(_SIG)
    pos, out = 8, []
    while pos < len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        crc = int.from_bytes(data[pos + 8 + length : pos + 12 + length], "big")
        assert crc == zlib.crc32(body, zlib.crc32(kind)), f"bad CRC in {kind!r} chunk"
        out.append((kind, body))
        pos += 12 + length
    return out


def _chunk(kind: bytes, body: bytes) -> bytes:
    return len(body).to_bytes(4, "big") + kind + body + zlib.crc32(body, zlib.crc32(kind)).to_bytes(4, "big")


def _assemble(chunks: list[tuple[bytes, bytes]]) -> bytes:
    return _SIG + b"".join(_chunk(k, b) for k, b in chunks)


def _resplit_idat(data: bytes, sizes: list[int]) -> bytes:
    """The same PNG with its (concatenated) IDAT stream cut into chunks of ``sizes`` (cycled; 0 allowed)."""
    chunks = _chunks(data)
    first = next(i for i, (k, _) in enumerate(chunks) if k == b"IDAT")
    stream = b"".join(b for k, b in chunks if k == b"IDAT")
    pieces, pos, i = [], 0, 0
    while pos < len(stream):
        size = sizes[i % len(sizes)]
        pieces.append((b"IDAT", stream[pos : pos + size]))
        pos += size
        i += 1
    rest = [c for c in chunks if c[0] != b"IDAT"]
    return _assemble(rest[:first] + pieces + rest[first:])


_ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
_COLOR_TYPE = {"L": (0, 1), "LA": (4, 2), "RGB": (2, 3), "RGBA": (6, 4), "P": (3, 1)}


def _interlaced_png(im: Image.Image, idat_piece: int = 500, trns: bytes | None = None) -> bytes:
    """An 8-bit Adam7-interlaced PNG of ``im`` (Pillow only writes non-interlaced ones)."""
    color_type, bpp = _COLOR_TYPE[im.mode]
    w, h = im.size
    px = im.tobytes()
    raw = bytearray()
    for x0, y0, dx, dy in _ADAM7:
        if x0 >= w or y0 >= h:
            continue  # an empty pass has no scanlines at all
        for y in range(y0, h, dy):
            raw.append(0)  # filter: none
            for x in range(x0, w, dx):
                o = (y * w + x) * bpp
                raw += px[o : o + bpp]
    chunks = [(b"IHDR", w.to_bytes(4, "big") + h.to_bytes(4, "big") + bytes([8, color_type, 0, 0, 1]))]
    if im.mode == "P":
        chunks.append((b"PLTE", bytes(im.getpalette() or [])))
        if trns is not None:
            chunks.append((b"tRNS", trns))
    stream = zlib.compress(bytes(raw), 6)
    chunks += [(b"IDAT", stream[i : i + idat_piece]) for i in range(0, len(stream), idat_piece)]
    chunks.append((b"IEND", b""))
    return _assemble(chunks)


def _plain(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


def _assert_same_image(data: bytes) -> None:
    expected = _plain(data)
    with open_image(data) as got:
        got.load()
        assert (got.format, got.mode, got.size) == (expected.format, expected.mode, expected.size)
        assert got.info.get("transparency") == expected.info.get("transparency")
        assert got.getpalette() == expected.getpalette()
        assert got.tobytes() == expected.tobytes()


def _palette_with_transparency() -> bytes:
    im = _noise("P", (260, 250), seed=3)
    im.putpalette(random.Random(4).randbytes(768))
    return _resplit_idat(_encode(im, transparency=bytes(range(256))), [8000])  # tRNS: every entry's own alpha


def _multi_idat_cases() -> dict[str, bytes]:
    palette_index = _noise("P", (300, 300), seed=8)
    palette_index.putpalette(random.Random(9).randbytes(768))
    small_p = _noise("P", (37, 29), seed=5)
    small_p.putpalette(random.Random(6).randbytes(768))
    return {
        "rgb_noise_pillow_chunks": _encode(_noise("RGB", (220, 220))),  # 145 KB of noise: 3 IDATs of 64 KB
        "rgba_noise": _encode(_noise("RGBA", (200, 200), seed=1)),
        "la": _encode(_noise("LA", (300, 250), seed=2)),
        "l_16bit": _encode(_noise("I;16", (260, 260), seed=7)),
        "palette_trns_bytes": _palette_with_transparency(),
        "palette_trns_index": _resplit_idat(_encode(palette_index, transparency=7), [8000]),
        "rgb_tiny_and_zero_length_idats": _resplit_idat(_encode(_noise("RGB", (64, 48), seed=9)), [1, 0, 3, 0, 97]),
        "interlaced_rgb": _interlaced_png(_noise("RGB", (61, 45), seed=10), idat_piece=333),
        "interlaced_rgba": _interlaced_png(_noise("RGBA", (50, 33), seed=11), idat_piece=1),
        "interlaced_palette_trns": _interlaced_png(small_p, idat_piece=64, trns=b"\x00\x40\x80"),
        "interlaced_smaller_than_8px": _interlaced_png(_noise("RGB", (3, 2), seed=12), idat_piece=5),
    }


_CASES = _multi_idat_cases()


@pytest.mark.parametrize("name", sorted(_CASES))
def test_multi_idat_png_decodes_to_the_same_pixels(name: str) -> None:
    """Pins: merging the IDAT chunks changes nothing Pillow decodes (mode, size, palette, tRNS, pixels),
    and the merged file really has a single IDAT holding the same compressed stream."""
    data = _CASES[name]
    idats = [b for k, b in _chunks(data) if k == b"IDAT"]
    assert len(idats) >= 2, "the fixture must have several IDAT chunks"
    merged = _png_in_one_piece(data)
    assert merged is not None
    png, size = merged
    chunks = _chunks(png)
    assert [b for k, b in chunks if k == b"IDAT"] == [b"".join(idats)]
    assert size == len(b"".join(idats))
    assert [c for c in chunks if c[0] != b"IDAT"] == [c for c in _chunks(data) if c[0] != b"IDAT"]
    _assert_same_image(data)


def test_one_piece_means_one_decoder_call(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pins the point of the optimisation: a many-IDAT PNG reaches the zlib decoder in one call (a plain
    ``Image.open`` feeds it once per chunk)."""
    data = _resplit_idat(_encode(_noise("RGB", (220, 220))), [4096])  # 145 KB: more than Pillow's 64 KB block
    calls: list[int] = []
    real = Image._getdecoder

    class Counting:
        def __init__(self, decoder: Any) -> None:
            self._d = decoder

        def __getattr__(self, name: str) -> Any:
            return getattr(self._d, name)

        def decode(self, buf: bytes) -> Any:
            calls.append(len(buf))
            return self._d.decode(buf)

    monkeypatch.setattr(Image, "_getdecoder", lambda *a: Counting(real(*a)))
    _plain(data)
    assert len(calls) > 5  # the baseline really is chunk by chunk
    calls.clear()
    with open_image(data) as im:
        im.load()
    assert len(calls) == 1


def test_single_idat_png_is_passed_through_unchanged() -> None:
    data = _encode(Image.new("RGB", (16, 16), "red"))
    idats = [b for k, b in _chunks(data) if k == b"IDAT"]
    assert len(idats) == 1
    assert _png_in_one_piece(data) == (data, len(idats[0]))
    _assert_same_image(data)


def test_non_png_input_is_not_rewritten() -> None:
    """Pins: JPEG, WebP and GIF go to Pillow as they are (``_png_in_one_piece`` says None) and decode the same."""
    rgb = _noise("RGB", (90, 70))
    for data in (
        _encode(rgb, "JPEG", quality=80),
        _encode(_noise("RGBA", (90, 70)), "WEBP", quality=80),
        _encode(rgb, "WEBP", lossless=True),
        _encode(rgb.convert("P"), "GIF"),
        b"",
        b"not an image at all",
    ):
        assert _png_in_one_piece(data) is None
        if len(data) > 32:
            _assert_same_image(data)


def test_png_layouts_left_to_pillow() -> None:
    """Pins: an APNG and a PNG whose IDAT chunks are not consecutive are not rewritten."""
    frames = [_noise("RGB", (150, 150), seed=s) for s in range(2)]
    out = io.BytesIO()
    frames[0].save(out, "PNG", save_all=True, append_images=frames[1:])
    apng = out.getvalue()
    assert b"acTL" in apng
    assert _png_in_one_piece(apng) is None

    chunks = _chunks(_resplit_idat(_encode(_noise("RGB", (40, 40))), [1000]))
    first = next(i for i, (k, _) in enumerate(chunks) if k == b"IDAT")
    split = _assemble([*chunks[: first + 1], (b"tEXt", b"k\x00v"), *chunks[first + 1 :]])
    assert _png_in_one_piece(split) is None


def _outcome(load: Callable[[], Image.Image]) -> tuple[str, bytes]:
    try:
        im = load()
        im.load()
        return "ok", im.tobytes()
    except Exception as exc:  # any error is an acceptable refusal; only hangs and lies are not
        return "error", type(exc).__name__.encode()


@pytest.mark.timeout(20)
def test_truncated_png_raises_like_pillow_and_does_not_hang() -> None:
    """Pins: cut anywhere (inside a chunk, at a chunk boundary so whole IDATs are missing, in the header),
    open_image fails exactly when a plain Image.open fails, and otherwise yields the same pixels."""
    data = _resplit_idat(_encode(_noise("RGB", (96, 64))), [2000])
    boundaries, pos = [], 8
    for _, body in _chunks(data):
        boundaries += [pos, pos + 4, pos + 8, pos + 9, pos + 8 + len(body) // 2, pos + 8 + len(body)]
        pos += 12 + len(body)
    cuts = sorted({c for c in boundaries if 0 < c < len(data)} | set(range(1, 60)) | {len(data) - 1})
    errors = 0
    for cut in cuts:
        piece = data[:cut]
        plain = _outcome(functools.partial(lambda p: Image.open(io.BytesIO(p)), piece))
        mine = _outcome(functools.partial(open_image, piece))
        assert mine[0] == plain[0], cut
        if plain[0] == "ok":
            assert mine[1] == plain[1], cut
        errors += plain[0] == "error"
    assert errors > len(cuts) // 2  # the test really exercises failures
    # Ending right after an IDAT chunk, with later IDAT chunks missing, must not pass for a complete image.
    idat_ends = [b for b in boundaries if data[b - 8 : b - 4] != b"IEND"]
    assert _outcome(lambda: open_image(data[: idat_ends[len(idat_ends) // 2]]))[0] == "error"


@pytest.mark.timeout(20)
def test_corrupt_png_raises() -> None:
    """Pins: broken compressed data or an absurd chunk length raises (no hang, no garbage image)."""
    data = _resplit_idat(_encode(_noise("RGB", (64, 64))), [3000])
    chunks = _chunks(data)
    idat = [b for k, b in chunks if k == b"IDAT"]
    broken_stream = bytearray(b"".join(idat))
    for i in range(10, len(broken_stream), 97):
        broken_stream[i] ^= 0xFF
    first = next(i for i, (k, _) in enumerate(chunks) if k == b"IDAT")
    rest = [c for c in chunks if c[0] != b"IDAT"]
    corrupt = _assemble(
        [*rest[:first], (b"IDAT", bytes(broken_stream[:5000])), (b"IDAT", bytes(broken_stream[5000:])), *rest[first:]]
    )
    assert _outcome(lambda: open_image(corrupt))[0] == "error"

    pos = 8 + 12 + len(chunks[0][1])  # the first IDAT's length field
    huge = data[:pos] + (2**31 - 1).to_bytes(4, "big") + data[pos + 4 :]
    assert _png_in_one_piece(huge) is None
    assert _outcome(lambda: open_image(huge))[0] == "error"


# =========================================================================================================
# Previews and uploads
# =========================================================================================================


@pytest.mark.parametrize(
    ("data", "max_side", "size"),
    [
        (_encode(_noise("RGB", (300, 120))), 100, (100, 40)),
        (_encode(_noise("RGB", (120, 300))), 100, (40, 100)),
        (_encode(_noise("RGB", (40, 30))), 100, (40, 30)),  # smaller: left as is
        (_CASES["palette_trns_bytes"], 128, (128, 123)),
        (_CASES["interlaced_rgba"], 25, (25, 17)),  # 50x33
        (_CASES["la"], 60, (60, 50)),
        (_encode(_noise("RGB", (1536, 1024)).reduce(4), "JPEG"), 96, (96, 64)),  # JPEG draft path
        (_encode(_noise("RGBA", (300, 300)), "WEBP"), 77, (77, 77)),
    ],
)
def test_preview_is_a_jpeg_within_max_side(data: bytes, max_side: int, size: tuple[int, int]) -> None:
    preview = make_preview_sync(data, max_side)
    with Image.open(io.BytesIO(preview)) as im:
        assert im.format == "JPEG" and im.mode == "RGB"
        assert max(im.size) <= max_side
        assert im.size == size


def test_preview_flattens_transparency_onto_discord_grey() -> None:
    """Pins: fully transparent pixels come out as Discord's background (54, 57, 63), opaque ones as they are."""
    im = Image.new("RGBA", (64, 32), (255, 0, 0, 0))
    im.paste((0, 255, 0, 255), (32, 0, 64, 32))
    with Image.open(io.BytesIO(make_preview_sync(_encode(im), 64, quality=95))) as out:
        left, right = cast(tuple[int, ...], out.getpixel((8, 16))), cast(tuple[int, ...], out.getpixel((56, 16)))
    assert all(abs(a - b) <= 6 for a, b in zip(left, (54, 57, 63), strict=True)), left
    assert all(abs(a - b) <= 6 for a, b in zip(right, (0, 255, 0), strict=True)), right


@pytest.mark.parametrize(("fmt", "ext"), [("png", "png"), ("jpeg", "jpg"), ("webp", "webp"), ("bmp", "png")])
def test_upload_under_the_limit_is_the_same_bytes(fmt: str, ext: str) -> None:
    """Pins: at or under the limit the API's bytes are returned as they are (same object, not decoded:
    even bytes Pillow could not read pass), with the extension of the requested format."""
    data = b"\x89PNG not really an image" * 10
    for limit in (len(data), len(data) + 1, 10 * 1024 * 1024):
        up = fit_upload_sync(data, fmt, limit)
        assert up.data is data and up.extension == ext and not up.reencoded


async def test_fit_upload_under_the_limit_needs_no_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    async def no_thread(*_: object) -> None:
        raise AssertionError("fit_upload went to a thread for bytes that fit")

    monkeypatch.setattr(imaging, "run_blocking", no_thread)
    data = _encode(Image.new("RGB", (8, 8)))
    up = await fit_upload(data, "png", len(data))
    assert up.data is data and not up.reencoded


# =========================================================================================================
# SSE reader
# =========================================================================================================


async def _feed(pieces: list[bytes]) -> AsyncIterator[bytes]:
    for p in pieces:
        yield p


async def _sse(pieces: list[bytes]) -> list[SSEMessage]:
    return [m async for m in iter_sse(_feed(pieces))]


def _cut(data: bytes, cuts: list[int]) -> list[bytes]:
    edges = [0, *sorted(cuts), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(edges)]


async def test_multi_mb_data_line_split_at_every_awkward_boundary() -> None:
    """Pins: a 3 MB data line (CRLF stream) survives a cut inside the field name, around the colon and the
    space, inside ``\\r\\n``, just inside the payload, between events and in the blank line."""
    payload = json.dumps({"type": "image_generation.completed", "b64_json": "Q" * 3_000_000}).encode()
    first = b"event: image_generation.partial_image\r\ndata: " + payload + b"\r\n\r\n"
    stream = first + b"data: " + payload + b"\r\n\r\ndata: [DONE]\r\n\r\n"
    d = first.index(b"data:")
    end = first.index(b"\r\n\r\n")
    d2 = len(first)
    interesting = [
        *range(d - 2, d + 8),  # the first event's CRLF, inside "data", around ':' and ' ', into the payload
        *range(end - 1, end + 4),  # before / inside / between the two CRLFs
        *range(d2 - 1, d2 + 7),  # across the second event's field name and colon
        *range(len(stream) - 3, len(stream)),  # inside the [DONE] event's ending
        1,
    ]
    expected = [
        SSEMessage("image_generation.partial_image", payload),
        SSEMessage(None, payload),
        SSEMessage(None, "[DONE]"),
    ]
    for cut in interesting:
        assert await _sse(_cut(stream, [cut])) == expected, cut
    for a, b in [(d + 1, d + 3), (d + 6, end + 1), (end + 1, end + 2), (d + 7, d + 8), (d2 + 2, len(stream) - 1)]:
        msgs = await _sse(_cut(stream, [a, b]))
        assert msgs == expected, (a, b)
    msgs = await _sse(_cut(stream, list(range(d, len(stream), 65_521))))
    assert msgs == expected and msgs[2].is_done and not msgs[0].is_done
    assert all(type(m.raw) is bytes for m in msgs)


async def test_small_event_one_byte_at_a_time() -> None:
    stream = (
        b": keep-alive\r\n"
        b"event: image_generation.partial_image\r\n"
        b'data: {"a": 1,\r\n'
        b'data:  "b": 2}\r\n'
        b"id: 3\r\nretry: 100\r\nfoo: bar\r\n"
        b"\r\n"
        b"data: [DONE]\r\n\r\n"
    )
    msgs = await _sse([stream[i : i + 1] for i in range(len(stream))])
    assert msgs == [
        SSEMessage("image_generation.partial_image", '{"a": 1,\n "b": 2}'),  # only the first space is eaten
        SSEMessage(None, "[DONE]"),
    ]
    assert msgs[1].is_done


async def test_several_events_in_one_chunk_with_comments_and_no_trailing_blank_line() -> None:
    """Pins: events are separated by blank lines only, comments anywhere are ignored, the event name does
    not leak into the next event, and the last event is yielded without a blank line or final newline."""
    stream = (
        b":hello\nevent: a\ndata: 1\n\n"
        b"data: 2\n: comment between fields\ndata: 3\n\n"
        b"event: b\n\n"  # a name without data: dropped, and forgotten
        b"data: 4\n\n"
        b"data:\ndata\ndata: 5\n\n"  # empty data lines are kept as empty lines
        b"event: c\ndata: last"
    )
    expected = [
        SSEMessage("a", "1"),
        SSEMessage(None, "2\n3"),
        SSEMessage(None, "4"),
        SSEMessage(None, "\n\n5"),
        SSEMessage("c", "last"),
    ]
    assert await _sse([stream]) == expected
    assert await _sse([b"", stream, b""]) == expected  # empty chunks are ignored
    assert await _sse([stream + b"\r"]) == expected  # a final CR without its LF still ends the line
    assert await _sse([stream + b"\n"]) == expected


async def test_chunk_types_and_lazy_text() -> None:
    """Pins: bytearray / memoryview chunks are accepted, ``raw`` is bytes, ``data`` decodes with replacement."""
    stream = b"data: caf\xc3\xa9 \xff\n\n"
    msgs = await _sse([bytearray(stream[:7]), memoryview(stream[7:])])  # type: ignore[list-item]
    assert len(msgs) == 1 and type(msgs[0].raw) is bytes
    assert msgs[0].raw == "café ".encode() + b"\xff"
    assert msgs[0].data == "café \ufffd"


async def test_events_are_yielded_as_soon_as_they_end() -> None:
    """Pins: iter_sse does not wait for more input once a blank line ended an event (the preview of a
    partial frame must not wait for the next frame)."""
    queue: asyncio.Queue[bytes | None] = asyncio.Queue()

    async def chunks() -> AsyncIterator[bytes]:
        while (item := await queue.get()) is not None:
            yield item

    it = iter_sse(chunks()).__aiter__()
    queue.put_nowait(b"data: one\n")
    queue.put_nowait(b"\ndata: tw")
    first = await asyncio.wait_for(it.__anext__(), WAIT)
    assert first == SSEMessage(None, "one")
    nxt = asyncio.ensure_future(it.__anext__())
    await asyncio.sleep(0.01)
    assert not nxt.done()  # "tw" has no end yet
    queue.put_nowait(b"o\n\n")
    assert await asyncio.wait_for(nxt, WAIT) == SSEMessage(None, "two")
    queue.put_nowait(None)
    with pytest.raises(StopAsyncIteration):
        await it.__anext__()


# =========================================================================================================
# b64_json without a JSON scan
# =========================================================================================================

_IMAGE = random.Random(42).randbytes(450_001)  # 600 KB of base64: above OFFLOAD_BYTES and over two slices
_B64 = base64.b64encode(_IMAGE).decode()
assert len(_B64) > 2 * B64_CHUNK > OFFLOAD_BYTES and "/" in _B64


def _reference(data: str | bytes) -> tuple[dict[str, Any], bytes | None]:
    obj = json.loads(data)
    b64 = obj.pop("b64_json", None)
    return obj, base64.b64decode(b64) if b64 else None


def _events() -> dict[str, bytes]:
    meta = {"type": "image_generation.completed", "output_format": "png", "size": "1024x1024"}
    tricky = 'a "quoted" \u00e9 prompt \\ with "b64_json": "QUJD" inside and \u2028'
    return {
        "b64_last": json.dumps({**meta, "b64_json": _B64}).encode(),
        "b64_first": json.dumps({"b64_json": _B64, **meta}).encode(),
        "b64_middle_compact": json.dumps({"type": "x", "b64_json": _B64, "n": 1}, separators=(",", ":")).encode(),
        "escapes_elsewhere": json.dumps({**meta, "revised_prompt": tricky, "b64_json": _B64}).encode(),
        "escapes_elsewhere_ascii": json.dumps({"revised_prompt": tricky, "b64_json": _B64}, ensure_ascii=True).encode(),
        "raw_utf8_elsewhere": json.dumps({"revised_prompt": tricky, "b64_json": _B64}, ensure_ascii=False).encode(),
        "slash_escaped_b64": json.dumps({**meta, "b64_json": _B64}).replace("/", "\\/").encode(),
        "whitespace_around_colon": ('{"type": "x",\n  "b64_json" \t:\r\n  "' + _B64 + '" ,\n "n" : 2 }').encode(),
        "b64_json_as_another_value": json.dumps({"note": "b64_json", "b64_json": _B64}).encode(),
        "b64_json_quoted_in_value": json.dumps({"note": 'say "b64_json": "QUJD"', "b64_json": _B64}).encode(),
        "b64_json_in_a_key": json.dumps({'"b64_json': "QUJD", "b64_json": _B64}).encode(),
        "nested_b64_json_only": json.dumps({"type": "x", "item": {"b64_json": _B64}}).encode(),
        "nested_then_top_level": json.dumps({"item": {"b64_json": "QUJD"}, "b64_json": _B64}).encode(),
        "missing": json.dumps({**meta, "padding": "z" * (OFFLOAD_BYTES + 10)}).encode(),
        "empty": json.dumps({**meta, "b64_json": "", "padding": "z" * (OFFLOAD_BYTES + 10)}).encode(),
        "null": json.dumps({**meta, "b64_json": None, "padding": "z" * (OFFLOAD_BYTES + 10)}).encode(),
        "small_event": json.dumps({**meta, "b64_json": base64.b64encode(b"tiny").decode()}).encode(),
    }


_EVENTS = _events()


@pytest.mark.parametrize("name", sorted(_EVENTS))
def test_decode_event_matches_json_and_base64(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pins: whatever the layout, the result equals json.loads + base64.b64decode, for bytes and str input,
    and the fast path (``_split_b64``) and the plain JSON path give the same result."""
    data = _EVENTS[name]
    expected = _reference(data)
    assert _decode_event(data) == expected
    assert _decode_event(data.decode("utf-8")) == expected
    monkeypatch.setattr(payloads, "_split_b64", lambda _data: None)  # force the plain JSON path
    assert _decode_event(data) == expected


def test_split_b64_takes_plain_layouts_and_refuses_escapes() -> None:
    """Pins which payloads take the fast path: the plain layouts (the point of the optimisation) give the
    exact base64 text and JSON with an empty ``b64_json``; an escape inside the string is left to json."""
    for name in ("b64_last", "b64_first", "b64_middle_compact", "escapes_elsewhere", "whitespace_around_colon"):
        split = _split_b64(_EVENTS[name])
        assert split is not None, name
        rest, text = split
        assert bytes(text) == _B64.encode(), name
        obj = json.loads(rest)
        assert obj.pop("b64_json") == "" and obj == _reference(_EVENTS[name])[0], name
    assert _split_b64(_EVENTS["slash_escaped_b64"]) is None
    assert _split_b64(_EVENTS["missing"]) is None
    assert _split_b64(b'{"b64_json": null}') is None
    assert _split_b64(b'{"b64_json": "abc') is None  # unterminated
    assert _split_b64(b'{"b64_json"') is None


def _b64(n: int) -> bytes:
    return base64.b64encode(random.Random(n).randbytes(n))


@pytest.mark.parametrize(
    "text",
    [
        _b64(B64_CHUNK // 4 * 3 - 3),  # just under one slice
        _b64(B64_CHUNK // 4 * 3),  # exactly one slice
        _b64(B64_CHUNK // 4 * 3 + 1),  # one slice and "xx=="
        _b64(B64_CHUNK // 4 * 3 * 2 + 2),  # two slices and "xxx="
        _b64(B64_CHUNK // 4 * 3 * 3 + 3),  # exactly three slices
        _b64(700_000)[:-200] + b"\n" + _b64(700_000)[-200:],  # whitespace: the lenient fallback
        b"!" + _b64(400_000),  # a stray character in the first slice: lenient, like b64decode
        b"QQ==" + _b64(400_000),  # padding, then more: b64decode stops there, a slice must not go on
    ],
)
def test_sliced_b64decode_matches_base64(text: bytes) -> None:
    assert _b64decode(text) == base64.b64decode(text)
    assert _b64decode(memoryview(text)) == base64.b64decode(text)


def test_sliced_b64decode_raises_on_bad_padding() -> None:
    text = _b64(B64_CHUNK)[:-1]  # a length that is not a multiple of 4
    with pytest.raises(binascii.Error):
        base64.b64decode(text)
    with pytest.raises(binascii.Error):
        _b64decode(text)


def test_sliced_b64decode_stops_at_padding_like_base64() -> None:
    """Two base64 texts run together, with the first one's padding exactly at the end of a slice:
    ``base64.b64decode`` (and ``_b64decode`` of a short text) stop at the padding; the sliced decode goes on
    and returns 3 more bytes. Garbage input, but the result depends on where the slice boundary falls."""
    text = b"A" * (B64_CHUNK - 4) + b"QQ==" + b"QUJD"
    assert _b64decode(text) == base64.b64decode(text)


def test_fast_path_rejects_non_ascii_base64_like_the_json_path() -> None:
    """A non-ASCII character inside b64_json: the json path raises (``str.encode("ascii")``), the fast path
    silently drops it (lenient ``a2b_base64``): the two paths disagree on what is a bad event."""
    data = ('{"type": "x", "b64_json": "' + _B64[:100] + "\u00e9" + _B64[100:] + '"}').encode()
    with pytest.raises(ValueError):
        _reference(data)
    with pytest.raises(ValueError):
        _decode_event(data)


@pytest.mark.parametrize(
    "layout",
    [
        '{"b64_json": "%s", "b64_json": ""}',  # duplicated: JSON keeps the last one
        '{"item": {"b64_json": "%s"}, "b64_json": ""}',  # nested before the real (empty) one
    ],
)
def test_fast_path_never_picks_a_b64_json_that_json_would_not(layout: str) -> None:
    data = (layout % _B64).encode()
    assert len(data) > OFFLOAD_BYTES
    assert _decode_event(data) == _reference(data)


def test_preview_of_a_16_bit_grey_png() -> None:
    im = Image.new("I;16", (900, 300), 30000)
    buf = io.BytesIO()
    im.save(buf, "PNG")
    with Image.open(io.BytesIO(make_preview_sync(buf.getvalue(), 256))) as preview:
        assert preview.format == "JPEG" and preview.size == (256, 85)
