"""A server-sent events reader without a line-size limit.

Image events carry a multi-megabyte base64 payload on a single ``data:`` line, which is beyond
``aiohttp``'s ``readline`` limit. ``iter_sse`` splits the byte chunks itself, and since it runs on the
event loop it touches those megabytes as little as it can: each chunk is scanned once for newlines, and a
data line spread over many chunks is *not* joined here: the message keeps the pieces (``SSEMessage.take``)
and whoever needs one buffer joins them, off the loop (``bot/images/client.py`` does it in the thread that
parses the event; CPython releases the GIL while it joins a megabyte or more). ``raw`` joins on first use,
``data`` is the ``str`` form, decoded only if asked for. Measured on a 3.7 MB event: 4.3 ms of loop time per
event with a growing ``bytearray`` and ``str`` decoding, about 1 ms with one join on the loop; in the burst
profile at N=64 that join was the largest single cost left on the loop (docs/development/performance-history.md).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from .errors import ResponseTooLarge, StreamError

__all__ = ["DONE", "SSEMessage", "iter_sse"]

DONE = "[DONE]"


Pieces = list[bytes]  # one data value in the pieces it arrived in, in order (joined: the value)


class SSEMessage:
    """One event: its name (``event``) and its data, as bytes (``raw``) or text (``data``), or still in
    the pieces it arrived in (``take``)."""

    __slots__ = ("_pieces", "_raw", "_text", "event", "size")

    def __init__(self, event: str | None, data: str | bytes | Pieces) -> None:
        self._text: str | None = None
        self._raw: bytes | None = None
        self._pieces: Pieces | None = None
        self.event = event
        if isinstance(data, str):
            self._raw, self._text = data.encode("utf-8"), data
        elif isinstance(data, list):
            self._pieces = data
        else:
            self._raw = bytes(data)
        self.size = len(self._raw) if self._raw is not None else sum(len(p) for p in self._pieces or ())

    @property
    def raw(self) -> bytes:
        """The data as one ``bytes`` (joins the pieces on first use: on the loop, if called there)."""
        if self._raw is None:
            self._raw, self._pieces = b"".join(self._pieces or ()), None
        return self._raw

    def take(self) -> bytes | Pieces:
        """The data, as one ``bytes`` or still in pieces (join them off the loop); the message lets go of it."""
        data: bytes | Pieces = self._raw if self._raw is not None else (self._pieces or [])
        self._raw, self._pieces, self._text = b"", None, None
        return data

    @property
    def data(self) -> str:
        if self._text is None:
            self._text = self.raw.decode("utf-8", "replace")
        return self._text

    @property
    def is_done(self) -> bool:
        """The ``data: [DONE]`` end marker some gateways (e.g. new-api) send."""
        return self.size < 64 and self.raw.strip() == DONE.encode()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SSEMessage):
            return NotImplemented
        return self.event == other.event and self.raw == other.raw

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        head = self._raw if self._raw is not None else (self._pieces or [b""])[0]
        shown = head[:60].decode("utf-8", "replace") + ("…" if self.size > 60 else "")
        return f"SSEMessage(event={self.event!r}, data={shown!r}, bytes={self.size})"


class _Parser:
    """Accumulates fields of one event; ``line()`` returns a message when a blank line ends one."""

    __slots__ = ("data", "event")

    def __init__(self) -> None:
        self.event: str | None = None
        self.data: list[bytes | Pieces] = []

    def line(self, raw: bytes) -> SSEMessage | None:
        end = len(raw) - 1 if raw.endswith(b"\r") else len(raw)
        if end == 0:
            return self.flush()
        if raw[:1] == b":":  # comment / keep-alive
            return None
        colon = raw.find(b":", 0, end)
        if colon < 0:
            name, start = raw[:end], end
        else:
            name, start = raw[:colon], colon + 1
            if raw[start : start + 1] == b" ":
                start += 1
        if name == b"data":
            # One copy of the value (for a data line that is the whole payload, and no more than that).
            self.data.append(raw[start:end] if (start, end) != (0, len(raw)) else raw)
        elif name == b"event":
            self.event = raw[start:end].decode("utf-8", "replace") or None
        # "id" and "retry" are irrelevant here; unknown fields are ignored (per the SSE spec).
        return None

    def pieces_line(self, pieces: Pieces, tail: bytes) -> SSEMessage | None:
        """The line that began in ``pieces`` (the chunks it spans) and ends with ``tail``."""
        pieces.append(tail)
        if pieces[0].startswith(b"data: ") and len(pieces[0]) > 6:
            # A long data line (an image): its value stays in the pieces it came in (only the first piece is
            # copied, to cut the "data: " prefix off); see the module docstring.
            pieces[0] = pieces[0][6:]
            return self.data_pieces(pieces)
        return self.line(b"".join(pieces))

    def data_pieces(self, pieces: Pieces) -> SSEMessage | None:
        """A ``data:`` line whose value (after ``data: ``) is ``pieces`` joined: what ``line`` does, without
        joining them (a ``\r`` line end is cut off the last non-empty piece, a small copy)."""
        for i in range(len(pieces) - 1, -1, -1):
            if pieces[i]:
                if pieces[i].endswith(b"\r"):
                    pieces[i] = pieces[i][:-1]
                break
        self.data.append(pieces)
        return None

    def finish(self, pending: list[bytes]) -> list[SSEMessage]:
        """What is left when the stream ends: a last line without its line end (``pending``, in pieces), and
        an event without its blank line."""
        rest = [self.line(b"".join(pending))] if pending else []
        rest.append(self.flush())
        return [msg for msg in rest if msg is not None]

    def flush(self) -> SSEMessage | None:
        if not self.data:
            self.event = None
            return None
        if len(self.data) == 1:
            data = self.data[0]
        else:  # several data lines (small, in practice): one value joined with newlines
            data = b"\n".join(b"".join(d) if isinstance(d, list) else d for d in self.data)
        msg = SSEMessage(self.event, data)
        self.event = None
        self.data = []
        return msg


async def iter_sse(chunks: AsyncIterator[bytes], max_event_bytes: int | None = None) -> AsyncIterator[SSEMessage]:
    """Yield the events of an SSE byte stream (``\\n`` or ``\\r\\n`` line ends).

    Multi-line data is joined with ``\\n``; a last event without the trailing blank line is still
    yielded; ``data: [DONE]`` is yielded as an ordinary message (see ``SSEMessage.is_done``). An event
    (everything up to the blank line that ends it) longer than ``max_event_bytes`` raises
    ``ResponseTooLarge`` as soon as it is that long, so an endless line holds at most that much memory.
    """
    budget = _EventBudget(max_event_bytes)
    parser = _Parser()
    pending: list[bytes] = []  # the start of a line that has not ended yet, in pieces
    ready: list[SSEMessage] = []  # handed out through this list: no local holds a message while suspended
    async for chunk in chunks:
        if not chunk:
            continue
        chunk = bytes(chunk)
        start = 0
        while True:
            nl = chunk.find(b"\n", start)
            if nl < 0:
                break
            budget.add(nl + 1 - start)
            blank = not pending and nl - start <= 1 and chunk[start:nl] in (b"", b"\r")
            if pending:
                msg = parser.pieces_line(pending, chunk[start:nl])
                pending = []  # handed over: the parser may keep the pieces themselves
            else:
                msg = parser.line(chunk[start:nl])
            start = nl + 1
            if blank or msg is not None:
                budget.size = 0
            if msg is not None:
                ready.append(msg)
                msg = None
                yield ready.pop()
        if start < len(chunk):
            budget.add(len(chunk) - start)
            pending.append(chunk[start:] if start else chunk)
        chunk = b""
    rest = parser.finish(pending)
    while rest:
        yield rest.pop(0)


class _EventBudget:
    """The bytes of the event being read, against ``limit`` (None: no limit)."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.size = 0

    def add(self, n: int) -> None:
        self.size += n
        if self.limit is not None and self.size > self.limit:
            raise ResponseTooLarge(f"a stream event over {self.limit} bytes")


class DataSeen:
    """Watches a stream's chunks for the first event (a ``data:`` or ``event:`` field; ``: PING`` comments do
    not count) and marks a ``StreamError`` raised before it as ``before_first_event``."""

    __slots__ = ("any",)

    def __init__(self) -> None:
        self.any = False

    async def watch(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        try:
            async for chunk in chunks:
                if not self.any and (b"data" in chunk or b"event" in chunk):
                    self.any = True
                yield chunk
                chunk = b""
        except StreamError as err:
            err.before_first_event = not self.any
            raise
