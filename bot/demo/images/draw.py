"""Pictures for the fake Images API, drawn with Pillow from the prompt.

Deterministic per (prompt, seed): a colour gradient, a few shapes and the prompt text. Partial frames
are the final picture pixelated and blurred, sharper at each stage. ``realistic=True`` adds a cached
noise texture so PNGs weigh what real ones do (about 2.8 MB at 1536x1024, partial frames included: the
API's partial frames are full-size PNGs too, as costly to decode as the final). Everything here is
blocking: call it through ``asyncio.to_thread``.
"""

from __future__ import annotations

import hashlib
import io
import random
import textwrap
from functools import lru_cache

from PIL import Image, ImageDraw, ImageFilter, ImageFont, ImageOps

__all__ = ["image_size", "render", "seed_for"]

PIL_FORMATS = {"png": "PNG", "jpeg": "JPEG", "jpg": "JPEG", "webp": "WEBP"}


def seed_for(prompt: str, counter: int) -> int:
    """A stable seed per (prompt, request counter): the same request replays, a reroll differs."""
    digest = hashlib.sha256(f"{counter}\0{prompt}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def image_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as im:
        return im.size


def _colour(rng: random.Random, alpha: int | None = None) -> tuple[int, ...]:
    rgb = tuple(rng.randrange(30, 256) for _ in range(3))
    return (*rgb, alpha) if alpha is not None else rgb


@lru_cache(maxsize=8)
def _noise(width: int, height: int) -> Image.Image:
    """A colour noise texture, RGBA (cached per size: rendering it is the slow part)."""
    bands = [Image.effect_noise((width, height), 40 + 8 * i) for i in range(3)]
    return Image.merge("RGB", bands).convert("RGBA")


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # very old Pillow or no FreeType
        return ImageFont.load_default()


@lru_cache(maxsize=16)
def _scene(
    prompt: str, seed: int, width: int, height: int, transparent: bool, realistic: bool, base: bytes | None
) -> Image.Image:
    """The final picture, RGBA (cached: partial frames and the final reuse it)."""
    rng = random.Random(seed)
    if base is not None:
        with Image.open(io.BytesIO(base)) as src:
            img = ImageOps.fit(src.convert("RGBA"), (width, height))
        tint = Image.new("RGBA", (width, height), _colour(rng, 70))
        img = Image.alpha_composite(img, tint)
    elif transparent:
        img = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    else:
        grad = Image.linear_gradient("L").rotate(rng.choice((0, 45, 90, 135)), expand=False)
        grad = grad.resize((width, height))
        img = ImageOps.colorize(grad, _colour(rng), _colour(rng)).convert("RGBA")
    if realistic and not transparent:
        img = Image.blend(img, _noise(width, height), 0.08)

    overlay = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    unit = min(width, height)
    for _ in range(rng.randint(4, 9)):
        x, y = rng.randrange(width), rng.randrange(height)
        r = rng.randint(unit // 12, unit // 4)
        box = (x - r, y - r, x + r, y + r)
        shape = rng.choice(("ellipse", "rectangle", "triangle"))
        fill = _colour(rng, rng.randint(150, 230))
        if shape == "ellipse":
            draw.ellipse(box, fill=fill)
        elif shape == "rectangle":
            draw.rounded_rectangle(box, radius=r // 4, fill=fill)
        else:
            draw.polygon([(x, y - r), (x - r, y + r), (x + r, y + r)], fill=fill)

    font = _font(max(12, unit // 22))
    wrap = max(12, int(width / (unit / 22) * 1.6))
    lines = textwrap.wrap(prompt, width=wrap)[:6] or ["(empty prompt)"]
    text = "\n".join(lines)
    left, top, right, bottom = draw.multiline_textbbox((0, 0), text, font=font)
    pad = unit // 40
    tx, ty = (width - (right - left)) // 2, height - (bottom - top) - 4 * pad
    draw.rounded_rectangle(
        (tx - pad, ty - pad, tx + (right - left) + pad, ty + (bottom - top) + pad),
        radius=pad,
        fill=(0, 0, 0, 150),
    )
    draw.multiline_text((tx - left, ty - top), text, font=font, fill=(255, 255, 255, 255), align="center")
    return Image.alpha_composite(img, overlay)


def _degrade(img: Image.Image, stage: float) -> Image.Image:
    """Pixelate + blur; ``stage`` 0..1 (1 = final, untouched)."""
    if stage >= 1:
        return img
    block = max(2, int(48 * (1 - stage)))
    w, h = img.size
    small = img.resize((max(1, w // block), max(1, h // block)), Image.Resampling.BILINEAR)
    img = small.resize((w, h), Image.Resampling.NEAREST)
    return img.filter(ImageFilter.GaussianBlur(radius=max(0.5, 6 * (1 - stage))))


def render(
    prompt: str,
    seed: int,
    width: int,
    height: int,
    output_format: str = "png",
    *,
    transparent: bool = False,
    stage: float = 1.0,
    realistic: bool = False,
    base: bytes | None = None,
    compression: int | None = None,
) -> bytes:
    """Encode the picture for (prompt, seed) at ``stage`` (partial frames < 1) in ``output_format``."""
    fmt = PIL_FORMATS.get(output_format.lower(), "PNG")
    img = _degrade(_scene(prompt, seed, width, height, transparent, realistic, base), stage)
    if realistic and stage < 1 and not transparent:
        # Blurring removed the texture: put grain back so a partial frame weighs what a real one does.
        img = Image.blend(img.convert("RGBA"), _noise(width, height), 0.06)
    keep_alpha = transparent and fmt in ("PNG", "WEBP")
    if not keep_alpha:
        img = img.convert("RGB")
    buf = io.BytesIO()
    if fmt == "PNG":
        img.save(buf, "PNG", compress_level=1 if realistic else 3)
    elif fmt == "JPEG":
        img.save(buf, "JPEG", quality=max(1, min(95, compression if compression is not None else 90)))
    else:
        img.save(buf, "WEBP", quality=max(1, min(100, compression if compression is not None else 90)))
    return buf.getvalue()
