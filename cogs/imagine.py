"""``/imagine``: validate, defer at once, then hand the job to ``cogs.jobview.run_job``.

The command is built when the cog loads, so its choices are exactly what the configured model
supports (sizes, qualities, transparency).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import discord
from discord import app_commands
from discord.ext import commands

from bot.images.models import ModelInfo
from bot.jobs import JobSpec
from bot.options import (
    Choice,
    OptionError,
    background_choices,
    format_choices,
    parse_options,
    quality_choices,
    size_choices,
)
from cogs.errors import reply_ephemeral
from cogs.jobview import DYNAMIC_ITEMS, channel_nsfw, role_ids, start_interaction_job

if TYPE_CHECKING:
    from bot.app import ImageBot

F = TypeVar("F", bound=Callable[..., Any])


def _choices(items: list[Choice]) -> list[app_commands.Choice[str]]:
    return [app_commands.Choice(name=c.name, value=c.value) for c in items]


def image_options(model: ModelInfo) -> Callable[[F], F]:
    """Descriptions and model-specific choices of the options ``/imagine`` and ``/edit`` share."""

    def apply(func: F) -> F:
        func = app_commands.describe(
            size="Image size or aspect ratio",
            quality="Higher quality takes longer and costs more",
            background="Transparent needs PNG or WebP",
            format="File format of the result",
            count="How many images (1-10)",
        )(func)
        return app_commands.choices(
            size=_choices(size_choices(model)),
            quality=_choices(quality_choices(model)),
            background=_choices(background_choices(model)),
            format=_choices(format_choices()),
        )(func)

    return apply


def build_imagine_command(model: ModelInfo, cog: ImagineCog) -> app_commands.Command:  # type: ignore[type-arg]
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
    def __init__(self, bot: ImageBot) -> None:
        self.bot = bot
        self.command = build_imagine_command(bot.services.model, self)

    async def cog_load(self) -> None:
        self.bot.tree.add_command(self.command)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.command.name)

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
        # Everything before defer is pure and fast: bad input is answered privately, with no API call.
        if not prompt.strip():
            await reply_ephemeral(interaction, "Please describe the image you want in `prompt`.")
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
        except OptionError as exc:
            await reply_ephemeral(interaction, str(exc))
            return
        spec = JobSpec(
            kind="generate",
            user_id=interaction.user.id,
            guild_id=interaction.guild_id,
            channel_id=interaction.channel_id,
            role_ids=role_ids(interaction.user),
            prompt=prompt.strip(),
            options=options,
            channel_nsfw=channel_nsfw(interaction.channel),
        )
        await start_interaction_job(self.bot, interaction, spec)


async def setup(bot: ImageBot) -> None:
    bot.add_dynamic_items(*DYNAMIC_ITEMS)
    await bot.add_cog(ImagineCog(bot))
