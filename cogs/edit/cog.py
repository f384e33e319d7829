"""Editing images: replies that mention the bot, ``/edit``, the "Edit image" message menu and the Edit button.

Every path ends the same way: find the images (``cogs/edit/sources.py``), check what Discord declares of
them, open the job (rules, limits, the reservation), and only then download and check them
(``cogs/edit/loader.py``) and run it (``cogs/_delivery.py``: previews, result, buttons). An input refused
after the reservation gives it back.

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
from bot.images_api.types import InputImage
from bot.imaging.input_cache import EditInputs, InputCache
from bot.imaging.markup import derive_markup
from bot.jobs.job import Job
from bot.jobs.options import ImageOptions, OptionError, parse_options
from bot.jobs.service import JobSpec
from bot.messages.i18n import translate
from bot.ops.permissions import REPLY_PERMISSIONS, TO_ANSWER
from bot.quota import JobRecord
from cogs._checks import missing_permissions, require_bot_permissions
from cogs._common import ImageBotBase, chosen_model, commands_model, job_spec
from cogs._delivery import MessageTarget, Prepare, run_job, start_interaction_job
from cogs._errors import Refused, answering_errors, answering_errors_with
from cogs._translator import locale_of, server_locale
from cogs.edit.commands import build_edit_command
from cogs.edit.loader import InputLoader
from cogs.edit.sources import SourceFile, from_attachment, instruction_from

log = logging.getLogger(__name__)

PROMPT_MAX = 4000  # a modal text input's maximum; the API takes up to 32,000


async def scribbled(inputs: EditInputs) -> EditInputs:
    """A reply carrying a drawn-on copy of the replied image: the replied image plus the markup layer of
    what was drawn (derived off the event loop). Anything else is left as several input images."""
    original, drawn = inputs.images[0], inputs.images[-1]
    layer = await derive_markup(original.data, drawn.data)
    if layer is None:
        return inputs
    return EditInputs(inputs.images[:-1], None, InputImage("markup.png", layer, "image/png"))


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
                raise Refused(messages.EDIT_NO_INSTRUCTION)
            options = self.cog.inherited_options(self.parent)
            await self.cog.edit_interaction(interaction, self.files, prompt, options, parent=self.parent)


class EditCog(commands.Cog):
    def __init__(self, bot: ImageBotBase) -> None:
        self.bot = bot
        choice = bot.services.model_choice
        models = choice.configured if choice is not None else []
        self.command = build_edit_command(commands_model(bot), self, models)  # cogs/edit/commands.py
        self.menu = app_commands.ContextMenu(name="Edit image", callback=self.edit_menu)
        app_commands.guild_only(self.menu)
        self.cache = InputCache(max_bytes=bot.services.settings.edit_cache_bytes)
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

    async def parent_of(self, message: discord.Message | None) -> JobRecord | None:
        """The job whose result ``message`` is, if it is one of the bot's results."""
        me = self.bot.user
        if message is None or me is None or message.author.id != me.id:
            return None
        return await self.bot.services.ledger.job_by_message(message.id)

    def preparing(
        self, files: list[SourceFile], mask: SourceFile | None = None, markup: SourceFile | None = None
    ) -> Prepare:
        """The step between reserving an edit and running it: download and check its inputs. A refused
        input raises ``InputRejected`` inside the job, which gives the reservation back."""

        async def prepare(job: Job) -> None:
            inputs = await self.loader.load(files, mask, markup, user_id=job.spec.user_id)
            self.use(job, inputs)

        return prepare

    def use(self, job: Job, inputs: EditInputs) -> None:
        job.use_inputs(inputs.images, inputs.mask, inputs.markup)
        self.cache.put(job.id, inputs)  # Reroll of this job runs on the same inputs

    async def default_model(self, guild_id: int | None) -> str:
        """The model of an edit asked for without choosing one (the menu, the modal, replies)."""
        return (await chosen_model(self.bot, guild_id, None))[0]

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
        complexity: str | None = None,
        markup: discord.Attachment | None = None,
        model: str | None = None,
    ) -> None:
        # Everything before the job opens is pure and fast: bad input is answered privately (cogs/_errors.py).
        if not prompt.strip():
            raise Refused(messages.EDIT_EMPTY_PROMPT)
        name, info = await chosen_model(self.bot, interaction.guild_id, model)
        options = parse_options(
            info,
            size=size,
            quality=quality,
            background=background,
            output_format=output_format,
            count=count,
            complexity=complexity,
            edit=True,
            mask=mask is not None,
            markup=markup is not None,
        )
        files = self.loader.check_files([from_attachment(image)])
        mask_file = self.loader.check_mask(mask) if mask is not None else None
        markup_file = self.loader.check_markup(markup) if markup is not None else None
        await self.edit_interaction(
            interaction, files, prompt.strip(), options, parent=None, mask=mask_file, markup=markup_file, model=name
        )

    async def edit_interaction(
        self,
        interaction: discord.Interaction,
        files: list[SourceFile],
        prompt: str,
        options: ImageOptions,
        *,
        parent: JobRecord | None,
        mask: SourceFile | None = None,
        markup: SourceFile | None = None,
        model: str | None = None,
    ) -> None:
        """Open the job (rules, limits, reservation), then download the inputs and run it in the
        interaction's response."""
        files = self.loader.check_files(files)
        spec = job_spec(
            interaction,
            "edit",
            prompt,
            options,
            parent_job_id=parent.id if parent else None,
            source_image_url=files[0].url,
            expected_inputs=len(files) + (1 if markup is not None else 0),  # a markup layer is priced as an input
        )
        spec = dataclasses.replace(spec, model=model or await self.default_model(interaction.guild_id))
        await start_interaction_job(self.bot, interaction, spec, self.preparing(files, mask, markup))

    async def edit_menu(self, interaction: discord.Interaction, message: discord.Message) -> None:
        await self.open_modal(interaction, message, None)

    async def open_modal(
        self, interaction: discord.Interaction, message: discord.Message | None, job: JobRecord | None
    ) -> None:
        """The Edit form for ``message``'s images; ``job``: the result the Edit button named (checked by
        ``cogs/results.py``; it also works before the result's message id is recorded)."""
        if message is None:
            raise Refused(messages.MESSAGE_GONE)
        files = self.loader.images_in(message)
        if not files:
            raise Refused(messages.NO_IMAGE_TO_EDIT)
        files = self.loader.check_files(files)
        parent = job or await self.parent_of(message)
        await interaction.response.send_modal(EditModal(self, files, parent, locale_of(interaction)))

    # ---- Reroll of an edit --------------------------------------------------------------------------

    async def reroll(self, interaction: discord.Interaction, job: JobRecord, spec: JobSpec) -> None:
        """Run the same edit again, on the inputs still in memory or fetched again from Discord (after the
        reservation, like every edit's inputs)."""
        cached = self.cache.get(job.id)
        # A reroll is another take on the same input: it has the same parent as the job it repeats.
        spec = dataclasses.replace(
            spec,
            parent_job_id=job.parent_job_id,
            source_image_url=job.source_image_url,
            expected_inputs=len(cached.images) if cached else 1,
        )

        async def prepare(new: Job) -> None:
            self.use(new, cached or await self.loader.refetch(job, new.spec.user_id))

        await start_interaction_job(self.bot, interaction, spec, prepare)

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
        if message.guild is None:
            raise Refused(messages.SERVERS_ONLY_EDIT)
        perms = message.channel.permissions_for(message.guild.me)
        if missing_permissions(perms, TO_ANSWER):
            log.warning("mentioned in channel %s where it may not answer; ignoring", message.channel.id)
            return
        require_bot_permissions(perms, REPLY_PERMISSIONS)  # answered as a reply by the error path
        source = await self.replied_message(message)
        files = self.loader.images_in(source) if source is not None else []
        own = self.loader.images_in(message)  # images attached to the reply itself come after
        if source is None and message.reference is not None and not own:
            raise Refused(messages.REPLIED_MESSAGE_GONE)
        if not files and not own:
            raise Refused(messages.HOW_TO_EDIT if source is None else messages.NO_IMAGE_SEEN)
        prompt = instruction_from(message, bot_id)
        if not prompt:
            raise Refused(messages.REPLY_NO_INSTRUCTION)
        files = self.loader.check_files(files + own)  # answered as a reply by the error path
        parent = await self.parent_of(source)
        name, model = await chosen_model(self.bot, message.guild.id, None)
        spec = job_spec(
            message,
            "edit",
            prompt[:32000],
            self.inherited_options(parent),
            parent_job_id=parent.id if parent else None,
            source_image_url=files[0].url,
            expected_inputs=len(files),
            model=name,
        )
        # The job's message is the bot's reply, posted once the job is open; a refusal before that is the
        # reply itself, after it the reply says so.
        status: list[discord.Message] = []

        async def answer(text: str) -> None:
            if status:
                await status[0].edit(content=f"❌ {text}")
            else:
                await self.answer(message, text)

        async with answering_errors_with(answer, locale), self.bot.services.jobs.open(spec) as job:
            status.append(await self.answer(message, messages.text(locale, messages.PREPARING)))
            inputs = await self.loader.load(files, user_id=message.author.id)
            if len(own) == 1 and len(files) > 1 and model.markup:  # a drawn-on copy of the replied image
                inputs = await scribbled(inputs)
            self.use(job, inputs)
            target = MessageTarget(status[0], upload_limit=message.guild.filesize_limit, locale=locale)
            await run_job(self.bot, target, job, message.author)
