"""How a job looks on Discord: the progress text, the result embed, the failure note, file names. Pure."""

from __future__ import annotations

import discord

from bot.images.types import CompletedImage
from bot.jobs import JobSpec
from bot.messages import clip
from bot.progress import ProgressView
from cogs._common import EMBED_COLOUR

MESSAGE_MAX = 2000  # characters of a Discord message


def prompt_line(prompt: str) -> str:
    one_line = " ".join(prompt.split())
    return "> " + discord.utils.escape_markdown(clip(one_line, 300))


def progress_content(view: ProgressView, prompt: str) -> str:
    started = f"<t:{int(view.started_at)}:R>"
    if view.status == "queued":
        head = f"⏳ **Queued**, position {view.queue_position} · requested {started}"
    else:
        head = f"🎨 **Generating…** started {started}"
    if len(view.slots) == 1:
        s = view.slots[0]
        if s.frame:
            head += f" · frame {s.frame}/{s.total}"
    else:
        parts = []
        for s in view.slots:
            if s.done:
                state = "failed" if s.failed else "done"
            else:
                state = f"frame {s.frame}/{s.total}" if s.frame else "waiting"
            parts.append(f"{s.slot + 1}: {state}")
        head += "\n" + " · ".join(parts)
    return clip(f"{head}\n{prompt_line(prompt)}", MESSAGE_MAX)


def failure_content(text: str, prompt: str) -> str:
    return clip(f"❌ {text}\n{prompt_line(prompt)}", MESSAGE_MAX)


def result_embed(
    spec: JobSpec, job_id: int, user: discord.abc.User, model: str, images: list[CompletedImage]
) -> discord.Embed:
    title = "Edited image" if spec.kind == "edit" else "Imagined"
    embed = discord.Embed(title=title, description=clip(spec.prompt, 1500), colour=EMBED_COLOUR)
    first = images[0] if images else None
    o = spec.options
    embed.add_field(name="Model", value=clip(model, 100), inline=True)
    embed.add_field(name="Size", value=(first.size if first and first.size else o.size) or "auto", inline=True)
    embed.add_field(
        name="Quality", value=(first.quality if first and first.quality else o.quality) or "auto", inline=True
    )
    if o.background or (first and first.background):
        embed.add_field(name="Background", value=(first.background if first else None) or o.background or "auto")
    embed.add_field(name="Format", value=(first.output_format if first else None) or o.output_format or "png")
    if o.count > 1:
        embed.add_field(name="Images", value=f"{len(images)}/{o.count}")
    embed.set_footer(text=clip(f"Requested by {user.display_name} · job #{job_id}", 200))
    return embed


def file_name(job_id: int, index: int, extension: str) -> str:
    return f"imagebot-{job_id}-{index + 1}.{extension}"


def preview_name(slot: int) -> str:
    return f"preview-{slot + 1}.jpg"
