"""The picture ``/quota report`` attaches: images and spend per day this month, and the top members.

Drawn with Pillow, off the event loop (``render_chart``). It sits on a light card of its own, so it reads
the same on Discord's dark and light themes. Every word on it arrives already translated (``ChartText``),
and the font is one that has the reader's script (Noto Sans CJK where the system has it, for Chinese).
"""

from __future__ import annotations

import asyncio
import io
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

__all__ = ["ChartData", "ChartText", "render_chart", "render_chart_sync"]

WIDTH, HEIGHT = 1200, 760
CARD = (246, 247, 249)
INK = (32, 34, 37)
MUTED = (104, 109, 118)
GRID = (220, 223, 228)
IMAGES = (16, 163, 127)  # the bot's colour
SPEND = (235, 110, 40)
TOP_MEMBERS = 5

# Fonts that cover Latin and CJK, where a system has them (Debian: fonts-noto-cjk); else Pillow's own.
FONT_CANDIDATES: tuple[str, ...] = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJKsc-Regular.otf",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/System/Library/Fonts/PingFang.ttc",
)


@dataclass(frozen=True, slots=True)
class ChartText:
    """The chart's words, in the reader's language."""

    title: str
    images: str  # legend: images per day
    spend: str  # legend: spend per day
    top: str  # heading of the members panel
    nothing: str  # shown when the month has no images yet


@dataclass(frozen=True, slots=True)
class ChartData:
    days: list[tuple[str, int, float]]  # (label such as "7", images, USD) for each day so far
    members: list[tuple[str, int, float]]  # (name, images, USD), most images first


@lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    for path in FONT_CANDIDATES:
        if Path(path).is_file():
            try:
                return ImageFont.truetype(path, size)
            except OSError:
                continue
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # very old Pillow
        return ImageFont.load_default()


def _money(usd: float) -> str:
    return f"${usd:,.2f}" if usd < 1000 else f"${usd:,.0f}"


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    for step in (1, 2, 2.5, 5, 10):
        magnitude = 10 ** len(str(int(value))) / 10
        if value <= step * magnitude:
            return step * magnitude
    return value


def render_chart_sync(data: ChartData, text: ChartText) -> bytes:
    """The chart as a PNG (blocking: a few tens of milliseconds)."""
    img = Image.new("RGBA", (WIDTH, HEIGHT), (0, 0, 0, 0))  # rounded corners see-through
    draw = ImageDraw.Draw(img)
    draw.rounded_rectangle((0, 0, WIDTH - 1, HEIGHT - 1), radius=24, fill=CARD)
    title_font, label_font, small = _font(34), _font(22), _font(18)
    draw.text((40, 26), text.title, font=title_font, fill=INK)

    # Panel 1: images per day (bars) and spend per day (line, its own scale on the right).
    left, top, right, bottom = 90, 130, WIDTH - 110, 430
    draw.rectangle((left + 4, 92, left + 22, 110), fill=IMAGES)
    draw.text((left + 30, 88), text.images, font=label_font, fill=INK)
    legend_x = left + 60 + int(draw.textlength(text.images, font=label_font))
    draw.line((legend_x, 101, legend_x + 24, 101), fill=SPEND, width=4)
    draw.text((legend_x + 32, 88), text.spend, font=label_font, fill=INK)
    days = data.days or [("1", 0, 0.0)]
    top_images = _nice_max(max(d[1] for d in days))
    top_spend = _nice_max(max(d[2] for d in days))
    for i in range(5):
        y = bottom - (bottom - top) * i / 4
        draw.line((left, y, right, y), fill=GRID, width=1)
        count = top_images * i / 4
        label = f"{count:g}"
        draw.text((left - 12 - draw.textlength(label, font=small), y - 10), label, font=small, fill=MUTED)
        draw.text((right + 10, y - 10), _money(top_spend * i / 4), font=small, fill=MUTED)
    slot = (right - left) / max(len(days), 1)
    points = []
    for i, (label, images, spent) in enumerate(days):
        x0 = left + i * slot + slot * 0.15
        x1 = left + (i + 1) * slot - slot * 0.15
        if images:
            y = bottom - (bottom - top) * images / top_images
            draw.rectangle((x0, y, x1, bottom), fill=IMAGES)
        points.append(((x0 + x1) / 2, bottom - (bottom - top) * spent / top_spend))
        if len(days) <= 16 or i % 2 == 0:
            draw.text(
                ((x0 + x1) / 2 - draw.textlength(label, font=small) / 2, bottom + 6), label, font=small, fill=MUTED
            )
    if len(points) > 1:
        draw.line(points, fill=SPEND, width=4, joint="curve")
    for x, y in points:
        draw.ellipse((x - 4, y - 4, x + 4, y + 4), fill=SPEND)

    # Panel 2: the top members, images as bars, spend as text.
    draw.text((40, 480), text.top, font=label_font, fill=INK)
    members = data.members[:TOP_MEMBERS]
    if not members or not any(m[1] for m in members):
        draw.text((40, 530), text.nothing, font=label_font, fill=MUTED)
    else:
        most = max(m[1] for m in members) or 1
        name_w, bar_left, bar_right = 300, 360, WIDTH - 220
        for i, (name, images, spent) in enumerate(members):
            y = 522 + i * 44
            shown = name if draw.textlength(name, font=label_font) <= name_w else name[:18] + "…"
            draw.text((40, y), shown, font=label_font, fill=INK)
            width = (bar_right - bar_left) * images / most
            draw.rounded_rectangle((bar_left, y + 4, bar_left + max(width, 4), y + 30), radius=6, fill=IMAGES)
            draw.text((bar_left + max(width, 4) + 10, y + 2), f"{images} · {_money(spent)}", font=label_font, fill=INK)
    out = io.BytesIO()
    img.save(out, "PNG", optimize=True)
    return out.getvalue()


async def render_chart(data: ChartData, text: ChartText) -> bytes:
    return await asyncio.to_thread(render_chart_sync, data, text)
