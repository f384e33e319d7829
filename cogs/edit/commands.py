"""The ``/edit`` slash command, built for the configured models: its options are what they can do
(complexity where one takes it, a markup layer where one reads it, the model when there is a choice)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import discord
from discord import app_commands

from bot.images_api.models import ModelInfo
from cogs._common import (
    allowed_models_autocomplete,
    extended_options,
    image_options,
    model_option,
    without_options,
)

if TYPE_CHECKING:
    from cogs.edit.cog import EditCog


def build_edit_command(
    model: ModelInfo, cog: EditCog, models: Sequence[str] = ()
) -> app_commands.Command[EditCog, ..., None]:
    @app_commands.command(name="edit", description="Change an image with a text instruction")
    @app_commands.guild_only()
    @app_commands.describe(
        image="The image to edit (PNG, JPEG, WebP, GIF…)",
        prompt="What to change, e.g. make it night time",
        mask="Optional: where to edit. Transparent (or white on black) = edit there",
        markup="Optional: a transparent layer of marks (arrows, circles, notes) showing what to change",
    )
    @image_options(model)
    @extended_options(model, frames=False)
    @model_option()
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
        complexity: str | None = None,
        markup: discord.Attachment | None = None,
        model: str | None = None,
    ) -> None:
        await cog.edit_command(
            interaction, image, prompt, mask, size, quality, background, format, count, complexity, markup, model
        )

    edit.autocomplete("model")(allowed_models_autocomplete)
    unused = set()
    if not model.complexity:
        unused.add("complexity")
    if not model.markup:
        unused.add("markup")
    if len(models) < 2:
        unused.add("model")
    return without_options(edit, unused)
