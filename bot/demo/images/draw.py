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
import math
import random
import textwrap
from functools import lru_cache
from xml.sax.saxutils import escape

from PIL import Image, ImageDraw, ImageFilter, ImageFont, ImageOps

__all__ = ["apply_markup", "image_size", "render", "render_gif", "render_svg", "seed_for"]

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


def render_gif(
    prompt: str,
    seed: int,
    width: int,
    height: int,
    frames: int,
    duration_ms: int,
    *,
    realistic: bool = False,
    base: bytes | None = None,
) -> bytes:
    """An animated GIF of ``frames`` frames, ``duration_ms`` each: the picture with a disc that circles
    it, so every frame differs (``realistic`` grain makes it weigh what a photographic GIF does)."""
    scene = _scene(prompt, seed, width, height, False, realistic, base).convert("RGB")
    unit = min(width, height)
    r = max(4, unit // 10)
    out: list[Image.Image] = []
    for i in range(frames):
        frame = scene.copy()
        angle = 2 * math.pi * i / frames
        cx = width / 2 + (width / 3) * math.cos(angle)
        cy = height / 2 + (height / 3) * math.sin(angle)
        ImageDraw.Draw(frame).ellipse((cx - r, cy - r, cx + r, cy + r), fill=(255, 255, 255), outline=(0, 0, 0))
        out.append(frame.quantize(256 if realistic else 64, method=Image.Quantize.MEDIANCUT))
    buf = io.BytesIO()
    out[0].save(buf, "GIF", save_all=True, append_images=out[1:], duration=duration_ms, loop=0)
    return buf.getvalue()


def render_svg(prompt: str, seed: int, width: int, height: int) -> bytes:
    """A valid SVG document: a gradient, a few shapes and the prompt (escaped) as text."""
    rng = random.Random(seed)

    def hex_colour() -> str:
        return "#" + "".join(f"{rng.randrange(30, 256):02x}" for _ in range(3))

    unit = min(width, height)
    shapes = []
    for _ in range(rng.randint(4, 9)):
        x, y, r = rng.randrange(width), rng.randrange(height), rng.randint(unit // 12, unit // 4)
        if rng.random() < 0.5:
            shapes.append(f'<circle cx="{x}" cy="{y}" r="{r}" fill="{hex_colour()}" fill-opacity="0.8"/>')
        else:
            shapes.append(
                f'<rect x="{x - r}" y="{y - r}" width="{2 * r}" height="{2 * r}" rx="{r // 4}" '
                f'fill="{hex_colour()}" fill-opacity="0.8"/>'
            )
    text = escape(" ".join(prompt.split())[:80])
    doc = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}">'
        f'<defs><linearGradient id="bg" x1="0" y1="0" x2="1" y2="1">'
        f'<stop offset="0" stop-color="{hex_colour()}"/><stop offset="1" stop-color="{hex_colour()}"/>'
        f"</linearGradient></defs>"
        f'<rect width="{width}" height="{height}" fill="url(#bg)"/>'
        + "".join(shapes)
        + f'<text x="{width // 2}" y="{height - unit // 12}" font-size="{max(12, unit // 22)}" '
        f'text-anchor="middle" fill="#ffffff">{text}</text></svg>'
    )
    return doc.encode("utf-8")


def apply_markup(picture: bytes, markup: bytes, output_format: str) -> bytes:
    """The picture with the member's marks laid over it and a ``markup used`` banner: an edit that acted
    on the marks, visibly (tests compare the marked pixels)."""
    with Image.open(io.BytesIO(picture)) as im:
        img = im.convert("RGBA")
    with Image.open(io.BytesIO(markup)) as mk:
        layer = mk.convert("RGBA").resize(img.size)
    img = Image.alpha_composite(img, layer)
    draw = ImageDraw.Draw(img)
    font = _font(max(12, min(img.size) // 24))
    draw.rectangle((0, 0, img.width, max(16, min(img.size) // 14)), fill=(0, 0, 0, 200))
    draw.text((8, 2), "markup used", font=font, fill=(255, 255, 0, 255))
    fmt = PIL_FORMATS.get(output_format.lower(), "PNG")
    buf = io.BytesIO()
    (img if fmt in ("PNG", "WEBP") else img.convert("RGB")).save(buf, fmt)
    return buf.getvalue()
