"""Languages on the Discord side: command localizations from the catalogs, and whose language a reply is in.

``CatalogTranslator`` is installed on the command tree in ``cogs/bot.py``; discord.py asks it for every
command, subcommand, group, option and choice name and description, once per Discord locale, when it
builds the payload it syncs, which then carries ``name_localizations`` and ``description_localizations``.
The translations come from the same ``.po`` catalogs as the messages (``bot/messages/i18n.py``): names are the
entries with the ``command name`` context, descriptions and choices the plain ones.
"""

from __future__ import annotations

import logging
import re

import discord
from discord import app_commands

from bot.messages.i18n import COMMAND_NAME, DEFAULT_LOCALE, catalog_name, resolve_locale, translate, translate_context

log = logging.getLogger(__name__)

# Discord's rule for CHAT_INPUT command and option names (any locale). ``\w`` covers letters and digits
# of every script, including Chinese; Discord also allows Devanagari and Thai marks, which ``\w`` misses.
_NAME_RE = re.compile(r"^[-_\w\u0900-\u097F\u0E00-\u0E7F]{1,32}$")
# Size choices of fixed-size models read "1024x1024 (square)" (bot/images/models.py).
_SIZE_LABEL = re.compile(r"^(?P<size>\S+) \((?P<shape>square|landscape|portrait)\)$")
_NAME_LOCATIONS = (
    app_commands.TranslationContextLocation.command_name,
    app_commands.TranslationContextLocation.group_name,
    app_commands.TranslationContextLocation.parameter_name,
)


def valid_name(name: str, *, menu: bool = False) -> bool:
    """Whether Discord accepts ``name`` for a slash command or option (a message menu may have spaces)."""
    if menu:
        return 1 <= len(name) <= 32 and name == name.strip()
    return name == name.lower() and _NAME_RE.fullmatch(name) is not None


def choice_text(locale: str, msgid: str) -> str:
    """A choice name in the language of ``locale``; a size label is translated by its shape."""
    match = _SIZE_LABEL.fullmatch(msgid)
    if match:
        template = "{size} (" + match["shape"] + ")"
        return translate(locale, template, size=match["size"])
    return translate(locale, msgid)


def _is_menu(context: app_commands.TranslationContextTypes) -> bool:
    return isinstance(context.data, app_commands.ContextMenu)


class CatalogTranslator(app_commands.Translator):
    """Command localizations from the message catalogs; ``None`` (no localization) where there is none."""

    async def translate(
        self,
        string: app_commands.locale_str,
        locale: discord.Locale,
        context: app_commands.TranslationContextTypes,
    ) -> str | None:
        lang = catalog_name(locale.value)
        if lang is None or lang == DEFAULT_LOCALE:
            return None
        msgid = string.message
        if context.location in _NAME_LOCATIONS:
            text = translate_context(lang, COMMAND_NAME, msgid)
            if text != msgid and not valid_name(text, menu=_is_menu(context)):
                log.error("the %s name %r for %r breaks Discord's naming rules; not used", lang, text, msgid)
                return None
        elif context.location is app_commands.TranslationContextLocation.choice_name:
            text = choice_text(lang, msgid)
        else:
            text = translate(lang, msgid)
            if len(text) > 100:
                log.error("the %s description for %r is over 100 characters; not used", lang, msgid)
                return None
        return text if text != msgid else None


def locale_of(interaction: discord.Interaction) -> str:
    """The catalog an interaction's answers are in: the user's language, else the server's, else English."""
    return resolve_locale(
        _code(getattr(interaction, "locale", None)), _code(getattr(interaction, "guild_locale", None))
    )


def _code(locale: discord.Locale | str | None) -> str | None:
    return locale.value if isinstance(locale, discord.Locale) else locale


def server_locale(guild: discord.Guild | None) -> str:
    """The catalog for answers to plain messages (replies that mention the bot): the server's language."""
    return resolve_locale(_code(getattr(guild, "preferred_locale", None)))
