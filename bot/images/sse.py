"""A server-sent events reader without a line-size limit.

Image events carry a multi-megabyte base64 payload on a single ``data:`` line, which is beyond
``aiohttp``'s ``readline`` limit. ``iter_sse`` splits the byte chunks itself: a ``bytearray`` buffer,
``find`` starting where the previous scan stopped (never re-scanning), and one compaction per chunk.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

__all__ = ["DONE", "SSEMessage", "iter_sse"]

DONE = "[DONE]"


@dataclass(slots=True)
class SSEMessage:
    event: str | None
    data: str

    @property
    def is_done(self) -> bool:
        """The ``data: [DONE]`` end marker some gateways (e.g. new-api) send."""
        return self.data.strip() == DONE


class _Parser:
    """Accumulates fields of one event; ``line()`` returns a message when a blank line ends one."""

    __slots__ = ("data", "event")

    def __init__(self) -> None:
        self.event: str | None = None
        self.data: list[str] = []

    def line(self, raw: bytes | bytearray) -> SSEMessage | None:
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        if not raw:
            return self.flush()
        if raw[:1] == b":":  # comment / keep-alive
            return None
        text = raw.decode("utf-8", "replace")
        name, sep, value = text.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self.data.append(value)
        elif name == "event":
            self.event = value or None
        # "id" and "retry" are irrelevant here; unknown fields are ignored (per the SSE spec).
        return None

    def flush(self) -> SSEMessage | None:
        if not self.data:
            self.event = None
            return None
        msg = SSEMessage(event=self.event, data="\n".join(self.data))
        self.event = None
        self.data = []
        return msg


async def iter_sse(chunks: AsyncIterator[bytes]) -> AsyncIterator[SSEMessage]:
    """Yield the events of an SSE byte stream (``\\n`` or ``\\r\\n`` line ends).

    Multi-line data is joined with ``\\n``; a last event without the trailing blank line is still
    yielded; ``data: [DONE]`` is yielded as an ordinary message (see ``SSEMessage.is_done``).
    """
    buf = bytearray()
    parser = _Parser()
    async for chunk in chunks:
        if not chunk:
            continue
        scan_from = len(buf)  # the old tail holds no newline: scan only the new bytes
        buf += chunk
        start = 0
        while True:
            nl = buf.find(b"\n", scan_from)
            if nl < 0:
                break
            msg = parser.line(buf[start:nl])
            if msg is not None:
                yield msg
            start = scan_from = nl + 1
        if start:
            del buf[:start]
    if buf:
        msg = parser.line(buf)
        if msg is not None:
            yield msg
    msg = parser.flush()
    if msg is not None:
        yield msg
