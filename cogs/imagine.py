"""``/imagine`` and the Reroll of a generated image: validate, then hand the job to ``cogs/_delivery.py``.

The command is built when the cog is created, so its choices are exactly what the configured model
supports (sizes, qualities, transparency).
"""

from __future__ import annotations

import discord
from discord import app_commands
from discord.ext import commands

from bot import messages
from bot.images_api.models import ModelInfo
from bot.jobs.options import OptionError, parse_options
from bot.jobs.service import JobSpec
from bot.quota import JobRecord
from cogs._common import ImageBotBase, image_options, job_spec
from cogs._delivery import start_interaction_job
from cogs._errors import Refused


def build_imagine_command(model: ModelInfo, cog: ImagineCog) -> app_commands.Command[ImagineCog, ..., None]:
    @app_commands.command(name="imagine", description="Create an image from a text prompt")
    @app_commands.guild_only()
    @app_commands.describe(prompt="What to draw")
    @image_options(model)
    async def imagine(
        interaction: discord.Interaction,
        prompt: str,
        size: str | None = None,
        quality: str | None = None,
        background: str | None = None,
        format: str | None = None,
        count: app_commands.Range[int, 1, 10] | None = None,
    ) -> None:
        await cog.imagine(interaction, prompt, size, quality, background, format, count)

    return imagine


class ImagineCog(commands.Cog):
    def __init__(self, bot: ImageBotBase) -> None:
        self.bot = bot
        self.command = build_imagine_command(bot.services.model, self)

    async def cog_load(self) -> None:
        self.bot.tree.add_command(self.command)
        self.bot.result_actions.reroll["generate"] = self.reroll

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.command.name)
        self.bot.result_actions.reroll.pop("generate", None)

    async def imagine(
        self,
        interaction: discord.Interaction,
        prompt: str,
        size: str | None,
        quality: str | None,
        background: str | None,
        output_format: str | None,
        count: int | None,
    ) -> None:
        # Everything before the job opens is pure and fast: bad input is answered privately, with no API call.
        if not prompt.strip():
            raise Refused(messages.EMPTY_PROMPT)
        options = parse_options(
            self.bot.services.model,
            size=size,
            quality=quality,
            background=background,
            output_format=output_format,
            count=count,
        )  # an OptionError is answered privately by the error path (cogs/_errors.py)
        await start_interaction_job(self.bot, interaction, job_spec(interaction, "generate", prompt.strip(), options))

    async def reroll(self, interaction: discord.Interaction, job: JobRecord, spec: JobSpec) -> None:
        await start_interaction_job(self.bot, interaction, spec)


__all__ = ["ImagineCog", "OptionError"]
