"""Reading the Images API's payloads: stream events and JSON answers, image fields and file parts.

Pure functions, run in a thread for big payloads (``bot/images/client.py`` decides). A stream event's
``b64_json`` is cut out of the JSON without scanning its megabytes; a partial frame's field stays encoded
(``PartialImage.decode``: only if a preview of it is ever sent); every other image field is decoded with
SIMD base64 (``bot/images/b64.py``).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from typing import Any

import aiohttp

from .b64 import b64decode
from .types import EditRequest, GenerateRequest, InputImage

log = logging.getLogger(__name__)

OFFLOAD_BYTES = 32 * 1024  # payloads larger than this are parsed in a thread

_FORMAT_FOR_TYPE = {
    "image/png": "png",
    "image/jpeg": "jpeg",
    "image/webp": "webp",
    "image/gif": "gif",
    "image/svg+xml": "svg",
}

_EXT_FOR_TYPE = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}


def _sniff_content_type(data: bytes) -> str | None:
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if data.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<"):
        return "image/svg+xml"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def _format_of(data: bytes) -> str:
    """The output format of image bytes, sniffed (gateways may not say)."""
    return _FORMAT_FOR_TYPE.get(_sniff_content_type(data[:16]) or "", "png")


def _file_part(img: InputImage, fallback_stem: str) -> tuple[str, str]:
    """(filename, content type): a real image type and a matching extension (gateways use it)."""
    ctype = (img.content_type or "").split(";")[0].strip().lower()
    if ctype == "image/jpg":
        ctype = "image/jpeg"
    if ctype not in _EXT_FOR_TYPE:
        ctype = _sniff_content_type(img.data) or "image/png"
        if ctype not in _EXT_FOR_TYPE:
            ctype = "image/png"
    ext = _EXT_FOR_TYPE[ctype]
    name = os.path.basename(img.filename or "") or fallback_stem
    stem, dot, old_ext = name.rpartition(".")
    if not dot or old_ext.lower() not in ("png", "jpg", "jpeg", "webp"):
        stem = name
    elif (old_ext.lower() == "jpeg" and ext == "jpg") or old_ext.lower() == ext:
        return name, ctype
    return f"{stem or fallback_stem}.{ext}", ctype


def _b64decode(text: bytes | memoryview) -> bytes:
    """base64 of an image field, SIMD (``bot/images/b64.py``): what ``base64.b64decode`` gives; raises
    ``ValueError`` for non-ASCII text, as ``str.encode("ascii")`` does on the plain JSON path."""
    return b64decode(text)


_B64_KEY = b'"b64_json"'


def _split_b64(data: bytes) -> tuple[bytes, memoryview] | None:
    """(the JSON with an empty ``b64_json`` string, the base64 text), without scanning the megabytes as
    JSON; None when the payload is not laid out plainly (then it is parsed the ordinary way)."""
    key = data.find(_B64_KEY)
    if key < 0:
        return None
    i = key + len(_B64_KEY)
    while data[i : i + 1] in (b" ", b"\t", b"\r", b"\n"):
        i += 1
    if data[i : i + 1] != b":":
        return None
    i += 1
    while data[i : i + 1] in (b" ", b"\t", b"\r", b"\n"):
        i += 1
    if data[i : i + 1] != b'"':
        return None
    end = data.find(b'"', i + 1)
    if end < 0 or data.find(b"\\", i + 1, end) >= 0:
        return None  # escapes inside: let json handle it
    if data.find(_B64_KEY, end) >= 0:
        return None  # the key again (nested or duplicated): only json can tell which one counts
    return data[: i + 1] + data[end:], memoryview(data)[i + 1 : end]


def _parse_event(data: str | bytes) -> tuple[dict[str, Any], bytes | memoryview | None]:
    """json.loads of one event, its ``b64_json`` cut out and returned still encoded (None if absent/empty)."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    split = _split_b64(data) if len(data) > OFFLOAD_BYTES else None
    if split is not None:
        rest, b64_text = split
        obj = json.loads(rest)
        if isinstance(obj, dict) and obj.get("b64_json") == "":
            obj.pop("b64_json")
            return obj, b64_text if len(b64_text) else None
    obj = json.loads(data)
    if not isinstance(obj, dict):
        raise ValueError("event data is not a JSON object")
    b64 = obj.pop("b64_json", None)
    return obj, b64.encode("ascii") if isinstance(b64, str) and b64 else None


def _decode_event(data: str | bytes) -> tuple[dict[str, Any], bytes | None]:
    """json.loads + base64 decode of one event."""
    obj, text = _parse_event(data)
    return obj, _b64decode(text) if text is not None else None


def _read_event(data: str | bytes | list[bytes], name: str | None) -> tuple[dict[str, Any], bytes | memoryview | None]:
    """One stream event and its image field (in a thread for big payloads; ``data`` may still be in the
    pieces the SSE reader kept, joined here). A partial frame's field is left encoded
    (``PartialImage.decode``: only if a preview of it is ever sent); any other is decoded."""
    if isinstance(data, list):
        data = b"".join(data)
    obj, text = _parse_event(data)
    kind = str(obj.get("type") or name or "")
    if text is None or kind.endswith(".partial_image"):
        return obj, text
    return obj, _b64decode(text)


def _decode_response(body: bytes) -> tuple[dict[str, Any], list[tuple[dict[str, Any], bytes | None]]]:
    obj = json.loads(body)
    if not isinstance(obj, dict):
        raise ValueError("response is not a JSON object")
    items: list[tuple[dict[str, Any], bytes | None]] = []
    data = obj.get("data") or []
    for item in [data] if isinstance(data, dict) else data:  # some gateways send one object, not a list
        if not isinstance(item, dict):
            continue
        item = dict(item)
        b64 = item.pop("b64_json", None)
        raw = None
        if isinstance(b64, str) and b64:
            raw = _b64decode(b64.encode("ascii"))
        items.append((item, raw))
    return obj, items


def edit_form(
    fields: dict[str, Any], images: Sequence[InputImage], mask: InputImage | None, markup: InputImage | None = None
) -> aiohttp.FormData:
    """The multipart body of an ``/images/edits`` request: the fields, then the images and the mask (or the
    markup: the API refuses the two together)."""
    form = aiohttp.FormData(quote_fields=False)
    for key, value in fields.items():
        if isinstance(value, bool):
            value = "true" if value else "false"
        form.add_field(key, str(value))
    field = "image" if len(images) == 1 else "image[]"
    for i, img in enumerate(images):
        filename, ctype = _file_part(img, f"image{i}")
        form.add_field(field, img.data, filename=filename, content_type=ctype)
    if mask is not None:
        filename, ctype = _file_part(mask, "mask")
        form.add_field("mask", mask.data, filename=filename, content_type=ctype)
    elif markup is not None:
        filename, ctype = _file_part(markup, "markup")
        form.add_field("markup", markup.data, filename=filename, content_type=ctype)
    return form


def common_fields(body: dict[str, Any], req: GenerateRequest | EditRequest, stream: bool) -> None:
    """The fields generations and edits share (``stream``: ask for partial frames)."""
    body["n"] = req.n
    for name in ("size", "quality", "background", "output_format", "complexity"):
        value = getattr(req, name)
        if value is not None:
            body[name] = value
    if req.output_compression is not None:
        if (req.output_format or "png") in ("jpeg", "webp"):
            body["output_compression"] = req.output_compression
        else:
            log.debug("output_compression omitted: only valid with jpeg/webp output")
    if req.output_format == "gif":  # the frame settings mean nothing for any other format
        if req.frame_count is not None:
            body["frame_count"] = req.frame_count
        if req.frame_duration_ms is not None:
            body["frame_duration_ms"] = req.frame_duration_ms
    if req.user:  # both: gateways such as new-api drop safety_identifier but keep user
        body["user"] = req.user
        body["safety_identifier"] = req.user
    if stream:
        body["stream"] = True
        body["partial_images"] = req.partial_images
