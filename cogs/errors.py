"""One error handler for every app command: a clear ephemeral message, never a traceback."""

from __future__ import annotations

import logging

import discord
from discord import app_commands

from bot.messages import user_error

log = logging.getLogger(__name__)

GENERIC = "Something went wrong on the bot's side. It has been logged; please try again."


async def reply_ephemeral(interaction: discord.Interaction, text: str) -> None:
    """Answer privately, whatever state the interaction is in (fresh, deferred or expired)."""
    try:
        if interaction.response.is_done():
            await interaction.followup.send(text, ephemeral=True, allowed_mentions=discord.AllowedMentions.none())
        else:
            await interaction.response.send_message(
                text, ephemeral=True, allowed_mentions=discord.AllowedMentions.none()
            )
    except (discord.HTTPException, RuntimeError) as exc:  # RuntimeError: shutting down, session closed
        log.warning("could not send an error message to the user: %s", exc)


async def on_app_command_error(interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
    original = error.original if isinstance(error, app_commands.CommandInvokeError) else error
    if isinstance(original, app_commands.CheckFailure):
        text = str(original) or "You can't use this command here."
    elif isinstance(original, app_commands.TransformerError):
        text = f"That value for `{getattr(original, 'value', '?')}` isn't valid."
    else:
        text = user_error(original) or GENERIC
        if text == GENERIC:
            log.error("command %s failed", getattr(interaction.command, "qualified_name", "?"), exc_info=original)
    await reply_ephemeral(interaction, text)


def install(tree: app_commands.CommandTree) -> None:  # type: ignore[type-arg]
    tree.on_error = on_app_command_error  # type: ignore[method-assign]
