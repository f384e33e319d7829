"""Editing images (placeholder until the edits feature lands): the Edit button must not fail."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import discord

if TYPE_CHECKING:
    from bot.app import ImageBot


async def open_edit_modal(interaction: discord.Interaction, message: discord.Message | None) -> None:
    await interaction.response.send_message("Editing images is coming soon.", ephemeral=True)


async def reroll_edit(bot: ImageBot, interaction: discord.Interaction, job: Any, spec: Any) -> None:
    await interaction.followup.send("Editing images is coming soon.", ephemeral=True)


async def setup(bot: ImageBot) -> None:
    return None
