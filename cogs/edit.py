"""Editing images: replies that mention the bot, ``/edit``, the "Edit image" message menu and the Edit button.

Every path ends the same way: find the images (attachments, plus link-preview images), check what Discord
declares about them, download through discord.py, normalise with Pillow off the loop (``bot.inputs``), and
hand an ``edit`` ``JobSpec`` to ``cogs.jobview.run_job`` (previews, result, buttons, quota).

The bot has no Message Content intent. Discord still delivers a message's content and attachments when the
message mentions the bot (a reply with the reply ping on counts), which is all a reply-to-edit needs.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import discord
from discord import app_commands
from discord.ext import commands

from bot.images.models import ModelInfo
from bot.images.types import InputImage
from bot.inputs import (
    MAX_INPUT_IMAGES,
    InputRejected,
    check_declared,
    looks_like_image,
    prepare_image,
    prepare_mask,
)
from bot.jobs import ImageOptions, JobSpec
from bot.options import (
    OptionError,
    parse_options,
)
from bot.quota import JobRecord
from cogs.errors import GENERIC, reply_ephemeral
from cogs.imagine import image_options
from cogs.jobview import InteractionTarget, MessageTarget, Target, channel_nsfw, role_ids, run_job

if TYPE_CHECKING:
    from bot.app import ImageBot

log = logging.getLogger(__name__)

NO_MENTIONS = discord.AllowedMentions.none()
DISCORD_MEDIA_DOMAINS = ("discordapp.net", "discordapp.com", "discord.com", "discord.media")
EDIT_BUTTON_ID = re.compile(r"imagebot:edit:(?P<job>\d+)")  # cogs.jobview.EditButton
PROMPT_MAX = 4000  # a modal text input's maximum; the API takes up to 32,000

HOW_TO = (
    "To edit an image, reply to the message that has it, mention me and say what to change "
    "(for example *make it night time*), or right-click the message → **Apps** → **Edit image**. "
    "`/edit` takes an uploaded image; `/imagine` makes a new one."
)


# --- finding images in a message --------------------------------------------------------------------


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
            seen.update({url, proxy})
            name = urlsplit(url or proxy).path.rsplit("/", 1)[-1] or "image.png"
            w, h = getattr(media, "width", None), getattr(media, "height", None)
            found.append(SourceFile(name, None, None, proxy, None, (w, h) if w and h else None))
    return found


def instruction_from(message: discord.Message, bot_id: int) -> str:
    """The reply's text without the bot's mention; other people's mentions become their names."""
    text = re.sub(rf"<@!?{bot_id}>", " ", message.content or "")
    for user in message.mentions:
        if user.id != bot_id:
            text = re.sub(rf"<@!?{user.id}>", "@" + user.display_name, text)
    return " ".join(text.split()).lstrip(",:;-–— ")  # "@imagebot, make it night" -> "make it night"


# --- inputs kept for rerolls --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EditInputs:
    images: tuple[InputImage, ...]
    mask: InputImage | None = None

    @property
    def nbytes(self) -> int:
        return sum(len(i.data) for i in self.images) + (len(self.mask.data) if self.mask else 0)


class InputCache:
    """The prepared inputs of recent edit jobs, so Reroll needs no download (bounded; lost on restart)."""

    def __init__(self, max_bytes: int = 256 * 1024 * 1024, max_items: int = 64) -> None:
        self.max_bytes, self.max_items = max_bytes, max_items
        self._items: OrderedDict[int, EditInputs] = OrderedDict()
        self._bytes = 0

    def put(self, job_id: int, inputs: EditInputs) -> None:
        if inputs.nbytes > self.max_bytes:
            return
        self.pop(job_id)
        self._items[job_id] = inputs
        self._bytes += inputs.nbytes
        while self._bytes > self.max_bytes or len(self._items) > self.max_items:
            _, old = self._items.popitem(last=False)
            self._bytes -= old.nbytes

    def get(self, job_id: int) -> EditInputs | None:
        inputs = self._items.get(job_id)
        if inputs is not None:
            self._items.move_to_end(job_id)
        return inputs

    def pop(self, job_id: int) -> None:
        old = self._items.pop(job_id, None)
        if old is not None:
            self._bytes -= old.nbytes


# --- the command ---------------------------------------------------------------------------------------


def build_edit_command(model: ModelInfo, cog: EditCog) -> app_commands.Command[Any, Any, Any]:
    @app_commands.command(name="edit", description="Change an image with a text instruction")
    @app_commands.guild_only()
    @app_commands.describe(
        image="The image to edit (PNG, JPEG, WebP, GIF…)",
        prompt="What to change, e.g. make it night time",
        mask="Optional: where to edit. Transparent (or white on black) = edit there",
    )
    @image_options(model)
    async def edit(
        interaction: discord.Interaction,
        image: discord.Attachment,
        prompt: str,
        mask: discord.Attachment | None = None,
        size: str | None = None,
        quality: str | None = None,
        background: str | None = None,
        format: str | None = None,
        count: app_commands.Range[int, 1, 10] | None = None,
    ) -> None:
        await cog.edit_command(interaction, image, prompt, mask, size, quality, background, format, count)

    return edit


class EditModal(discord.ui.Modal):
    """Asks for the instruction; used by the "Edit image" menu and the Edit button alike."""

    instruction: discord.ui.TextInput[EditModal] = discord.ui.TextInput(
        label="What should change?",
        style=discord.TextStyle.paragraph,
        placeholder="make it night time",
        max_length=PROMPT_MAX,
    )

    def __init__(self, cog: EditCog, message: discord.Message, files: list[SourceFile], parent: JobRecord | None):
        super().__init__(title="Edit image", timeout=15 * 60)
        self.cog, self.message, self.files, self.parent = cog, message, files, parent

    async def on_submit(self, interaction: discord.Interaction) -> None:  # type: ignore[override]
        prompt = self.instruction.value.strip()
        if not prompt:
            await reply_ephemeral(interaction, "Please say what to change.")
            return
        await self.cog.edit_interaction(
            interaction, self.files, prompt, inherited_options(self.cog.bot, self.parent), parent=self.parent
        )

    async def on_error(self, interaction: discord.Interaction, error: Exception) -> None:  # type: ignore[override]
        log.error("edit modal failed", exc_info=error)
        await reply_ephemeral(interaction, GENERIC)


def inherited_options(bot: ImageBot, parent: JobRecord | None) -> ImageOptions:
    """Editing a result keeps its quality, background and format (one image, size chosen by the API)."""
    if parent is None:
        return ImageOptions()
    s = parent.settings
    try:
        return parse_options(
            bot.services.model, quality=s.get("quality"), background=s.get("background"), output_format=s.get("format")
        )
    except OptionError:  # the model changed since: fall back to the defaults
        return ImageOptions()


# --- the cog ---------------------------------------------------------------------------------------------


class EditCog(commands.Cog):
    def __init__(self, bot: ImageBot) -> None:
        self.bot = bot
        self.command = build_edit_command(bot.services.model, self)
        self.menu = app_commands.ContextMenu(name="Edit image", callback=self.edit_menu)
        app_commands.guild_only(self.menu)
        self.cache = InputCache()
        base = bot.services.settings.discord_api_base
        self.extra_hosts: tuple[str, ...] = (urlsplit(base).hostname or "",) if base else ()

    async def cog_load(self) -> None:
        self.bot.tree.add_command(self.command)
        self.bot.tree.add_command(self.menu)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.command.name)
        self.bot.tree.remove_command(self.menu.name, type=self.menu.type)

    @property
    def settings(self) -> Any:
        return self.bot.services.settings

    # ---- shared steps ------------------------------------------------------------------------------

    def check_files(self, files: list[SourceFile]) -> list[SourceFile]:
        """Cap at 16 and refuse, from what Discord declares, anything too big, empty or not an image."""
        files = files[:MAX_INPUT_IMAGES]
        for i, f in enumerate(files):
            what = "The image" if len(files) == 1 else f"Image {i + 1}"
            if f.attachment is not None:
                check_declared(
                    f.filename, f.content_type, f.size or 0, max_bytes=self.settings.max_input_bytes, what=what
                )
            elif f.dims is not None and f.dims[0] * f.dims[1] > self.settings.max_input_pixels:
                raise InputRejected(f"{what} is too large ({f.dims[0]}×{f.dims[1]}).")
        return files

    async def download(self, f: SourceFile, what: str) -> bytes:
        """Through discord.py only: ``Attachment.read()``, or its CDN fetch for a Discord link preview."""
        try:
            if f.attachment is not None:
                data = await f.attachment.read()
            elif allowed_media_host(f.url, self.extra_hosts):
                data = await self.bot.http.get_from_cdn(f.url)
            else:
                raise InputRejected(f"{what} isn't hosted on Discord, so the bot won't fetch it.")
        except discord.HTTPException as exc:
            log.info("could not download %s: %s", f.url, exc)
            raise InputRejected(f"{what} couldn't be downloaded from Discord (was it deleted?).") from None
        if len(data) > self.settings.max_input_bytes:
            raise InputRejected(f"{what} is larger than the {self.settings.max_input_bytes // 2**20} MB limit.")
        return data

    async def load_inputs(self, files: list[SourceFile], mask: SourceFile | None = None) -> EditInputs:
        """Download and normalise each image (one at a time: bounded memory), then the mask."""
        s = self.settings
        prepared = []
        for i, f in enumerate(files):
            what = "The image" if len(files) == 1 else f"Image {i + 1}"
            data = await self.download(f, what)
            prepared.append(
                await prepare_image(
                    data, f.filename, max_side=s.max_input_side, max_pixels=s.max_input_pixels, what=what
                )
            )
        mask_input = None
        if mask is not None:
            data = await self.download(mask, "The mask")
            mask_input = await prepare_mask(
                data, prepared[0].size, max_pixels=s.max_input_pixels, filename=mask.filename
            )
        return EditInputs(tuple(p.input for p in prepared), mask_input)

    async def parent_of(
        self, message: discord.Message | None, interaction: discord.Interaction | None = None
    ) -> JobRecord | None:
        """The job whose result ``message`` is, if it is one of the bot's results."""
        quota = self.bot.services.quota
        # The Edit button names its job; this also works before the result's message id is recorded.
        custom_id = str((interaction.data or {}).get("custom_id", "")) if interaction is not None else ""
        if m := EDIT_BUTTON_ID.fullmatch(custom_id):
            job = await quota.get_job(int(m["job"]))
            if job is not None:
                return job
        me = self.bot.user
        if message is None or me is None or message.author.id != me.id:
            return None
        return await quota.job_by_message(message.id)

    def make_spec(
        self,
        user: discord.abc.User,
        guild_id: int | None,
        channel_id: int | None,
        prompt: str,
        options: ImageOptions,
        inputs: EditInputs,
        *,
        parent_job_id: int | None,
        source_url: str | None,
        nsfw: bool = False,
    ) -> JobSpec:
        return JobSpec(
            kind="edit",
            user_id=user.id,
            guild_id=guild_id,
            channel_id=channel_id,
            role_ids=role_ids(user),
            prompt=prompt,
            options=options,
            images=inputs.images,
            mask=inputs.mask,
            parent_job_id=parent_job_id,
            source_image_url=source_url,
            channel_nsfw=nsfw,
        )

    async def run(self, target: Target, spec: JobSpec, user: discord.abc.User) -> None:
        outcome = await run_job(self.bot, target, spec, user)
        if outcome is not None:
            self.cache.put(outcome.job_id, EditInputs(spec.images, spec.mask))

    # ---- interactions: /edit, the modal (menu and Edit button) ------------------------------------

    async def edit_command(
        self,
        interaction: discord.Interaction,
        image: discord.Attachment,
        prompt: str,
        mask: discord.Attachment | None,
        size: str | None,
        quality: str | None,
        background: str | None,
        output_format: str | None,
        count: int | None,
    ) -> None:
        # Everything before defer is pure and fast: bad input is answered privately, with no API call.
        if not prompt.strip():
            await reply_ephemeral(interaction, "Please say what to change in `prompt`.")
            return
        try:
            options = parse_options(
                self.bot.services.model,
                size=size,
                quality=quality,
                background=background,
                output_format=output_format,
                count=count,
            )
            files = self.check_files([from_attachment(image)])
            mask_file = None
            if mask is not None:
                mask_file = from_attachment(mask)
                check_declared(
                    mask.filename,
                    mask.content_type,
                    mask.size,
                    max_bytes=self.settings.max_input_bytes,
                    what="The mask",
                )
        except (OptionError, InputRejected) as exc:
            await reply_ephemeral(interaction, getattr(exc, "message", None) or str(exc))
            return
        await self.edit_interaction(interaction, files, prompt.strip(), options, parent=None, mask=mask_file)

    async def edit_interaction(
        self,
        interaction: discord.Interaction,
        files: list[SourceFile],
        prompt: str,
        options: ImageOptions,
        *,
        parent: JobRecord | None,
        mask: SourceFile | None = None,
    ) -> None:
        """Defer, download and prepare, then run the job in the interaction's response."""
        try:
            files = self.check_files(files)
        except InputRejected as exc:
            await reply_ephemeral(interaction, exc.message)
            return
        await interaction.response.defer(thinking=True)
        target = InteractionTarget(interaction)
        try:
            inputs = await self.load_inputs(files, mask)
        except InputRejected as exc:
            await target.withdraw(exc.message)
            return
        spec = self.make_spec(
            interaction.user,
            interaction.guild_id,
            interaction.channel_id,
            prompt,
            options,
            inputs,
            parent_job_id=parent.id if parent else None,
            source_url=files[0].url,
            nsfw=channel_nsfw(interaction.channel),
        )
        await self.run(target, spec, interaction.user)

    async def edit_menu(self, interaction: discord.Interaction, message: discord.Message) -> None:
        await self.open_modal(interaction, message)

    async def open_modal(self, interaction: discord.Interaction, message: discord.Message | None) -> None:
        if message is None:
            await reply_ephemeral(interaction, "I can't see that message any more.")
            return
        files = images_in(message, self.extra_hosts)
        if not files:
            await reply_ephemeral(interaction, "That message has no image to edit.")
            return
        try:
            files = self.check_files(files)
        except InputRejected as exc:
            await reply_ephemeral(interaction, exc.message)
            return
        parent = await self.parent_of(message, interaction)
        await interaction.response.send_modal(EditModal(self, message, files, parent))

    # ---- Reroll of an edit --------------------------------------------------------------------------

    async def reroll(self, interaction: discord.Interaction, job: JobRecord, spec: JobSpec) -> None:
        """Run the same edit again. The interaction is already deferred."""
        target = InteractionTarget(interaction)
        # A reroll is another take on the same input: it has the same parent as the job it repeats.
        spec = dataclasses.replace(spec, parent_job_id=job.parent_job_id, source_image_url=job.source_image_url)
        inputs = self.cache.get(job.id)
        if inputs is None:
            try:
                inputs = await self.refetch_inputs(job)
            except InputRejected as exc:
                await target.withdraw(exc.message)
                return
        spec = dataclasses.replace(spec, images=inputs.images, mask=inputs.mask)
        await self.run(target, spec, interaction.user)

    async def refetch_inputs(self, job: JobRecord) -> EditInputs:
        """After a restart: the parent result's images, else the recorded source image (no mask then)."""
        gone = InputRejected("The image this edit started from is gone, so it can't be rerolled.")
        if job.parent_job_id is not None:
            parent = await self.bot.services.quota.get_job(job.parent_job_id)
            if parent is not None and parent.message_id and parent.channel_id:
                channel = self.bot.get_partial_messageable(parent.channel_id, guild_id=parent.guild_id)
                try:
                    message = await channel.fetch_message(parent.message_id)
                except discord.HTTPException:
                    message = None
                if message is not None:
                    files = images_in(message, self.extra_hosts)
                    if files:
                        return await self.load_inputs(self.check_files(files))
        url = job.source_image_url
        if url and allowed_media_host(url, self.extra_hosts):
            name = urlsplit(url).path.rsplit("/", 1)[-1] or "image.png"
            return await self.load_inputs([SourceFile(name, None, None, url)])
        raise gone

    # ---- replies that mention the bot ---------------------------------------------------------------

    @commands.Cog.listener("on_message")
    async def on_message(self, message: discord.Message) -> None:
        me = self.bot.user
        if me is None or message.author.bot or not any(u.id == me.id for u in message.mentions):
            return
        try:
            await self.handle_reply(message, me.id)
        except discord.HTTPException as exc:  # e.g. no permission to answer in that channel
            log.warning("could not answer message %s: %s", message.id, exc)

    async def answer(self, message: discord.Message, text: str) -> discord.Message:
        return await message.channel.send(
            text,
            reference=message.to_reference(fail_if_not_exists=False),
            mention_author=False,
            allowed_mentions=NO_MENTIONS,
        )

    async def replied_message(self, message: discord.Message) -> discord.Message | None:
        ref = message.reference
        if ref is None or ref.message_id is None:
            return None
        resolved = ref.resolved
        if isinstance(resolved, discord.Message) and images_in(resolved, self.extra_hosts):
            return resolved
        if isinstance(resolved, discord.DeletedReferencedMessage):
            return None
        # Not delivered (or delivered without attachments): ask Discord for the message itself.
        try:
            return await message.channel.fetch_message(ref.message_id)
        except discord.HTTPException:
            return resolved if isinstance(resolved, discord.Message) else None

    async def handle_reply(self, message: discord.Message, bot_id: int) -> None:
        if message.guild is None:
            await self.answer(message, "I edit images in servers only.")
            return
        source = await self.replied_message(message)
        files = images_in(source, self.extra_hosts) if source is not None else []
        own = images_in(message, self.extra_hosts)  # images attached to the reply itself come after
        if source is None and message.reference is not None and not own:
            await self.answer(message, "I can't find the message you replied to; it may have been deleted.")
            return
        if not files and not own:
            if source is None:
                await self.answer(message, HOW_TO)
            else:
                await self.answer(
                    message,
                    "That message has no image I can see. Reply to a message with an image, or use "
                    "right-click → **Apps** → **Edit image** on it.",
                )
            return
        prompt = instruction_from(message, bot_id)
        if not prompt:
            await self.answer(
                message, "What should I change? Reply again with an instruction, e.g. *make it night time*."
            )
            return
        try:
            files = self.check_files(files + own)
        except InputRejected as exc:
            await self.answer(message, f"❌ {exc.message}")
            return
        parent = await self.parent_of(source)
        status = await self.answer(message, "🎨 Getting the image ready…")
        try:
            inputs = await self.load_inputs(files)
        except InputRejected as exc:
            await status.edit(content=f"❌ {exc.message}", allowed_mentions=NO_MENTIONS)
            return
        except Exception:
            log.exception("preparing the inputs of message %s failed", message.id)
            await status.edit(content=f"❌ {GENERIC}", allowed_mentions=NO_MENTIONS)
            return
        spec = self.make_spec(
            message.author,
            message.guild.id,
            message.channel.id,
            prompt[:32000],
            inherited_options(self.bot, parent),
            inputs,
            parent_job_id=parent.id if parent else None,
            source_url=files[0].url,
            nsfw=channel_nsfw(message.channel),
        )
        await self.run(MessageTarget(status, upload_limit=message.guild.filesize_limit), spec, message.author)


# --- entry points used by cogs.jobview's buttons ------------------------------------------------------


def _cog(bot: Any) -> EditCog | None:
    cog = bot.get_cog("EditCog") if bot is not None else None
    return cog if isinstance(cog, EditCog) else None


async def open_edit_modal(interaction: discord.Interaction, message: discord.Message | None) -> None:
    cog = _cog(interaction.client)
    if cog is None:
        await reply_ephemeral(interaction, "Editing is not available right now.")
        return
    await cog.open_modal(interaction, message)


async def reroll_edit(bot: ImageBot, interaction: discord.Interaction, job: JobRecord, spec: JobSpec) -> None:
    cog = _cog(bot)
    if cog is None:
        await InteractionTarget(interaction).withdraw("Editing is not available right now.")
        return
    await cog.reroll(interaction, job, spec)


async def setup(bot: ImageBot) -> None:
    await bot.add_cog(EditCog(bot))
