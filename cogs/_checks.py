"""Who may do what, decided by the bot itself on every call (whatever the server's command settings say).

A moderator has Manage Server (administrators and the owner have it) or the server's quota manager role
(``/quota managerrole``). A refusal raises ``NotModerator``, which the error path (``cogs/_errors.py``)
answers privately; nothing is changed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import discord
from discord import app_commands

from bot.ops.permissions import JOB_PERMISSIONS
from cogs._common import bot_of, role_ids
from cogs._errors import BotLacksPermissions, NotModerator

F = TypeVar("F", bound=Callable[..., Any])


def missing_permissions(perms: discord.Permissions, needed: tuple[str, ...]) -> list[str]:
    if perms.administrator:
        return []
    return [name for name in needed if not getattr(perms, name)]


def require_bot_permissions(perms: discord.Permissions, needed: tuple[str, ...] = JOB_PERMISSIONS) -> None:
    """Refuse a job (before any quota is reserved) where its result could not be delivered."""
    if names := missing_permissions(perms, needed):
        raise BotLacksPermissions(names)


def is_admin(interaction: discord.Interaction) -> bool:
    perms = interaction.permissions
    if perms.manage_guild or perms.administrator:
        return True
    guild = interaction.guild
    return guild is not None and guild.owner_id == interaction.user.id


async def manager_role(interaction: discord.Interaction) -> int | None:
    if interaction.guild_id is None:
        return None
    return await bot_of(interaction).services.moderation.get_manager_role(interaction.guild_id)


async def is_quota_manager(interaction: discord.Interaction) -> bool:
    """Manage Server (or administrator, or owner), or the server's quota manager role."""
    if interaction.guild_id is None:
        return False
    if is_admin(interaction):
        return True
    role = await manager_role(interaction)
    return role is not None and role in role_ids(interaction.user)


async def is_job_moderator(interaction: discord.Interaction) -> bool:
    """May act on other people's jobs (Delete, Cancel): Manage Messages, or a quota manager."""
    return interaction.permissions.manage_messages or await is_quota_manager(interaction)


async def require_quota_manager(interaction: discord.Interaction) -> None:
    if not await is_quota_manager(interaction):
        raise NotModerator(manager_role_id=await manager_role(interaction))


def managers_only() -> Callable[[F], F]:
    """The bot's own check of moderator commands."""

    async def predicate(interaction: discord.Interaction) -> bool:
        await require_quota_manager(interaction)
        return True

    return app_commands.check(predicate)


def admins_only() -> Callable[[F], F]:
    """Manage Server only: for settings that decide who counts as a moderator."""

    async def predicate(interaction: discord.Interaction) -> bool:
        if is_admin(interaction):
            return True
        raise NotModerator(admins_only=True)

    return app_commands.check(predicate)
