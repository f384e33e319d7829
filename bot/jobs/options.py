"""Validate the options of ``/imagine`` and ``/edit`` against the configured model, before any API call.

``parse_options`` turns raw option values into ``ImageOptions`` or raises ``OptionError``, shown to the user
(ephemeral) in the words ``bot/messages/`` gives its code. Pure logic, no Discord.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot import CodedError
from bot.images_api.models import ModelInfo

FORMATS = ("png", "jpeg", "webp")
BACKGROUNDS = ("auto", "opaque", "transparent")
MAX_COUNT = 10


@dataclass(frozen=True, slots=True)
class ImageOptions:
    """Validated options, as sent to the API (None = let the API decide)."""

    size: str | None = None
    quality: str | None = None
    background: str | None = None
    output_format: str | None = None
    count: int = 1

    def as_settings(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "quality": self.quality,
            "background": self.background,
            "format": self.output_format,
            "count": self.count,
        }

    @classmethod
    def from_settings(cls, d: dict[str, Any]) -> ImageOptions:
        return cls(d.get("size"), d.get("quality"), d.get("background"), d.get("format"), int(d.get("count") or 1))


class OptionError(CodedError, ValueError):
    """An option value or combination the model cannot do: ``code`` names why, ``params`` fill the words.

    ``bot/messages/`` (``option_error``) words it, in the reader's language; ``str()`` is for logs.
    """


@dataclass(frozen=True, slots=True)
class Choice:
    name: str  # what Discord shows
    value: str  # what the bot receives


def size_choices(model: ModelInfo) -> list[Choice]:
    return [Choice(label, value) for label, value in model.sizes_for_choices()][:25]


def quality_choices(model: ModelInfo) -> list[Choice]:
    return [Choice(q, q) for q in model.qualities][:25]


def background_choices(model: ModelInfo) -> list[Choice]:
    return [Choice(b, b) for b in BACKGROUNDS if b != "transparent" or model.supports_transparent]


def format_choices() -> list[Choice]:
    return [Choice(f.upper() if f != "jpeg" else "JPEG", f) for f in FORMATS]


def parse_options(
    model: ModelInfo,
    *,
    size: str | None = None,
    quality: str | None = None,
    background: str | None = None,
    output_format: str | None = None,
    count: int | None = None,
) -> ImageOptions:
    resolved_size: str | None = None
    if size:
        try:
            resolved_size = model.resolve_size(size.strip())
        except ValueError as exc:
            raise OptionError("size", size=_clip(size), model=model.name, reason=str(exc)) from None
    if quality:
        quality = quality.strip().lower()
        if quality not in model.qualities:
            raise OptionError(
                "quality",
                quality=_clip(quality),
                model=model.name,
                choices=", ".join(f"`{q}`" for q in model.qualities),
            )
    if background:
        background = background.strip().lower()
        if background not in BACKGROUNDS:
            raise OptionError("background")
        if background == "transparent" and not model.supports_transparent:
            raise OptionError("transparent", model=model.name)
    if output_format:
        output_format = output_format.strip().lower()
        if output_format == "jpg":
            output_format = "jpeg"
        if output_format not in FORMATS:
            raise OptionError("format")
    if background == "transparent" and output_format == "jpeg":
        raise OptionError("jpeg_transparent")
    if background == "transparent" and output_format is None:
        output_format = "png"
    n = 1 if count is None else count
    if not 1 <= n <= MAX_COUNT:
        raise OptionError("count", max=MAX_COUNT)
    return ImageOptions(resolved_size, quality, background, output_format, n)


def _clip(text: str, limit: int = 40) -> str:
    text = text.replace("`", "'")
    return text if len(text) <= limit else text[: limit - 1] + "…"
