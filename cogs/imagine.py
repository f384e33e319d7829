"""``/imagine`` and the Reroll of a generated image: validate, then hand the job to ``cogs/_delivery.py``.

The command is built when the cog is created, so its choices are exactly what the configured model
supports (sizes, qualities, transparency).
"""

from __future__ import annotations

from collections.abc import Sequence

import discord
from discord import app_commands
from discord.ext import commands

from bot import messages
from bot.images_api.models import ModelInfo
from bot.jobs.options import FRAME_MS_MAX, FRAME_MS_MIN, FRAMES_MAX, FRAMES_MIN, OptionError, parse_options
from bot.jobs.service import JobSpec
from bot.quota import JobRecord
from cogs._common import (
    ImageBotBase,
    allowed_models_autocomplete,
    chosen_model,
    commands_model,
    extended_options,
    image_options,
    job_spec,
    model_option,
    without_options,
)
from cogs._delivery import start_interaction_job
from cogs._errors import Refused


def build_imagine_command(
    model: ModelInfo, cog: ImagineCog, models: Sequence[str] = ()
) -> app_commands.Command[ImagineCog, ..., None]:
    """``/imagine`` with the options ``model`` (what every configured model can do, together) supports;
    ``model`` itself only when more than one model is configured."""

    @app_commands.command(name="imagine", description="Create an image from a text prompt")
    @app_commands.guild_only()
    @app_commands.describe(prompt="What to draw")
    @image_options(model)
    @extended_options(model)
    @model_option()
    async def imagine(
        interaction: discord.Interaction,
        prompt: str,
        size: str | None = None,
        quality: str | None = None,
        background: str | None = None,
        format: str | None = None,
        count: app_commands.Range[int, 1, 10] | None = None,
        complexity: str | None = None,
        frames: app_commands.Range[int, FRAMES_MIN, FRAMES_MAX] | None = None,
        frame_ms: app_commands.Range[int, FRAME_MS_MIN, FRAME_MS_MAX] | None = None,
        model: str | None = None,
    ) -> None:
        await cog.imagine(
            interaction, prompt, size, quality, background, format, count, complexity, frames, frame_ms, model
        )

    imagine.autocomplete("model")(allowed_models_autocomplete)
    unused = {"complexity"} if not model.complexity else set()
    if not model.gif:
        unused |= {"frames", "frame_ms"}
    if len(models) < 2:
        unused.add("model")
    return without_options(imagine, unused)


class ImagineCog(commands.Cog):
    def __init__(self, bot: ImageBotBase) -> None:
        self.bot = bot
        choice = bot.services.model_choice
        models = choice.configured if choice is not None else []
        self.command = build_imagine_command(commands_model(bot), self, models)

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
        complexity: str | None = None,
        frames: int | None = None,
        frame_ms: int | None = None,
        model: str | None = None,
    ) -> None:
        # Everything before the job opens is pure and fast: bad input is answered privately, with no API call.
        if not prompt.strip():
            raise Refused(messages.EMPTY_PROMPT)
        name, info = await chosen_model(self.bot, interaction.guild_id, model)
        options = parse_options(
            info,
            size=size,
            quality=quality,
            background=background,
            output_format=output_format,
            count=count,
            complexity=complexity,
            frame_count=frames,
            frame_duration_ms=frame_ms,
        )  # an OptionError is answered privately by the error path (cogs/_errors.py)
        spec = job_spec(interaction, "generate", prompt.strip(), options, model=name)
        await start_interaction_job(self.bot, interaction, spec)

    async def reroll(self, interaction: discord.Interaction, job: JobRecord, spec: JobSpec) -> None:
        await start_interaction_job(self.bot, interaction, spec)


__all__ = ["ImagineCog", "OptionError"]
