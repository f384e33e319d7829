"""How a job looks on Discord: the progress text, the result embed, the failure note, file names. Pure.

Every text is in the language of the ``locale`` given (a catalog name, ``cogs/_translator.py``).
"""

from __future__ import annotations

import discord

from bot.images_api.models import GIF_FRAME_MS_DEFAULT, GIF_FRAMES_DEFAULT
from bot.images_api.types import CompletedImage
from bot.jobs.options import ImageOptions
from bot.jobs.progress import ProgressView
from bot.jobs.service import JobSpec
from bot.messages import clip
from bot.messages.i18n import translate
from cogs._common import EMBED_COLOUR, MESSAGE_MAX

# Option values shown in the result embed that the catalogs translate (they are also choice names).
_WORDS = frozenset({"auto", "low", "medium", "high", "opaque", "transparent"})


def _value(locale: str | None, value: str) -> str:
    return translate(locale, value) if value in _WORDS else value


def prompt_line(prompt: str) -> str:
    one_line = " ".join(prompt.split())
    return "> " + discord.utils.escape_markdown(clip(one_line, 300))


def prompt_text(prompt: str, limit: int) -> str:
    """A prompt as an embed shows it: Markdown inert (no heading, masked link or spoiler under the bot's
    name), each line without its leading spaces (an indented ``#`` would still render as a heading)."""
    lines = "\n".join(line.strip() for line in clip(prompt, limit).splitlines())
    return discord.utils.escape_markdown(lines)


def format_note(options: ImageOptions, locale: str | None = None) -> str | None:
    """What the progress message says of an animated or vector result: they come all at once, without
    previews, so the message must not look like a stream that stalled."""
    if options.output_format == "gif":
        frames = options.frame_count or GIF_FRAMES_DEFAULT
        duration = options.frame_duration_ms or GIF_FRAME_MS_DEFAULT
        return translate(
            locale,
            "Drawing an animated GIF: {frames} frames of {ms} ms. It arrives in one piece, without previews.",
            frames=frames,
            ms=duration,
        )
    if options.output_format == "svg":
        return translate(locale, "Drawing an SVG: it arrives in one piece, without previews.")
    return None


def progress_content(view: ProgressView, prompt: str, locale: str | None = None, note: str | None = None) -> str:
    started = f"<t:{int(view.started_at)}:R>"
    if view.status == "queued":
        head = translate(
            locale, "⏳ **Queued**, position {position} · requested {when}", position=view.queue_position, when=started
        )
    else:
        head = translate(locale, "🎨 **Generating…** started {when}", when=started)
    if len(view.slots) == 1:
        s = view.slots[0]
        if s.frame:
            head += " · " + translate(locale, "frame {frame}/{total}", frame=s.frame, total=s.total)
    else:
        parts = []
        for s in view.slots:
            if s.done:
                state = translate(locale, "failed") if s.failed else translate(locale, "done")
            elif s.frame:
                state = translate(locale, "frame {frame}/{total}", frame=s.frame, total=s.total)
            else:
                state = translate(locale, "waiting")
            parts.append(f"{s.slot + 1}: {state}")
        head += "\n" + " · ".join(parts)
    if note and view.status != "queued":
        head += "\n" + note
    return clip(f"{head}\n{prompt_line(prompt)}", MESSAGE_MAX)


def failure_content(text: str, prompt: str) -> str:
    return clip(f"❌ {text}\n{prompt_line(prompt)}", MESSAGE_MAX)


def result_embed(
    spec: JobSpec,
    job_id: int,
    user: discord.abc.User,
    model: str,
    images: list[CompletedImage],
    locale: str | None = None,
) -> discord.Embed:
    title = translate(locale, "Edited image") if spec.kind == "edit" else translate(locale, "Imagined")
    embed = discord.Embed(title=title, description=prompt_text(spec.prompt, 1500), colour=EMBED_COLOUR)
    first = images[0] if images else None
    o = spec.options
    embed.add_field(name=translate(locale, "Model"), value=clip(model, 100), inline=True)
    embed.add_field(
        name=translate(locale, "Size"),
        value=_value(locale, (first.size if first and first.size else o.size) or "auto"),
        inline=True,
    )
    embed.add_field(
        name=translate(locale, "Quality"),
        value=_value(locale, (first.quality if first and first.quality else o.quality) or "auto"),
        inline=True,
    )
    if o.background or (first and first.background):
        embed.add_field(
            name=translate(locale, "Background"),
            value=_value(locale, (first.background if first else None) or o.background or "auto"),
        )
    embed.add_field(
        name=translate(locale, "Format"), value=(first.output_format if first else None) or o.output_format or "png"
    )
    if o.complexity:
        embed.add_field(name=translate(locale, "Complexity"), value=_value(locale, o.complexity))
    if (first.output_format if first else o.output_format) == "gif":
        frames = o.frame_count or GIF_FRAMES_DEFAULT
        ms = o.frame_duration_ms or GIF_FRAME_MS_DEFAULT
        embed.add_field(name=translate(locale, "Frames"), value=f"{frames} × {ms} ms")
    if o.count > 1:
        embed.add_field(name=translate(locale, "Images"), value=f"{len(images)}/{o.count}")
    footer = translate(locale, "Requested by {name} · job #{job}", name=user.display_name, job=job_id)
    embed.set_footer(text=clip(footer, 200))
    return embed


def file_name(job_id: int, index: int, extension: str) -> str:
    return f"imagebot-{job_id}-{index + 1}.{extension}"


def rendering_name(job_id: int) -> str:
    """The PNG drawn from an SVG result, shown in the embed (not itself a result)."""
    return f"rendering-{job_id}.png"


def preview_name(slot: int) -> str:
    return f"preview-{slot + 1}.jpg"
