"""Finding the images in a Discord message, and the instruction in a reply. No I/O.

A message's images are its image attachments (in order), then its link-preview images hosted on Discord's
media proxy. Only Discord's own hosts (and the configured Discord endpoint, e.g. a proxy) are ever fetched.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

import discord

from bot.imaging.inputs import looks_like_image

DISCORD_MEDIA_DOMAINS = ("discordapp.net", "discordapp.com", "discord.com", "discord.media")


@dataclass(frozen=True, slots=True)
class SourceFile:
    """An image somewhere on Discord: an attachment (read through discord.py) or a link preview."""

    filename: str
    content_type: str | None
    size: int | None  # declared bytes; None for link previews (Discord declares only their dimensions)
    url: str
    attachment: discord.Attachment | None = None
    dims: tuple[int, int] | None = None


def from_attachment(att: discord.Attachment) -> SourceFile:
    dims = (att.width, att.height) if att.width and att.height else None
    return SourceFile(att.filename, att.content_type, att.size, att.url, att, dims)


def allowed_media_host(url: str, extra_hosts: tuple[str, ...] = ()) -> bool:
    """Only Discord's own media hosts (and the configured Discord endpoint, e.g. a proxy) are fetched."""
    host = (urlsplit(url).hostname or "").lower()
    if not host:
        return False
    if host in extra_hosts:
        return True
    return any(host == d or host.endswith("." + d) for d in DISCORD_MEDIA_DOMAINS)


def images_in(message: discord.Message, extra_hosts: tuple[str, ...] = ()) -> list[SourceFile]:
    """Image attachments first (in order), then link-preview images not already among them."""
    found = [
        from_attachment(a)
        for a in message.attachments
        if looks_like_image(a.filename, a.content_type) and not a.is_voice_message()
    ]
    seen = {f.url for f in found} | {f.attachment.proxy_url for f in found if f.attachment is not None}
    for embed in message.embeds:
        if embed.type in ("video", "gifv"):
            continue
        for media in (embed.image, embed.thumbnail if embed.type == "image" else None):
            if media is None:
                continue
            url, proxy = getattr(media, "url", None), getattr(media, "proxy_url", None)
            if not proxy or url in seen or proxy in seen or not allowed_media_host(proxy, extra_hosts):
                continue
            seen.update({u for u in (url, proxy) if u})
            name = urlsplit(url or proxy).path.rsplit("/", 1)[-1] or "image.png"
            w, h = getattr(media, "width", None), getattr(media, "height", None)
            found.append(SourceFile(name, None, None, proxy, None, (w, h) if w and h else None))
    return found


def instruction_from(message: discord.Message, bot_id: int) -> str:
    """The reply's text without the bot's mention; other people's mentions become their names (plain text
    replacement: a name is never read as a regular-expression template, backslashes and all)."""
    text = message.content or ""
    for tag in (f"<@{bot_id}>", f"<@!{bot_id}>"):
        text = text.replace(tag, " ")
    for user in message.mentions:
        if user.id != bot_id:
            name = "@" + user.display_name
            text = text.replace(f"<@{user.id}>", name).replace(f"<@!{user.id}>", name)
    return " ".join(text.split()).lstrip(",:;-–— ")  # "@imagebot, make it night" -> "make it night"
