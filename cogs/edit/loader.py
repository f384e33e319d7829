"""Getting an edit's input images from Discord: check what Discord declares, download, normalise.

Attachments are read through discord.py (``Attachment.read()``); a link preview on Discord's media proxy is
read by the bot itself, within the same size limit as an attachment (stopped as soon as it is over, not
read whole first). Normalising (``bot/imaging/inputs.py``) runs off the event loop. How many inputs are
prepared at once, per person and in all, is bounded (``bot/jobs/input_gate.py``).
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

import aiohttp
import discord

from bot import messages
from bot.imaging.input_cache import EditInputs
from bot.imaging.inputs import MAX_INPUT_IMAGES, InputRejected, check_declared, prepare_image, prepare_mask
from bot.imaging.markup import prepare_markup
from bot.jobs.input_gate import InputGate
from bot.quota import JobRecord
from cogs._common import ImageBotBase
from cogs.edit.sources import SourceFile, allowed_media_host, from_attachment, images_in

log = logging.getLogger(__name__)


def what_name(index: int, count: int) -> str:
    """What an input is called in a refusal (``bot/messages/`` words it in the reader's language)."""
    return messages.THE_IMAGE if count == 1 else messages.nth_image(index + 1)


class InputLoader:
    def __init__(self, bot: ImageBotBase) -> None:
        self.bot = bot
        self.settings = bot.services.settings
        base = self.settings.discord_api_base
        self.extra_hosts: tuple[str, ...] = (urlsplit(base).hostname or "",) if base else ()
        # A person's preparations follow their job limit (MAX_QUEUE_PER_USER): no more inputs in flight than
        # jobs they could run; four at once for everyone together.
        self.gate = InputGate(per_user=self.settings.max_queue_per_user, total=4)

    def images_in(self, message: discord.Message) -> list[SourceFile]:
        return images_in(message, self.extra_hosts)

    def check_files(self, files: list[SourceFile]) -> list[SourceFile]:
        """Cap at 16 and refuse, from what Discord declares, anything too big, empty or not an image."""
        files = files[:MAX_INPUT_IMAGES]
        for i, f in enumerate(files):
            what = what_name(i, len(files))
            if f.attachment is not None:
                check_declared(
                    f.filename, f.content_type, f.size or 0, max_bytes=self.settings.max_input_bytes, what=what
                )
            elif f.dims is not None and f.dims[0] * f.dims[1] > self.settings.max_input_pixels:
                raise InputRejected("dimensions_too_large", what=what, width=f.dims[0], height=f.dims[1])
        return files

    def check_mask(self, mask: discord.Attachment) -> SourceFile:
        check_declared(
            mask.filename, mask.content_type, mask.size, max_bytes=self.settings.max_input_bytes, what=messages.THE_MASK
        )
        return from_attachment(mask)

    async def download(self, f: SourceFile, what: str) -> bytes:
        try:
            if f.attachment is not None:
                data = await f.attachment.read()
            elif allowed_media_host(f.url, self.extra_hosts):
                data = await self.read_capped(f.url, what)
            else:
                raise InputRejected("not_on_discord", what=what)
        except discord.HTTPException as exc:
            log.info("could not download an input image (%s)", exc.status)
            raise InputRejected("download_failed", what=what) from None
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            log.info("could not download a link preview (%s)", type(exc).__name__)
            raise InputRejected("download_failed", what=what) from None
        if len(data) > self.settings.max_input_bytes:
            raise InputRejected("download_too_large", what=what, max_bytes=self.settings.max_input_bytes)
        return data

    async def read_capped(self, url: str, what: str) -> bytes:
        """A link preview from Discord's media proxy, at most ``MAX_INPUT_MB`` of it (no cookies, no proxy)."""
        limit = self.settings.max_input_bytes
        timeout = aiohttp.ClientTimeout(total=60, sock_connect=15)
        async with (
            aiohttp.ClientSession(timeout=timeout, cookie_jar=aiohttp.DummyCookieJar()) as http,
            http.get(url, headers={"User-Agent": "imagebot (input)"}) as resp,
        ):
            if resp.status != 200:
                raise InputRejected("download_failed", what=what)
            if (resp.content_length or 0) > limit:
                raise InputRejected("download_too_large", what=what, max_bytes=limit)
            data = bytearray()
            async for chunk in resp.content.iter_chunked(256 * 1024):
                data += chunk
                if len(data) > limit:
                    raise InputRejected("download_too_large", what=what, max_bytes=limit)
            return bytes(data)

    async def load(
        self,
        files: list[SourceFile],
        mask: SourceFile | None = None,
        markup: SourceFile | None = None,
        *,
        user_id: int | None = None,
    ) -> EditInputs:
        """``_load``; ``user_id`` holds one of that person's preparation places meanwhile
        (``InputRejected("busy")`` if none is free)."""
        if user_id is None:
            return await self._load(files, mask, markup)
        async with self.gate.preparing(user_id):
            return await self._load(files, mask, markup)

    async def _load(
        self, files: list[SourceFile], mask: SourceFile | None = None, markup: SourceFile | None = None
    ) -> EditInputs:
        """Download and normalise each image (one at a time: bounded memory), then the mask or markup."""
        s = self.settings
        prepared = []
        for i, f in enumerate(files):
            what = what_name(i, len(files))
            data = await self.download(f, what)
            prepared.append(
                await prepare_image(
                    data, f.filename, max_side=s.max_input_side, max_pixels=s.max_input_pixels, what=what
                )
            )
        mask_input = None
        if mask is not None:
            data = await self.download(mask, messages.THE_MASK)
            mask_input = await prepare_mask(
                data, prepared[0].size, max_pixels=s.max_input_pixels, filename=mask.filename
            )
        markup_input = None
        if markup is not None:
            data = await self.download(markup, messages.THE_MARKUP)
            markup_input = await prepare_markup(data, prepared[0].size, markup.filename, max_pixels=s.max_input_pixels)
        return EditInputs(tuple(p.input for p in prepared), mask_input, markup_input)

    def check_markup(self, markup: discord.Attachment) -> SourceFile:
        check_declared(
            markup.filename,
            markup.content_type,
            markup.size,
            max_bytes=self.settings.max_input_bytes,
            what=messages.THE_MARKUP,
        )
        return from_attachment(markup)

    async def refetch(self, job: JobRecord, user_id: int | None = None) -> EditInputs:
        """After a restart: the parent result's images, else the recorded source image (no mask then)."""
        if job.parent_job_id is not None:
            parent = await self.bot.services.ledger.get_job(job.parent_job_id)
            if parent is not None and parent.message_id and parent.channel_id:
                channel = self.bot.get_partial_messageable(parent.channel_id, guild_id=parent.guild_id)
                try:
                    message: discord.Message | None = await channel.fetch_message(parent.message_id)
                except discord.HTTPException:
                    message = None
                if message is not None:
                    files = self.images_in(message)
                    if files:
                        return await self.load(self.check_files(files), user_id=user_id)
        url = job.source_image_url
        if url and allowed_media_host(url, self.extra_hosts):
            name = urlsplit(url).path.rsplit("/", 1)[-1] or "image.png"
            return await self.load([SourceFile(name, None, None, url)], user_id=user_id)
        raise InputRejected("reroll_source_gone")
