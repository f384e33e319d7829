"""The buttons of a job: Cancel while it runs, then Reroll, Edit and Delete under its result.

They are ``DynamicItem``s whose custom id carries the job id, so they keep working after a restart (the
job is in the database); ``cogs/bot.py`` registers them in ``setup_hook``, independent of any cog. What
Reroll and Edit do depends on the job's kind, so they dispatch through ``ResultActions``, the registry
the feature cogs fill (``cogs/imagine.py``, ``cogs/edit/``); nothing here imports a feature cog.

The bot checks every click itself, whatever discord.py already matched: the job in the custom id must
belong to this server (and, for Reroll and Edit, this channel); Delete is for the requester and for
members with Manage Messages. Reroll charges the clicker only after these checks.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Literal

import discord

from bot import messages
from bot.jobs.options import ImageOptions
from bot.messages.i18n import translate
from bot.quota import JobRecord
from cogs._checks import is_job_moderator
from cogs._common import bot_of, chosen_model, job_spec
from cogs._errors import Refused, answering_errors

log = logging.getLogger(__name__)

PREFIX = "imagebot"


def custom_id(action: str, job_id: int) -> str:
    return f"{PREFIX}:{action}:{job_id}"


class ResultView(discord.ui.View):
    """The buttons under a result, labelled in the requester's language (``locale``): a message is
    rendered once for everyone who sees it. Whoever clicks reads the answers in their own language."""

    def __init__(self, job_id: int, *, include_edit: bool = True, locale: str | None = None) -> None:
        super().__init__(timeout=None)
        self.add_item(RerollButton(job_id, locale=locale))
        if include_edit:
            self.add_item(EditButton(job_id, locale=locale))
        self.add_item(DeleteButton(job_id, locale=locale))


async def job_for_click(interaction: discord.Interaction, job_id: int, *, same_channel: bool) -> JobRecord:
    """The job a button names, if it belongs where the button was clicked; else ``Refused``."""
    job = await bot_of(interaction).services.ledger.get_job(job_id)
    if job is None:
        raise Refused(messages.JOB_UNKNOWN)
    foreign = job.guild_id != interaction.guild_id or (same_channel and job.channel_id != interaction.channel_id)
    if foreign:
        log.warning(
            "button for job %s (guild %s, channel %s) clicked in guild %s channel %s: refused",
            job.id,
            job.guild_id,
            job.channel_id,
            interaction.guild_id,
            interaction.channel_id,
        )
        raise Refused(messages.JOB_NOT_HERE)
    return job


class _JobButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"$^"):  # abstract
    action = ""

    def __init__(self, job_id: int, *, label: str, emoji: str, style: discord.ButtonStyle) -> None:
        super().__init__(
            discord.ui.Button(label=label, emoji=emoji, style=style, custom_id=custom_id(self.action, job_id))
        )
        self.job_id = job_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> _JobButton:
        return cls(int(match["job"]))  # type: ignore[call-arg]

    async def callback(self, interaction: discord.Interaction) -> None:
        async with answering_errors(interaction):
            await self.clicked(interaction)

    async def clicked(self, interaction: discord.Interaction) -> None:
        raise NotImplementedError


class RerollButton(_JobButton, template=r"imagebot:reroll:(?P<job>\d+)"):
    action = "reroll"

    def __init__(self, job_id: int, *, locale: str | None = None) -> None:
        super().__init__(job_id, label=translate(locale, "Reroll"), emoji="🎲", style=discord.ButtonStyle.primary)

    async def clicked(self, interaction: discord.Interaction) -> None:
        job = await job_for_click(interaction, self.job_id, same_channel=True)
        if job.purged_at is not None:  # PROMPT_RETENTION_DAYS erased what it was asked with
            raise Refused(messages.RESULT_TOO_OLD)
        handler = bot_of(interaction).result_actions.reroll.get(job.kind)
        if handler is None:
            raise Refused(messages.FEATURE_UNAVAILABLE)
        # The same model again, if the server still allows it (a model no longer configured: the default).
        bot = bot_of(interaction)
        configured = bot.services.model_choice.configured if bot.services.model_choice is not None else []
        model, _ = await chosen_model(bot, interaction.guild_id, job.model if job.model in configured else None)
        kind: Literal["generate", "edit"] = "edit" if job.kind == "edit" else "generate"
        spec = job_spec(interaction, kind, job.prompt, ImageOptions.from_settings(job.settings), model=model)
        await handler(interaction, job, spec)


class EditButton(_JobButton, template=r"imagebot:edit:(?P<job>\d+)"):
    action = "edit"

    def __init__(self, job_id: int, *, locale: str | None = None) -> None:
        super().__init__(job_id, label=translate(locale, "Edit"), emoji="✏️", style=discord.ButtonStyle.secondary)

    async def clicked(self, interaction: discord.Interaction) -> None:
        job = await job_for_click(interaction, self.job_id, same_channel=True)
        handler = bot_of(interaction).result_actions.edit
        if handler is None:
            raise Refused(messages.FEATURE_UNAVAILABLE)
        await handler(interaction, interaction.message, job)  # the button names its job: no second look-up


class DeleteButton(_JobButton, template=r"imagebot:delete:(?P<job>\d+)"):
    action = "delete"

    def __init__(self, job_id: int, *, locale: str | None = None) -> None:
        super().__init__(job_id, label=translate(locale, "Delete"), emoji="🗑️", style=discord.ButtonStyle.danger)

    async def clicked(self, interaction: discord.Interaction) -> None:
        job = await job_for_click(interaction, self.job_id, same_channel=False)
        if not (job.user_id == interaction.user.id or interaction.permissions.manage_messages):
            raise Refused(messages.DELETE_NOT_YOURS)
        message = interaction.message
        if message is not None and job.message_id is not None and message.id != job.message_id:
            # The button must sit on the job's own result; anything else is a forged or stale payload.
            raise Refused(messages.JOB_NOT_HERE)
        await interaction.response.defer()
        try:
            await interaction.delete_original_response()
        except discord.HTTPException:
            if message is not None:
                await message.delete()


class CancelButton(_JobButton, template=r"imagebot:cancel:(?P<job>\d+)"):
    """On the progress message while the job is queued or streaming: for the requester and moderators."""

    action = "cancel"

    def __init__(self, job_id: int, *, locale: str | None = None) -> None:
        super().__init__(job_id, label=translate(locale, "Cancel"), emoji="✖️", style=discord.ButtonStyle.secondary)

    async def clicked(self, interaction: discord.Interaction) -> None:
        job = await job_for_click(interaction, self.job_id, same_channel=True)
        if not (job.user_id == interaction.user.id or await is_job_moderator(interaction)):
            raise Refused(messages.CANCEL_NOT_YOURS)
        jobs = bot_of(interaction).services.jobs
        name = discord.utils.escape_mentions(discord.utils.escape_markdown(interaction.user.display_name))
        if not jobs.cancel(job.id, by=name):
            raise Refused(messages.JOB_ALREADY_ENDED)
        # The job's own message flow shows "Cancelled by …" (and keeps any finished images).
        await interaction.response.defer()


class ProgressButtons(discord.ui.View):
    def __init__(self, job_id: int, locale: str | None = None) -> None:
        super().__init__(timeout=None)
        self.add_item(CancelButton(job_id, locale=locale))


RESULT_BUTTONS = (RerollButton, EditButton, DeleteButton, CancelButton)
