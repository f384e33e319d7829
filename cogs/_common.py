"""Discord helpers every feature cog shares: the bot's type, replying, constants, the shared options.

Imports run one way: feature cogs (``cogs/imagine.py``, ``cogs/edit/``, ``cogs/quota/``) → shared helpers
(``cogs/_common.py``, ``cogs/_errors.py``, ``cogs/_render.py``, ``cogs/_delivery.py``, ``cogs/results.py``)
→ ``bot/`` services. Nothing here imports a feature cog.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import discord
from discord import app_commands
from discord.ext import commands

from bot.images_api.models import COMPLEXITIES, ModelInfo, union_of
from bot.jobs.options import (
    Choice,
    ImageOptions,
    OptionError,
    background_choices,
    complexity_choices,
    format_choices,
    quality_choices,
    size_choices,
)
from bot.jobs.service import JobSpec
from bot.jobs.services import Services
from bot.messages import clip

if TYPE_CHECKING:
    from bot.quota import JobRecord

log = logging.getLogger(__name__)

EMBED_COLOUR = discord.Colour(0x10A37F)
MESSAGE_MAX = 2000  # characters of a Discord message
# Room for the JSON part of a multipart upload: a message may carry this much less than the server's limit.
UPLOAD_MARGIN = 64 * 1024

F = TypeVar("F", bound=Callable[..., Any])
CommandT = TypeVar("CommandT", bound=app_commands.Command[Any, ..., Any])

# What the result buttons do, by job kind. Feature cogs fill this registry; ``cogs/results.py`` reads it.
RerollHandler = Callable[[discord.Interaction, "JobRecord", JobSpec], Awaitable[None]]
EditHandler = Callable[[discord.Interaction, "discord.Message | None", "JobRecord | None"], Awaitable[None]]


@dataclass
class ResultActions:
    reroll: dict[str, RerollHandler] = field(default_factory=dict)
    edit: EditHandler | None = None


class ImageBotBase(commands.AutoShardedBot):
    """What the cogs know of the bot: its services and the result-button registry (``cogs/bot.py``).

    Always sharded (one code path): one process with Discord's recommended shard count by default, or
    the shards ``SHARD_IDS`` of ``SHARD_COUNT``; every cog works in whichever process receives an event,
    because all it needs is in the shared database."""

    services: Services
    result_actions: ResultActions


def bot_of(interaction: discord.Interaction) -> ImageBotBase:
    client = interaction.client
    if not isinstance(client, ImageBotBase):  # pragma: no cover - the bot is always an ImageBotBase
        raise TypeError("interaction of an unexpected client")
    return client


def upload_budget(limit: int) -> int:
    """Bytes of files one message may carry: the server's limit less room for the JSON part."""
    return max(limit // 2, limit - UPLOAD_MARGIN)


def channel_nsfw(channel: object) -> bool:
    """Whether a channel is age-restricted (a thread: its parent). Unknown channels count as not."""
    is_nsfw = getattr(channel, "is_nsfw", None)
    return bool(is_nsfw()) if callable(is_nsfw) else False


def role_ids(user: discord.abc.User) -> tuple[int, ...]:
    roles = getattr(user, "roles", None) or []
    return tuple(r.id for r in roles)


def guild_id_of(interaction: discord.Interaction) -> int:
    """The server an interaction came from. Server-only commands never run in DMs; should one get
    there anyway, the error path answers "servers only" (``NoPrivateMessage``)."""
    if interaction.guild_id is None:
        raise app_commands.NoPrivateMessage()
    return interaction.guild_id


def job_spec(
    where: discord.Interaction | discord.Message,
    kind: Literal["generate", "edit"],
    prompt: str,
    options: ImageOptions,
    **more: Any,
) -> JobSpec:
    """A job asked for by whoever sent ``where`` (an interaction, or a message that mentions the bot), in
    its server and channel; ``more``: the edit's fields (parent, source URL, expected inputs)."""
    if isinstance(where, discord.Interaction):
        user: discord.abc.User = where.user
        guild_id, channel_id = where.guild_id, where.channel_id
    else:
        user, channel_id = where.author, where.channel.id
        guild_id = where.guild.id if where.guild is not None else None
    return JobSpec(
        kind=kind,
        user_id=user.id,
        guild_id=guild_id,
        channel_id=channel_id,
        role_ids=role_ids(user),
        prompt=prompt,
        options=options,
        channel_nsfw=channel_nsfw(where.channel),
        **more,
    )


async def reply_ephemeral(interaction: discord.Interaction, text: str = "", **fields: Any) -> None:
    """Answer privately, whatever state the interaction is in (fresh, deferred or expired): the one way
    the bot answers only the person who asked. ``fields``: embeds, files, ... as discord.py takes them.

    A public "thinking…" left by ``defer(thinking=True)`` is deleted first, so it never spins on; an
    interaction whose 15-minute token expired cannot be answered any more, which is logged.
    """
    if text:
        fields["content"] = clip(text, MESSAGE_MAX)
    if interaction.is_expired():
        log.info("interaction %s expired before it could be answered", interaction.id)
        return
    try:
        if not interaction.response.is_done():
            await interaction.response.send_message(ephemeral=True, **fields)
            return
        if interaction.response.type == discord.InteractionResponseType.deferred_channel_message:
            try:
                await interaction.delete_original_response()
            except discord.HTTPException:
                pass
        await interaction.followup.send(ephemeral=True, **fields)
    except (discord.HTTPException, RuntimeError) as exc:  # RuntimeError: shutting down, session closed
        log.warning("could not send a message to the user: %s", type(exc).__name__)


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
            format=_choices(format_choices(model)),
        )(func)

    return apply


def model_option() -> Callable[[F], F]:
    return app_commands.describe(model="Which image model (the ones this server allows)")


async def allowed_models_autocomplete(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
    """The models this server allows, matching what was typed."""
    choice = bot_of(interaction).services.model_choice
    if choice is None:
        return []
    allowed = await choice.allowed(interaction.guild_id)
    typed = current.strip().lower()
    return [app_commands.Choice(name=n, value=n) for n in allowed if typed in n.lower()][:25]


async def chosen_model(bot: ImageBotBase, guild_id: int | None, name: str | None) -> tuple[str, ModelInfo]:
    """The model a command runs with: the one named (it must be allowed in this server), else the
    server's first allowed model. Raises ``OptionError`` (answered privately) for any other name."""
    choice = bot.services.model_choice
    if choice is None:
        return bot.services.settings.image_model, bot.services.model
    allowed = await choice.allowed(guild_id)
    if name is None or not name.strip():
        return allowed[0], choice.info(allowed[0])
    name = name.strip()
    if name not in allowed:
        raise OptionError("model", model=name[:60].replace("`", "'"), models=", ".join(allowed))
    return name, choice.info(name)


def commands_model(bot: ImageBotBase) -> ModelInfo:
    """What the commands' choices are built from: every configured model's capabilities together."""
    choice = bot.services.model_choice
    if choice is None or len(choice.models) < 2:
        return bot.services.model
    return union_of(list(choice.models.values()))


def without_options(command: CommandT, names: set[str]) -> CommandT:
    """The command without the options ``names`` (features the configured models lack): their
    parameters keep their defaults. discord.py builds a command's options from its callback's signature
    and has no public way to leave one out, so they are dropped from its parameter table."""
    for name in names:
        command._params.pop(name, None)
    return command


def extended_options(model: ModelInfo, *, frames: bool = True) -> Callable[[F], F]:
    """Descriptions and choices of the newer controls (``complexity``; a GIF's ``frames``/``frame_ms``)."""

    def apply(func: F) -> F:
        words: dict[str, str] = {"complexity": "How much detail the model works into the image"}
        if frames:
            words.update(frames="GIF only: how many frames (2-16)", frame_ms="GIF only: milliseconds per frame")
        func = app_commands.describe(**words)(func)
        choices = complexity_choices(model) or [Choice(c, c) for c in COMPLEXITIES]
        return app_commands.choices(complexity=_choices(choices))(func)

    return apply
