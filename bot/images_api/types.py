"""Typed requests and results of the Images API client.

These types are the contract between the client (``bot/images/client.py``), the job runner
(``bot/jobs.py``) and the fake Images API. No Discord imports here.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from typing import Any

from bot.images_api.b64 import b64decode

# Content types the Images API accepts for input images, by output format / file extension.
CONTENT_TYPES: dict[str, str] = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
# Output formats of the gated previews: never streamed, no partial frames, no mask, no compression.
PREVIEW_FORMATS = frozenset({"gif", "svg"})


def user_hash_key(secret: str | None, discord_token: str) -> bytes:
    """The key of ``hashed_user``: ``USER_HASH_SECRET``, or one derived from the bot token when none is set
    (secret as the token is, and stable while the token is)."""
    if secret:
        return secret.encode()
    return hmac.new(discord_token.encode(), b"imagebot:user-hash-key", hashlib.sha256).digest()


def hashed_user(user_id: int, key: bytes) -> str:
    """The end-user identifier sent as ``user``/``safety_identifier``: a keyed hash (HMAC-SHA256) of the
    Discord id, as the OpenAI SDK advises. Keyed, because Discord ids are few and public enough that a plain
    hash of one is looked up by hashing every candidate; without the deployment's key nobody can."""
    return "imagebot-" + hmac.new(key, f"discord-user:{user_id}".encode(), hashlib.sha256).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class InputImage:
    """One file part of an edit request (``image``/``image[]``/``mask``)."""

    filename: str  # with a real extension: gateways guess the type from it
    data: bytes
    content_type: str  # image/png, image/jpeg or image/webp; never application/octet-stream


@dataclass(frozen=True, slots=True)
class GenerateRequest:
    model: str
    prompt: str
    n: int = 1
    size: str | None = None
    quality: str | None = None
    background: str | None = None
    output_format: str | None = None
    output_compression: int | None = None
    moderation: str | None = None
    partial_images: int = 0
    stream: bool = True
    user: str | None = None  # sent as user and safety_identifier (see hashed_user)
    complexity: str | None = None  # low | medium | high, where the model takes it
    frame_count: int | None = None  # gif: 2-16
    frame_duration_ms: int | None = None  # gif


@dataclass(frozen=True, slots=True)
class EditRequest:
    model: str
    prompt: str
    images: tuple[InputImage, ...]  # 1..16; one is sent as ``image``, several as ``image[]``
    mask: InputImage | None = None
    n: int = 1
    size: str | None = None
    quality: str | None = None
    background: str | None = None
    output_format: str | None = None
    output_compression: int | None = None
    input_fidelity: str | None = None
    partial_images: int = 0
    stream: bool = True
    user: str | None = None
    complexity: str | None = None
    frame_count: int | None = None
    frame_duration_ms: int | None = None
    markup: InputImage | None = None  # a transparent layer of marks to act on; never with ``mask``


@dataclass(frozen=True, slots=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    input_text_tokens: int = 0
    input_image_tokens: int = 0
    raw: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> Usage | None:
        if not d or not isinstance(d, dict):
            return None
        details = d.get("input_tokens_details") or {}
        if not isinstance(details, dict):
            details = {}
        return cls(
            input_tokens=_count(d.get("input_tokens")),
            output_tokens=_count(d.get("output_tokens")),
            total_tokens=_count(d.get("total_tokens")),
            input_text_tokens=_count(details.get("text_tokens")),
            input_image_tokens=_count(details.get("image_tokens")),
            raw=dict(d),
        )


def _count(value: object) -> int:
    """A token count as sent; -1 (implausible: ``bot/jobs/usage_check.py`` charges the estimate) when it is
    not a finite number."""
    if value is None or value == "":
        return 0
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError, OverflowError):
        return -1


@dataclass(frozen=True, slots=True)
class PartialImage:
    """A partial frame: ``index`` is the API's 0-based ``partial_image_index``.

    The frame stays base64-encoded (``b64``, a view into the event it came in) until someone asks for its
    bytes with ``decode()``: most frames of a busy server are superseded by a newer frame or by the result
    before a preview of them could be sent, and such a frame is dropped without ever being decoded.
    ``decode()`` is blocking CPU work (a PNG's worth of base64): call it off the event loop, and it raises
    ``ValueError`` on malformed base64."""

    index: int
    b64: bytes | memoryview  # the ``b64_json`` text, still encoded
    output_format: str = "png"
    size: str | None = None

    def decode(self) -> bytes:
        return b64decode(self.b64)


@dataclass(frozen=True, slots=True)
class CompletedImage:
    data: bytes
    output_format: str = "png"
    size: str | None = None
    quality: str | None = None
    background: str | None = None
    usage: Usage | None = None
    request_id: str | None = None
    revised_prompt: str | None = None
    svg_usage: Usage | None = None  # the vector pass of an SVG, priced on its own


ImageEvent = PartialImage | CompletedImage
