"""The composition root of the Discord side: the bot object, its cogs, its buttons, its error path.

The one place in ``bot/`` (with ``bot/__main__.py``) that imports ``discord`` and ``cogs/``: services are
created in ``bot/__main__.py`` and handed in; cogs are added here, and the result buttons registered
here, so no cog depends on another being loaded.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

import discord
import yarl
from discord.ext import commands

from bot.config.settings import Settings
from bot.jobs.services import Services
from cogs._common import ImageBotBase, ResultActions
from cogs._errors import ErrorTree
from cogs._translator import CatalogTranslator
from cogs.edit import EditCog
from cogs.imagine import ImagineCog
from cogs.quota import QuotaCog
from cogs.results import RESULT_BUTTONS
from cogs.tenancy import TenancyCog, refresh_application

log = logging.getLogger(__name__)


def apply_endpoint_overrides(settings: Settings) -> None:
    """Point discord.py at another REST base / gateway (a proxy, or the test suite's fake Discord)."""
    if settings.discord_api_base:
        discord.http.Route.BASE = settings.discord_api_base
    if settings.discord_gateway_url:
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(settings.discord_gateway_url)


def serves_shard_zero(settings: Settings) -> bool:
    """Whether this process serves shard 0: the one process that syncs application commands (with no
    SHARD_IDS, one process serves every shard)."""
    return not settings.shard_ids or 0 in settings.shard_ids


class ImageBot(ImageBotBase):
    def __init__(self, services: Services) -> None:
        intents = discord.Intents.default()  # no privileged intents: no message content, no members
        settings = services.settings
        # Neither set: one process, Discord's recommended shard count (GET /gateway/bot).
        shards: dict[str, Any] = {"shard_count": settings.shard_count}
        if settings.shard_ids:
            shards["shard_ids"] = list(settings.shard_ids)
        super().__init__(
            **shards,
            command_prefix=commands.when_mentioned,  # unused: no prefix commands (see process_commands)
            intents=intents,
            help_command=None,
            allowed_mentions=discord.AllowedMentions.none(),
            max_messages=200,
            tree_cls=ErrorTree,
        )
        self.services = services
        self.result_actions = ResultActions()

    async def setup_hook(self) -> None:
        await self.tree.set_translator(CatalogTranslator())  # zh-CN names and descriptions from bot/messages/locales/
        self.add_dynamic_items(*RESULT_BUTTONS)
        for cog in (ImagineCog(self), EditCog(self), QuotaCog(self), TenancyCog(self)):
            await self.add_cog(cog)
        await self.read_application()
        recovered = await self.services.ledger.recover_reservations()
        if recovered:
            log.warning("refunded %d reservation(s) left by an earlier crash: jobs %s", len(recovered), recovered)
        await self.sync_commands()

    async def sync_commands(self) -> None:
        mode = self.services.settings.sync_commands
        guild_id = self.services.settings.dev_guild_id
        guild = discord.Object(guild_id) if guild_id else None
        if guild is not None:
            self.tree.copy_global_to(guild=guild)
        if mode == "never":
            return
        if not serves_shard_zero(self.services.settings):
            log.info("not syncing commands: the process serving shard 0 does")
            return
        translator = self.tree.translator  # the digest covers the localizations too
        definitions = [
            await c.get_translated_payload(self.tree, translator) if translator else c.to_dict(self.tree)
            for c in self.tree.get_commands(guild=guild)
        ]
        digest = hashlib.sha256(json.dumps(definitions, sort_keys=True).encode()).hexdigest()
        key = f"command_sync:{self.application_id}:{guild_id or 'global'}"
        db = self.services.db
        if mode == "auto" and await db.kv_get(key) == digest:
            log.info("commands unchanged since the last sync; not syncing")
            return
        try:
            synced = await self.tree.sync(guild=guild)
        except discord.HTTPException as exc:
            log.error("command sync failed (%s); slash commands may be out of date", exc.status)
            return
        await db.kv_set(key, digest)  # its own transaction (on SQLite, under the connection's lock)
        log.info("synced %d commands %s", len(synced), f"to guild {guild_id}" if guild_id else "globally")

    async def read_application(self) -> None:
        """The Public Bot switch and the owners, from Discord; says once at start whose key pays where."""
        try:
            app = await refresh_application(self, force=True)
        except discord.HTTPException as exc:  # until it is read, the application counts as public
            log.warning("could not read the application from Discord (%s): treating it as public", exc.status)
            return
        settings = self.services.settings
        if app.bot_public and settings.operator_key_servers == "auto":
            log.warning(
                "the application is public (anyone can add the bot): only %d server(s) in ALLOWED_GUILD_IDS and "
                "the ones approved with /operator approve use your API key",
                len(settings.allowed_guild_ids),
            )

    async def process_commands(self, message: discord.Message) -> None:
        """No prefix commands: messages that mention the bot are edit requests (``cogs/edit/``)."""
        return

    async def on_ready(self) -> None:
        log.info(
            "ready as %s (%s) in %d server(s), shards %s of %s",
            self.user,
            getattr(self.user, "id", "?"),
            len(self.guilds),
            sorted(self.shards),
            self.shard_count,
        )

    async def close(self) -> None:
        """Running jobs get ``SHUTDOWN_GRACE`` seconds to finish while Discord is still connected; the rest
        are stopped (refunded, their messages saying so) before the connection closes."""
        await self.services.jobs.shutdown(self.services.settings.shutdown_grace)
        await super().close()
