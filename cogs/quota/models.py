"""``/quota models``: which of the configured image models members of this server may use (moderators).

Without options it shows the allowed and the configured models; ``allow``/``remove`` change the list (at
least one stays allowed). Every change is in ``/quota audit``. ``/imagine`` and ``/edit`` offer the
allowed models (``cogs/_common.py``: ``chosen_model``).
"""

from __future__ import annotations

import discord
from discord import app_commands

from bot.jobs.model_choice import ModelChoice
from bot.messages.i18n import translate
from cogs._checks import managers_only
from cogs._translator import locale_of


def models_text(allowed: list[str], configured: list[str], locale: str | None) -> str:
    def listed(names: list[str]) -> str:
        return ", ".join(f"`{n}`" for n in names)

    return translate(
        locale,
        "Models members may use here: {allowed}\nConfigured by the operator: {configured}",
        allowed=listed(allowed),
        configured=listed(configured),
    )


def build_models_command(choice: ModelChoice) -> app_commands.Command[app_commands.Group, ..., None]:
    async def configured_autocomplete(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        typed = current.strip().lower()
        return [app_commands.Choice(name=n, value=n) for n in choice.configured if typed in n.lower()][:25]

    @app_commands.command(name="models", description="Moderators: which image models members may use here")
    @app_commands.describe(allow="A configured model to allow", remove="A model to stop allowing")
    @managers_only()
    async def models(interaction: discord.Interaction, allow: str | None = None, remove: str | None = None) -> None:
        assert interaction.guild_id is not None
        loc = locale_of(interaction)
        current = await choice.allowed(interaction.guild_id)
        if allow is None and remove is None:
            await interaction.response.send_message(models_text(current, choice.configured, loc), ephemeral=True)
            return
        for name in (allow, remove):
            if name is not None and name not in choice.configured:
                text = translate(loc, "`{model}` isn't a configured model.", model=name[:60].replace("`", "'"))
                await interaction.response.send_message(text, ephemeral=True)
                return
        wanted = [n for n in current if n != remove] + ([allow] if allow and allow not in current else [])
        if not wanted:
            text = translate(loc, "At least one model must stay allowed.")
            await interaction.response.send_message(text, ephemeral=True)
            return
        _, after = await choice.set_allowed(interaction.guild_id, wanted, actor_id=interaction.user.id)
        await interaction.response.send_message(models_text(after, choice.configured, loc), ephemeral=True)

    models.autocomplete("allow")(configured_autocomplete)
    models.autocomplete("remove")(configured_autocomplete)
    return models
