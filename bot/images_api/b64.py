"""base64 of image fields (``b64_json``): SIMD decoding, and counters the benchmark reads.

``b64decode`` gives exactly what ``base64.b64decode`` gives (and raises ``ValueError`` for non-ASCII text, as
``str.encode("ascii")`` does on the plain JSON path of ``bot/images/client.py``): well-formed text goes
through ``pybase64`` (SIMD, ~0.2 ms for a 2.5 MB field here against ~10-15 ms for ``binascii``, so the
GIL is held too briefly to matter and the field needs no slicing); anything ``pybase64`` refuses in strict
mode (whitespace, data after padding, non-ASCII) is decoded the lenient standard way, in one go.

Counters (``DECODES``): partial frames and final images decoded. A partial frame is kept encoded until a
preview of it is rendered (``PartialImage.decode`` in ``bot/images/types.py``), so the benchmark can check
that decodes of partial frames equal previews sent. When the setting ``BENCH_STATS_FILE`` names a file, the
counters are written there as JSON when the process exits (the benchmark sets it; nothing else does).
"""

from __future__ import annotations

import atexit
import binascii
import json
import threading
from typing import Any

try:
    import pybase64 as _simd
except ImportError:  # pragma: no cover - a dependency; the standard decoder still works without it
    _simd = None  # type: ignore[assignment]

__all__ = ["DECODES", "b64decode", "count", "snapshot"]

DECODES: dict[str, int] = {"partial": 0, "final": 0}
_lock = threading.Lock()


def count(kind: str) -> None:
    with _lock:
        DECODES[kind] = DECODES.get(kind, 0) + 1


def snapshot() -> dict[str, Any]:
    with _lock:
        return {"decodes": dict(DECODES), "simd": _simd is not None}


def b64decode(text: bytes | bytearray | memoryview) -> bytes:
    """Decode base64 text; the same bytes (and errors) as ``base64.b64decode`` of that text."""
    if _simd is not None:
        try:
            return _simd.b64decode(text, validate=True)
        except (binascii.Error, ValueError, TypeError):
            pass  # not strictly well-formed: the standard (lenient) decoder decides
    return _lenient(text)


def _lenient(text: bytes | bytearray | memoryview) -> bytes:
    raw = bytes(text)
    if not raw.isascii():
        raise ValueError("b64_json is not ASCII")
    return binascii.a2b_base64(raw)


def _write_stats(path: str) -> None:
    try:
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(snapshot(), fh)
    except OSError:
        pass


def write_stats_at_exit(path: str) -> None:
    """For the benchmark (setting ``BENCH_STATS_FILE``): the counters go to ``path`` when the process ends."""
    atexit.register(_write_stats, path)
