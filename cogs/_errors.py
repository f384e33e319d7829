"""The one error path: every failure a user can meet ends here, worded by ``bot/messages/``.

* App commands: ``ErrorTree`` (the bot's ``tree_cls``) routes every command error to ``report_error``.
* Buttons, modals and the reply listener wrap their work in ``answering_errors``, which calls the same
  function (discord.py would only log an exception raised in a button callback, leaving "thinking…" on
  screen for good).

Raw exception text never reaches a user: errors the user can act on have their own words in
``bot/messages/``; anything else is logged with its traceback and answered with the generic message.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import discord
from discord import app_commands

from bot import messages
from bot.messages import tenancy as tenancy_words
from cogs._common import reply_ephemeral
from cogs._translator import locale_of

log = logging.getLogger(__name__)


class NotModerator(app_commands.CheckFailure):
    """A member without the rights used a moderator command or button; nothing was changed."""

    def __init__(self, *, manager_role_id: int | None = None, admins_only: bool = False, what: str = "command"):
        super().__init__("not a moderator")
        self.manager_role_id, self.admins_only, self.what = manager_role_id, admins_only, what


class Refused(Exception):
    """A request the bot will not carry out, for a reason the user can act on; ``msgid`` is its words in
    ``bot/messages/`` (a constant there), answered by the error path like any other refusal."""

    def __init__(self, msgid: str) -> None:
        super().__init__(msgid)
        self.msgid = msgid


class OwnerOnly(app_commands.CheckFailure):
    """Someone who is not the application's owner (nor an admin or developer of its team) used an owner
    command; nothing was changed."""

    def __init__(self) -> None:
        super().__init__("owner only")


class BotLacksPermissions(Exception):
    """The bot may not do what a job needs in this channel; ``names`` are permission attribute names."""

    def __init__(self, names: list[str]) -> None:
        super().__init__(", ".join(names))
        self.names = names


def error_text(error: BaseException, locale: str | None = None) -> str:
    """Words for any error in the language of ``locale`` (English when None); logs the bot's own faults."""
    original = error.original if isinstance(error, app_commands.CommandInvokeError) else error
    if isinstance(original, Refused):
        return messages.text(locale, original.msgid)
    if isinstance(original, NotModerator):
        return messages.not_moderator(original.manager_role_id, admins_only=original.admins_only, locale=locale)
    if isinstance(original, BotLacksPermissions):
        return messages.bot_missing_permissions(original.names, locale)
    if isinstance(original, OwnerOnly):
        return messages.text(locale, tenancy_words.OWNER_ONLY)
    if isinstance(original, app_commands.NoPrivateMessage):
        return messages.text(locale, messages.SERVERS_ONLY)
    if isinstance(error, app_commands.TransformerError):
        return messages.invalid_value(str(getattr(error, "value", "?")), locale)
    if isinstance(original, app_commands.CheckFailure):
        return messages.text(locale, messages.NOT_HERE)
    text = messages.user_error(original, locale)
    if text is None:
        log.error("unexpected error", exc_info=original)
        return messages.text(locale, messages.GENERIC)
    return text


async def report_error(interaction: discord.Interaction, error: BaseException) -> None:
    """Tell the user privately what went wrong, in their language, whatever state the interaction is in."""
    await reply_ephemeral(interaction, error_text(error, locale_of(interaction)))


class ErrorTree(app_commands.CommandTree[Any]):
    """The command tree of the bot (``cogs/bot.py`` passes it as ``tree_cls``)."""

    async def on_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        await report_error(interaction, error)


@contextlib.asynccontextmanager
async def answering_errors(interaction: discord.Interaction) -> AsyncIterator[None]:
    """For button callbacks and modals: an exception inside is answered like a command's."""
    try:
        yield
    except Exception as exc:
        await report_error(interaction, exc)


@contextlib.asynccontextmanager
async def answering_errors_with(
    answer: Callable[[str], Awaitable[Any]], locale: str | None = None
) -> AsyncIterator[None]:
    """For plain messages (replies that mention the bot): the answer is a message, not an interaction;
    ``locale`` is the server's."""
    try:
        yield
    except Exception as exc:
        text = error_text(exc, locale)
        try:
            await answer(text)
        except discord.HTTPException as send_exc:  # e.g. no permission to answer in that channel
            log.warning("could not answer a message: %s", type(send_exc).__name__)
