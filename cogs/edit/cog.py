"""Editing images: replies that mention the bot, ``/edit``, the "Edit image" message menu and the Edit button.

Every path ends the same way: find the images (``cogs/edit/sources.py``), check and download them
(``cogs/edit/loader.py``), and hand an ``edit`` ``JobSpec`` to ``cogs/_delivery.py`` (previews, result,
buttons, quota).

The bot has no Message Content intent. Discord still delivers a message's content and attachments when the
message mentions the bot (a reply with the reply ping on counts), which is all a reply-to-edit needs.
"""

from __future__ import annotations

import dataclasses
import logging

import discord
from discord import app_commands
from discord.ext import commands

from bot import messages
from bot.images_api.models import ModelInfo
from bot.imaging.input_cache import EditInputs, InputCache
from bot.imaging.inputs import InputRejected
from bot.jobs.input_gate import precheck
from bot.jobs.options import ImageOptions, OptionError, parse_options
from bot.jobs.service import JobSpec
from bot.messages.i18n import translate
from bot.quota import JobRecord
from cogs._checks import REPLY_PERMISSIONS, missing_permissions, require_bot_permissions
from cogs._common import ImageBotBase, channel_nsfw, image_options, reply_ephemeral, role_ids
from cogs._delivery import InteractionTarget, MessageTarget, Target, run_job
from cogs._errors import answering_errors, answering_errors_with
from cogs._translator import locale_of, server_locale
from cogs.edit.loader import InputLoader
from cogs.edit.sources import SourceFile, from_attachment, instruction_from

log = logging.getLogger(__name__)

PROMPT_MAX = 4000  # a modal text input's maximum; the API takes up to 32,000


def build_edit_command(model: ModelInfo, cog: EditCog) -> app_commands.Command[EditCog, ..., None]:
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
    """Asks for the instruction; used by the "Edit image" menu and the Edit button alike.

    A modal is shown to one person, so it is worded in their language (``locale``)."""

    def __init__(
        self, cog: EditCog, files: list[SourceFile], parent: JobRecord | None, locale: str | None = None
    ) -> None:
        super().__init__(title=translate(locale, "Edit image"), timeout=15 * 60)
        self.cog, self.files, self.parent = cog, files, parent
        self.instruction: discord.ui.TextInput[EditModal] = discord.ui.TextInput(
            label=translate(locale, "What should change?"),
            style=discord.TextStyle.paragraph,
            placeholder=translate(locale, "make it night time"),
            max_length=PROMPT_MAX,
        )
        self.add_item(self.instruction)

    async def on_submit(self, interaction: discord.Interaction) -> None:
        async with answering_errors(interaction):
            prompt = self.instruction.value.strip()
            if not prompt:
                await reply_ephemeral(interaction, messages.text(locale_of(interaction), messages.EDIT_NO_INSTRUCTION))
                return
            options = self.cog.inherited_options(self.parent)
            await self.cog.edit_interaction(interaction, self.files, prompt, options, parent=self.parent)


class EditCog(commands.Cog):
    def __init__(self, bot: ImageBotBase) -> None:
        self.bot = bot
        self.command = build_edit_command(bot.services.model, self)
        self.menu = app_commands.ContextMenu(name="Edit image", callback=self.edit_menu)
        app_commands.guild_only(self.menu)
        self.cache = InputCache()
        self.loader = InputLoader(bot)

    async def cog_load(self) -> None:
        self.bot.tree.add_command(self.command)
        self.bot.tree.add_command(self.menu)
        self.bot.result_actions.reroll["edit"] = self.reroll
        self.bot.result_actions.edit = self.open_modal

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.command.name)
        self.bot.tree.remove_command(self.menu.name, type=self.menu.type)
        self.bot.result_actions.reroll.pop("edit", None)
        self.bot.result_actions.edit = None

    # ---- shared steps ------------------------------------------------------------------------------

    def inherited_options(self, parent: JobRecord | None) -> ImageOptions:
        """Editing a result keeps its quality, background and format (one image, size chosen by the API)."""
        if parent is None:
            return ImageOptions()
        s = parent.settings
        try:
            return parse_options(
                self.bot.services.model,
                quality=s.get("quality"),
                background=s.get("background"),
                output_format=s.get("format"),
            )
        except OptionError:  # the model changed since: fall back to the defaults
            return ImageOptions()

    async def admit(self, user: discord.abc.User, guild_id: int | None, images: int) -> None:
        """Before anything is downloaded: ``QuotaExceeded`` for a member who cannot be granted the images
        (blocked, or none left); the job's reservation still decides when it starts."""
        quota = self.bot.services.quota
        await precheck(quota, guild_id=guild_id, user_id=user.id, role_ids=role_ids(user), images=images)

    async def parent_of(self, message: discord.Message | None) -> JobRecord | None:
        """The job whose result ``message`` is, if it is one of the bot's results."""
        me = self.bot.user
        if message is None or me is None or message.author.id != me.id:
            return None
        return await self.bot.services.quota.job_by_message(message.id)

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
        # Everything before defer is pure and fast: bad input is answered privately (cogs/_errors.py).
        if not prompt.strip():
            await reply_ephemeral(interaction, messages.text(locale_of(interaction), messages.EDIT_EMPTY_PROMPT))
            return
        options = parse_options(
            self.bot.services.model,
            size=size,
            quality=quality,
            background=background,
            output_format=output_format,
            count=count,
        )
        files = self.loader.check_files([from_attachment(image)])
        mask_file = self.loader.check_mask(mask) if mask is not None else None
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
        require_bot_permissions(interaction.app_permissions)
        files = self.loader.check_files(files)
        await interaction.response.defer(thinking=True)
        target = InteractionTarget(interaction)
        try:
            await self.admit(interaction.user, interaction.guild_id, options.count)
            inputs = await self.loader.load(files, mask, user_id=interaction.user.id)
        except InputRejected as exc:
            await target.withdraw(messages.input_rejected(exc, target.locale))
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
        await self.open_modal(interaction, message, None)

    async def open_modal(
        self, interaction: discord.Interaction, message: discord.Message | None, job: JobRecord | None
    ) -> None:
        """The Edit form for ``message``'s images; ``job``: the result the Edit button named (checked by
        ``cogs/results.py``; it also works before the result's message id is recorded)."""
        if message is None:
            await reply_ephemeral(interaction, messages.text(locale_of(interaction), messages.MESSAGE_GONE))
            return
        files = self.loader.images_in(message)
        if not files:
            await reply_ephemeral(interaction, messages.text(locale_of(interaction), messages.NO_IMAGE_TO_EDIT))
            return
        files = self.loader.check_files(files)
        parent = job or await self.parent_of(message)
        await interaction.response.send_modal(EditModal(self, files, parent, locale_of(interaction)))

    # ---- Reroll of an edit --------------------------------------------------------------------------

    async def reroll(self, interaction: discord.Interaction, job: JobRecord, spec: JobSpec) -> None:
        """Run the same edit again, on the inputs still in memory or fetched again from Discord."""
        require_bot_permissions(interaction.app_permissions)
        await interaction.response.defer(thinking=True)
        target = InteractionTarget(interaction)
        # A reroll is another take on the same input: it has the same parent as the job it repeats.
        spec = dataclasses.replace(spec, parent_job_id=job.parent_job_id, source_image_url=job.source_image_url)
        inputs = self.cache.get(job.id)
        if inputs is None:
            try:
                await self.admit(interaction.user, interaction.guild_id, spec.options.count)
                inputs = await self.loader.refetch(job, interaction.user.id)
            except InputRejected as exc:
                await target.withdraw(messages.input_rejected(exc, target.locale))
                return
        spec = dataclasses.replace(spec, images=inputs.images, mask=inputs.mask)
        await self.run(target, spec, interaction.user)

    # ---- replies that mention the bot ---------------------------------------------------------------

    @commands.Cog.listener("on_message")
    async def on_message(self, message: discord.Message) -> None:
        me = self.bot.user
        if me is None or message.author.bot or not any(u.id == me.id for u in message.mentions):
            return
        locale = server_locale(message.guild)  # a plain message has no user locale: the server's language
        async with answering_errors_with(lambda text: self.answer(message, text), locale):
            await self.handle_reply(message, me.id, locale)

    async def answer(self, message: discord.Message, text: str) -> discord.Message:
        return await message.channel.send(
            text, reference=message.to_reference(fail_if_not_exists=False), mention_author=False
        )

    async def replied_message(self, message: discord.Message) -> discord.Message | None:
        ref = message.reference
        if ref is None or ref.message_id is None:
            return None
        resolved = ref.resolved
        if isinstance(resolved, discord.Message) and self.loader.images_in(resolved):
            return resolved
        if isinstance(resolved, discord.DeletedReferencedMessage):
            return None
        # Not delivered (or delivered without attachments): ask Discord for the message itself.
        try:
            return await message.channel.fetch_message(ref.message_id)
        except discord.HTTPException:
            return resolved if isinstance(resolved, discord.Message) else None

    async def handle_reply(self, message: discord.Message, bot_id: int, locale: str) -> None:
        def say(msgid: str) -> str:
            return messages.text(locale, msgid)

        if message.guild is None:
            await self.answer(message, say(messages.SERVERS_ONLY_EDIT))
            return
        perms = message.channel.permissions_for(message.guild.me)
        if missing_permissions(perms, ("view_channel", "send_messages")):
            log.warning("mentioned in channel %s where it may not answer; ignoring", message.channel.id)
            return
        require_bot_permissions(perms, REPLY_PERMISSIONS)  # answered as a reply by the error path
        source = await self.replied_message(message)
        files = self.loader.images_in(source) if source is not None else []
        own = self.loader.images_in(message)  # images attached to the reply itself come after
        if source is None and message.reference is not None and not own:
            await self.answer(message, say(messages.REPLIED_MESSAGE_GONE))
            return
        if not files and not own:
            await self.answer(message, say(messages.HOW_TO_EDIT if source is None else messages.NO_IMAGE_SEEN))
            return
        prompt = instruction_from(message, bot_id)
        if not prompt:
            await self.answer(message, say(messages.REPLY_NO_INSTRUCTION))
            return
        try:
            files = self.loader.check_files(files + own)
        except InputRejected as exc:
            await self.answer(message, f"❌ {messages.input_rejected(exc, locale)}")
            return
        parent = await self.parent_of(source)
        await self.admit(message.author, message.guild.id, 1)  # refused as the reservation would word it
        status = await self.answer(message, say(messages.PREPARING))
        async with answering_errors_with(lambda text: status.edit(content=f"❌ {text}"), locale):
            try:
                inputs = await self.loader.load(files, user_id=message.author.id)
            except InputRejected as exc:
                await status.edit(content=f"❌ {messages.input_rejected(exc, locale)}")
                return
            spec = self.make_spec(
                message.author,
                message.guild.id,
                message.channel.id,
                prompt[:32000],
                self.inherited_options(parent),
                inputs,
                parent_job_id=parent.id if parent else None,
                source_url=files[0].url,
                nsfw=channel_nsfw(message.channel),
            )
            target = MessageTarget(status, upload_limit=message.guild.filesize_limit, locale=locale)
            await self.run(target, spec, message.author)
