"""The ``/edit`` slash command, built for the configured model: its options are what the model can do
(complexity where it takes it, a markup layer where it reads one)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands

from bot.images_api.models import ModelInfo
from cogs._common import extended_options, image_options

if TYPE_CHECKING:
    from cogs.edit.cog import EditCog


def build_edit_command(model: ModelInfo, cog: EditCog) -> app_commands.Command[EditCog, ..., None]:
    if model.markup:
        return _build_extended(model, cog)
    if model.complexity:
        return _build_with_complexity(model, cog)

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


def _build_extended(model: ModelInfo, cog: EditCog) -> app_commands.Command[EditCog, ..., None]:
    """``/edit`` for models with the newer controls: complexity, and a markup layer where taken."""

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
    ) -> None:
        await cog.edit_command(
            interaction, image, prompt, mask, size, quality, background, format, count, complexity, markup
        )

    return edit


def _build_with_complexity(model: ModelInfo, cog: EditCog) -> app_commands.Command[EditCog, ..., None]:
    """``/edit`` for models that take complexity but no markup layer."""

    @app_commands.command(name="edit", description="Change an image with a text instruction")
    @app_commands.guild_only()
    @app_commands.describe(
        image="The image to edit (PNG, JPEG, WebP, GIF…)",
        prompt="What to change, e.g. make it night time",
        mask="Optional: where to edit. Transparent (or white on black) = edit there",
    )
    @image_options(model)
    @extended_options(model, frames=False)
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
    ) -> None:
        await cog.edit_command(interaction, image, prompt, mask, size, quality, background, format, count, complexity)

    return edit
