"""Validate the options of ``/imagine`` and ``/edit`` against the configured model, before any API call.

``parse_options`` turns raw option values into ``ImageOptions`` or raises ``OptionError``, shown to the user
(ephemeral) in the words ``bot/messages/`` gives its code. Pure logic, no Discord.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot import CodedError
from bot.images_api.models import COMPLEXITIES, STILL_FORMATS, ModelInfo, models_with

FORMATS = STILL_FORMATS
ALL_FORMATS = (*STILL_FORMATS, "gif", "svg")
BACKGROUNDS = ("auto", "opaque", "transparent")
MAX_COUNT = 10
FRAMES_MIN, FRAMES_MAX = 2, 16
FRAME_MS_MIN, FRAME_MS_MAX = 20, 10_000


@dataclass(frozen=True, slots=True)
class ImageOptions:
    """Validated options, as sent to the API (None = let the API decide)."""

    size: str | None = None
    quality: str | None = None
    background: str | None = None
    output_format: str | None = None
    count: int = 1
    complexity: str | None = None
    frame_count: int | None = None  # gif only
    frame_duration_ms: int | None = None  # gif only

    def as_settings(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "size": self.size,
            "quality": self.quality,
            "background": self.background,
            "format": self.output_format,
            "count": self.count,
        }
        for key in ("complexity", "frame_count", "frame_duration_ms"):  # only when set: older rows stay alike
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        return out

    @classmethod
    def from_settings(cls, d: dict[str, Any]) -> ImageOptions:
        frames, duration = d.get("frame_count"), d.get("frame_duration_ms")
        return cls(
            d.get("size"),
            d.get("quality"),
            d.get("background"),
            d.get("format"),
            int(d.get("count") or 1),
            d.get("complexity"),
            int(frames) if frames is not None else None,
            int(duration) if duration is not None else None,
        )

    @property
    def preview_format(self) -> bool:
        """GIF and SVG: never streamed, no partial frames, no mask."""
        return self.output_format in ("gif", "svg")


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


def format_choices(model: ModelInfo | None = None) -> list[Choice]:
    formats = model.output_formats if model is not None else FORMATS
    return [Choice(f.upper(), f) for f in formats]


def complexity_choices(model: ModelInfo) -> list[Choice]:
    return [Choice(c, c) for c in COMPLEXITIES] if model.complexity else []


def parse_options(
    model: ModelInfo,
    *,
    size: str | None = None,
    quality: str | None = None,
    background: str | None = None,
    output_format: str | None = None,
    count: int | None = None,
    complexity: str | None = None,
    frame_count: int | None = None,
    frame_duration_ms: int | None = None,
    edit: bool = False,
    mask: bool = False,
    markup: bool = False,
) -> ImageOptions:
    resolved_size: str | None = None
    if size:
        try:
            resolved_size = model.resolve_size(size.strip(), allow_experimental=True)  # up to 3840x2160
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
        if output_format not in ALL_FORMATS:
            raise OptionError("format")
        if output_format not in model.output_formats:
            raise OptionError("format_model", format=output_format.upper(), model=model.name)
    if complexity:
        complexity = complexity.strip().lower()
        if complexity not in COMPLEXITIES:
            raise OptionError("complexity")
        if not model.complexity:
            raise OptionError("complexity_model", model=model.name)
    if (frame_count is not None or frame_duration_ms is not None) and output_format != "gif":
        raise OptionError("frames_gif_only")
    if frame_count is not None and not FRAMES_MIN <= frame_count <= FRAMES_MAX:
        raise OptionError("frame_count", low=FRAMES_MIN, high=FRAMES_MAX)
    if frame_duration_ms is not None and not FRAME_MS_MIN <= frame_duration_ms <= FRAME_MS_MAX:
        raise OptionError("frame_duration", low=FRAME_MS_MIN, high=FRAME_MS_MAX)
    if markup and not model.markup:
        raise OptionError("markup_model", model=model.name, models=", ".join(models_with("markup")))
    if markup and mask:
        raise OptionError("markup_mask")
    if output_format in ("gif", "svg") and mask:
        raise OptionError("preview_mask", format=output_format.upper())
    if background == "transparent" and output_format == "jpeg":
        raise OptionError("jpeg_transparent")
    if background == "transparent" and output_format is None:
        output_format = "png"
    n = 1 if count is None else count
    if not 1 <= n <= MAX_COUNT:
        raise OptionError("count", max=MAX_COUNT)
    if output_format == "svg" and n != 1:
        raise OptionError("svg_count")
    del edit  # edits and generations share the rules above; kept for callers that say which they are
    return ImageOptions(
        resolved_size, quality, background, output_format, n, complexity or None, frame_count, frame_duration_ms
    )


def _clip(text: str, limit: int = 40) -> str:
    text = text.replace("`", "'")
    return text if len(text) <= limit else text[: limit - 1] + "…"
