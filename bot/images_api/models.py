"""Registry of the GPT image models: sizes, qualities, options, token estimates and prices.

The model name is configuration. Snapshots (``gpt-image-2-2026-04-21``) resolve to their family; names a
gateway invents get conservative defaults (``known=False``). Prices (USD per 1M tokens) are defaults the
configuration may override per family.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

from .types import Usage

__all__ = [
    "ASPECT_CHOICES",
    "MODELS",
    "ModelInfo",
    "SizeChoice",
    "get_model",
    "input_image_tokens",
]

CLASSIC_SIZES: tuple[str, ...] = ("1024x1024", "1536x1024", "1024x1536", "auto")
BASE_QUALITIES: tuple[str, ...] = ("low", "medium", "high", "auto")
EXTENDED_QUALITIES: tuple[str, ...] = ("low", "medium", "high", "xhigh", "max", "auto")

# Free-size rules (gpt-image-2 and later).
SIZE_MULTIPLE = 16
MAX_ASPECT = 3.0
MAX_EDGE = 3840
MAX_PIXELS = 3840 * 2160
MAX_STABLE_PIXELS = 2560 * 1440  # above this is "experimental"

# Aspect choices offered for free-size models, mapped to valid sizes of about 1-1.6 megapixels.
ASPECT_CHOICES: dict[str, str] = {
    "1:1": "1024x1024",
    "3:2": "1536x1024",
    "2:3": "1024x1536",
    "16:9": "1536x864",
    "9:16": "864x1536",
    "4:3": "1408x1056",
    "3:4": "1056x1408",
    "21:9": "1792x768",
}

# Large sizes offered beside the aspects (above 2560x1440 the API calls them experimental).
LARGE_CHOICES: tuple[tuple[str, str], ...] = (
    ("16:9", "2560x1440"),
    ("16:9", "3840x2160"),
    ("9:16", "2160x3840"),
    ("1:1", "2048x2048"),
)

# Output tokens per image for gpt-image-1 / 1.5 (OpenAI's per-image prices).
_TOKEN_TABLE: dict[str, dict[str, int]] = {
    "low": {"1024x1024": 272, "1024x1536": 408, "1536x1024": 400},
    "medium": {"1024x1024": 1056, "1024x1536": 1584, "1536x1024": 1568},
    "high": {"1024x1024": 4160, "1024x1536": 6240, "1536x1024": 6208},
}
# q of the community formula for gpt-image-2+. xhigh/max are not documented: extrapolated on purpose
# high enough to stay conservative (the settlement from ``usage`` is the truth).
_FORMULA_Q: dict[str, int] = {"low": 16, "medium": 48, "high": 96, "xhigh": 144, "max": 192}

_SNAPSHOT_RE = re.compile(r"-\d{4}-\d{2}-\d{2}$")
_SIZE_RE = re.compile(r"^\s*(\d+)\s*[x×*]\s*(\d+)\s*$")
_ASPECT_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*:\s*(\d+(?:\.\d+)?)\s*$")

PRICE_KEYS = ("text_in", "image_in", "image_out", "svg_in", "svg_out")

# Output formats every GPT image model takes, and the gated previews only some models offer.
STILL_FORMATS: tuple[str, ...] = ("png", "jpeg", "webp")
COMPLEXITIES: tuple[str, ...] = ("low", "medium", "high")
GIF_FRAMES_DEFAULT = 9
GIF_FRAME_MS_DEFAULT = 200
# Tokens of an SVG's vector pass (svg_usage) assumed before a call: no published figure; generous on
# purpose, the settlement from ``svg_usage`` is the truth.
SVG_ESTIMATE_IN = 2_000
SVG_ESTIMATE_OUT = 12_000
# How ``complexity`` scales output tokens before a call. Not published: ``high`` is assumed to cost up to
# half again as much, and ``low`` is not discounted, so an estimate never falls short of the settlement.
COMPLEXITY_FACTOR: dict[str, float] = {"low": 1.0, "medium": 1.0, "high": 1.5}


class SizeChoice(NamedTuple):
    label: str  # what a user sees, e.g. "16:9 (1536x864)"
    value: str  # a valid ``size`` value for this model


@dataclass(frozen=True, slots=True)
class ModelInfo:
    name: str  # the family name (or the unknown name as given)
    fixed_sizes: tuple[str, ...] | None  # None = free WxH sizes
    qualities: tuple[str, ...]
    supports_transparent: bool
    input_fidelity: tuple[str, ...]  # empty = omit the parameter
    text_in: float  # USD per 1M tokens
    image_in: float
    image_out: float
    known: bool = True
    token_formula: bool = False  # True: the gpt-image-2 formula; False: the gpt-image-1 table
    complexity: bool = False  # takes ``complexity`` (low/medium/high)
    gif: bool = False  # ``output_format=gif`` (animated, frame_count/frame_duration_ms)
    svg: bool = False  # ``output_format=svg`` (n=1)
    markup: bool = False  # edits take a ``markup`` layer (never with ``mask``)
    svg_in: float = 1.25  # USD per 1M tokens of the SVG pass (svg_usage): assumed, configurable
    svg_out: float = 10.0

    @property
    def output_formats(self) -> tuple[str, ...]:
        return STILL_FORMATS + (("gif",) if self.gif else ()) + (("svg",) if self.svg else ())

    # ---- sizes -------------------------------------------------------------------------------
    def sizes_for_choices(self) -> list[SizeChoice]:
        """The size options a slash command should offer for this model."""
        if self.fixed_sizes is not None:
            return [SizeChoice(_label_for_size(s), s) for s in self.fixed_sizes]
        choices = [SizeChoice(f"{aspect} ({size})", size) for aspect, size in ASPECT_CHOICES.items()]
        choices += [SizeChoice(f"{aspect} ({size})", size) for aspect, size in LARGE_CHOICES]
        choices.append(SizeChoice("auto", "auto"))
        return choices

    def resolve_size(self, value: str | None, *, allow_experimental: bool = False) -> str:
        """Map ``16:9``/``1536x864``/``auto`` to a valid ``size`` for this model or raise ``ValueError``."""
        if value is None or not str(value).strip():
            return "auto"
        text = str(value).strip().lower()
        if text == "auto":
            if self.fixed_sizes is not None and "auto" not in self.fixed_sizes:
                raise ValueError(f"{self.name} does not support automatic sizing")
            return "auto"
        aspect = _ASPECT_RE.match(text)
        if aspect:
            rw, rh = float(aspect.group(1)), float(aspect.group(2))
            if rw <= 0 or rh <= 0:
                raise ValueError(f"invalid aspect ratio {value!r}")
            if self.fixed_sizes is not None:
                return _nearest_fixed(self.fixed_sizes, rw / rh)
            key = f"{aspect.group(1)}:{aspect.group(2)}"
            if key in ASPECT_CHOICES:
                return ASPECT_CHOICES[key]
            return _size_for_ratio(rw / rh)
        match = _SIZE_RE.match(text)
        if not match:
            raise ValueError(f"unknown size {value!r}: use WIDTHxHEIGHT (e.g. 1024x1024), an aspect like 16:9, or auto")
        w, h = int(match.group(1)), int(match.group(2))
        size = f"{w}x{h}"
        if self.fixed_sizes is not None:
            if size not in self.fixed_sizes:
                valid = ", ".join(self.fixed_sizes)
                raise ValueError(f"{self.name} does not support {size}; choose one of {valid}")
            return size
        _check_free_size(w, h, allow_experimental=allow_experimental)
        return size

    # ---- tokens and cost ---------------------------------------------------------------------
    def estimate_output_tokens(
        self, size: str | None, quality: str | None, *, complexity: str | None = None, frames: int = 1
    ) -> int:
        """Output tokens of one image (``auto`` quality counts as medium, ``auto`` size as 1024x1024); an
        animated GIF counts each of its ``frames`` as an image (assumed: no published figure)."""
        still = self._still_tokens(size, quality)
        factor = COMPLEXITY_FACTOR.get((complexity or "").lower(), 1.0)
        return math.ceil(still * factor) * max(1, frames)

    def _still_tokens(self, size: str | None, quality: str | None) -> int:
        q = (quality or "auto").lower()
        if q not in _FORMULA_Q:  # auto (and anything unknown) counts as medium
            q = "medium"
        if not size or size == "auto":
            w, h = 1024, 1024
        else:
            m = _SIZE_RE.match(size)
            if not m:
                w, h = 1024, 1024
            else:
                w, h = int(m.group(1)), int(m.group(2))
        if not self.token_formula:
            table = _TOKEN_TABLE.get(q, _TOKEN_TABLE["high"])  # xhigh/max on a table model: high
            key = f"{w}x{h}"
            if key in table:
                return table[key]
            # Not a classic size: scale the closest-aspect entry by area, rounding up.
            ratio = w / h
            nearest = _nearest_fixed(tuple(table), ratio)
            nw, nh = (int(x) for x in nearest.split("x"))
            return math.ceil(table[nearest] * (w * h) / (nw * nh))
        return _formula_tokens(w, h, q)

    def estimate_input_tokens(self, prompt_chars: int = 0, input_images: int = 0) -> tuple[int, int]:
        """(text tokens, image tokens), rounded up: ~3 characters per token, images as 1536x1024."""
        text = math.ceil(max(0, prompt_chars) / 3) + (8 if prompt_chars else 0)
        high = bool(not self.input_fidelity or "high" in self.input_fidelity)
        image = input_images * input_image_tokens(1536, 1024, high_fidelity=high)
        return text, image

    def estimate_cost(
        self,
        n: int,
        size: str | None,
        quality: str | None,
        prompt_chars: int = 0,
        input_images: int = 0,
        *,
        output_format: str | None = None,
        complexity: str | None = None,
        frames: int | None = None,
    ) -> float:
        """USD for ``n`` images, slightly conservative (prices then settle from ``usage``). A GIF counts
        its frames (default 9), an SVG adds its vector pass (``svg_in``/``svg_out``)."""
        frame_count = (frames or GIF_FRAMES_DEFAULT) if output_format == "gif" else 1
        per_image = self.estimate_output_tokens(size, quality, complexity=complexity, frames=frame_count)
        out = max(1, n) * per_image
        text, image = self.estimate_input_tokens(prompt_chars, input_images)
        cost = text * self.text_in + image * self.image_in + out * self.image_out
        if output_format == "svg":
            svg_in = SVG_ESTIMATE_IN + math.ceil(max(0, prompt_chars) / 3)
            cost += max(1, n) * (svg_in * self.svg_in + SVG_ESTIMATE_OUT * self.svg_out)
        return cost / 1_000_000

    def cost_from_usage(self, usage: Usage | None, svg_usage: Usage | None = None) -> float:
        """USD from an API ``usage`` (and an SVG's ``svg_usage``); without input details all input
        counts as text. The SVG pass's output includes its reasoning tokens."""
        svg = 0.0
        if svg_usage is not None:
            svg_out = svg_usage.output_tokens or max(0, svg_usage.total_tokens - svg_usage.input_tokens)
            svg = (svg_usage.input_tokens * self.svg_in + svg_out * self.svg_out) / 1_000_000
        return self._image_cost(usage) + svg

    def _image_cost(self, usage: Usage | None) -> float:
        if usage is None:
            return 0.0
        text, image = usage.input_text_tokens, usage.input_image_tokens
        if text + image == 0:
            text = usage.input_tokens
        elif text + image < usage.input_tokens:
            text += usage.input_tokens - text - image
        out = usage.output_tokens
        if not out and usage.total_tokens > usage.input_tokens:
            out = usage.total_tokens - usage.input_tokens
        return (text * self.text_in + image * self.image_in + out * self.image_out) / 1_000_000

    def with_prices(self, prices: Mapping[str, Any]) -> ModelInfo:
        unknown = set(prices) - set(PRICE_KEYS)
        if unknown:
            raise ValueError(f"unknown price keys {sorted(unknown)}; expected {PRICE_KEYS}")
        values = {k: float(v) for k, v in prices.items()}
        for k, v in values.items():
            if v < 0 or math.isnan(v):
                raise ValueError(f"price {k} must be >= 0")
        return replace(self, **values)  # type: ignore[arg-type]


def input_image_tokens(width: int, height: int, *, high_fidelity: bool = False) -> int:
    """gpt-image-1 input image tokens: scaled to a 512 px short side, 65 + 129 per 512-px tile,
    plus 4,096 (square) or 6,144 tokens with ``input_fidelity=high``."""
    if width <= 0 or height <= 0:
        return 0
    scale = 512 / min(width, height)
    sw, sh = width * scale, height * scale
    tiles = math.ceil(sw / 512) * math.ceil(sh / 512)
    tokens = 65 + 129 * tiles
    if high_fidelity:
        tokens += 4096 if width == height else 6144
    return tokens


def _formula_tokens(w: int, h: int, quality: str) -> int:
    q = _FORMULA_Q[quality]
    short, long = min(w, h), max(w, h)
    a = (2 * q * short + long) // (2 * long)
    return math.ceil(q * a * (2_000_000 + w * h) / 4_000_000)


def _label_for_size(size: str) -> str:
    if size == "auto":
        return "auto"
    w, h = (int(x) for x in size.split("x"))
    shape = "square" if w == h else ("landscape" if w > h else "portrait")
    return f"{size} ({shape})"


def _nearest_fixed(sizes: tuple[str, ...], ratio: float) -> str:
    best, best_d = sizes[0], math.inf
    for s in sizes:
        if s == "auto":
            continue
        w, h = (int(x) for x in s.split("x"))
        d = abs(math.log(ratio) - math.log(w / h))
        if d < best_d:
            best, best_d = s, d
    return best


def _round16(x: float) -> int:
    return max(SIZE_MULTIPLE, round(x / SIZE_MULTIPLE) * SIZE_MULTIPLE)


def _size_for_ratio(ratio: float) -> str:
    """A valid free size with about 1.5 megapixels for an arbitrary aspect ratio (clamped to 1:3..3:1)."""
    ratio = min(MAX_ASPECT, max(1 / MAX_ASPECT, ratio))
    area = 1536 * 1024
    w = _round16(math.sqrt(area * ratio))
    h = _round16(math.sqrt(area / ratio))
    if max(w, h) / min(w, h) > MAX_ASPECT:  # rounding pushed it just over
        if w > h:
            w -= SIZE_MULTIPLE
        else:
            h -= SIZE_MULTIPLE
    return f"{w}x{h}"


def _check_free_size(w: int, h: int, *, allow_experimental: bool) -> None:
    if w <= 0 or h <= 0:
        raise ValueError("width and height must be positive")
    if w % SIZE_MULTIPLE or h % SIZE_MULTIPLE:
        raise ValueError(f"{w}x{h}: width and height must both be multiples of {SIZE_MULTIPLE}")
    if max(w, h) / min(w, h) > MAX_ASPECT:
        raise ValueError(f"{w}x{h}: the aspect ratio must be between 1:3 and 3:1")
    if max(w, h) > MAX_EDGE or w * h > MAX_PIXELS:
        raise ValueError(f"{w}x{h} is too large: the maximum is 3840x2160")
    if w * h > MAX_STABLE_PIXELS and not allow_experimental:
        raise ValueError(f"{w}x{h} is above 2560x1440 (experimental sizes are not enabled)")


def _classic(name: str, text_in: float, image_in: float, image_out: float, fidelity: tuple[str, ...]) -> ModelInfo:
    return ModelInfo(
        name=name,
        fixed_sizes=CLASSIC_SIZES,
        qualities=BASE_QUALITIES,
        supports_transparent=True,
        input_fidelity=fidelity,
        text_in=text_in,
        image_in=image_in,
        image_out=image_out,
    )


def _free(
    name: str,
    qualities: tuple[str, ...],
    transparent: bool,
    *,
    complexity: bool = False,
    previews: bool = False,
    markup: bool = False,
) -> ModelInfo:
    return ModelInfo(
        complexity=complexity,
        gif=previews,
        svg=previews,
        markup=markup,
        name=name,
        fixed_sizes=None,
        qualities=qualities,
        supports_transparent=transparent,
        input_fidelity=(),
        text_in=5.0,
        image_in=8.0,
        image_out=30.0,
        token_formula=True,
    )


MODELS: dict[str, ModelInfo] = {
    m.name: m
    for m in (
        _classic("gpt-image-1", 5.0, 10.0, 40.0, ("high", "low")),
        _classic("gpt-image-1-mini", 2.0, 2.5, 8.0, ("low",)),
        _classic("gpt-image-1.5", 5.0, 8.0, 32.0, ("high", "low")),
        _classic("chatgpt-image-latest", 5.0, 8.0, 32.0, ("high", "low")),
        # Transparency is "preview" on gpt-image-2: offered, as it works.
        _free("gpt-image-2", BASE_QUALITIES, True),
        # The SDK's newer parameters (complexity, the gif/svg previews) are placed on the 2.5 and later
        # families, markup on 2.5 only, as the SDK's types describe it; gpt-image-2 keeps what it had.
        _free("gpt-image-2.5-sunburst", EXTENDED_QUALITIES, True, complexity=True, previews=True, markup=True),
        _free("gpt-image-2.5-flare", EXTENDED_QUALITIES, True, complexity=True, previews=True, markup=True),
        # 2.6 capabilities are not documented beyond "gpt-image-2 and later": assumed as 2.5, less markup.
        _free("gpt-image-2.6-sunburst", EXTENDED_QUALITIES, True, complexity=True, previews=True),
        _free("gpt-image-2.6-flare", EXTENDED_QUALITIES, True, complexity=True, previews=True),
    )
}

_DEFAULT = replace(
    MODELS["gpt-image-1"],
    supports_transparent=False,
    input_fidelity=(),
    known=False,
)


def union_of(models: list[ModelInfo]) -> ModelInfo:
    """What several models can do together (the options a command offers when members may pick any of
    them; each choice is then checked against the picked model)."""
    first = models[0]
    qualities = tuple(q for q in EXTENDED_QUALITIES if any(q in m.qualities for m in models))
    free = any(m.fixed_sizes is None for m in models)
    return replace(
        first,
        fixed_sizes=None if free else first.fixed_sizes,
        qualities=qualities,
        supports_transparent=any(m.supports_transparent for m in models),
        complexity=any(m.complexity for m in models),
        gif=any(m.gif for m in models),
        svg=any(m.svg for m in models),
        markup=any(m.markup for m in models),
    )


def models_with(capability: str) -> list[str]:
    """The registry's families that have ``capability`` (a ``ModelInfo`` flag such as ``markup``)."""
    return [name for name, info in MODELS.items() if getattr(info, capability)]


def family_name(name: str) -> str | None:
    """The registry family of a model name or snapshot (``gpt-image-2-2026-04-21`` -> ``gpt-image-2``)."""
    key = name.strip().lower()
    if "/" in key:  # gateway prefixes such as "openai/gpt-image-2"
        key = key.rsplit("/", 1)[1]
    if key in MODELS:
        return key
    base = _SNAPSHOT_RE.sub("", key)
    return base if base in MODELS else None


def get_model(name: str, price_overrides: Mapping[str, Mapping[str, Any]] | None = None) -> ModelInfo:
    """The ``ModelInfo`` for ``name``. ``price_overrides`` maps a family name (or the exact configured
    name, or ``"default"`` for unknown models) to ``{"text_in"|"image_in"|"image_out": usd_per_1m}``."""
    family = family_name(name)
    info = MODELS[family] if family else replace(_DEFAULT, name=name.strip())
    if price_overrides:
        for key in (family or "default", name.strip().lower(), name):
            if key in price_overrides:
                info = info.with_prices(price_overrides[key])
    return info
