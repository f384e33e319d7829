"""The Discord bot object: services handed in, cogs loaded, commands synced deliberately."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass

import aiosqlite
import discord
import yarl
from discord.ext import commands

from bot.config import Settings
from bot.db import kv_get, kv_set
from bot.images.client import ImagesClient
from bot.images.models import ModelInfo
from bot.jobs import JobService
from bot.quota import QuotaStore, connection_lock
from bot.rules import RuleStore

log = logging.getLogger(__name__)

COGS = ("cogs.imagine", "cogs.edit", "cogs.quota")


@dataclass
class Services:
    """Everything the cogs need, created once in ``bot.__main__`` and passed in."""

    settings: Settings
    db: aiosqlite.Connection
    images: ImagesClient
    quota: QuotaStore
    jobs: JobService
    model: ModelInfo
    rules: RuleStore | None = None  # prompt rules (cogs.rules)


def apply_endpoint_overrides(settings: Settings) -> None:
    """Point discord.py at another REST base / gateway (a proxy, or the test suite's fake Discord)."""
    if settings.discord_api_base:
        discord.http.Route.BASE = settings.discord_api_base
    if settings.discord_gateway_url:
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(settings.discord_gateway_url)


class ImageBot(commands.Bot):
    def __init__(self, services: Services) -> None:
        intents = discord.Intents.default()  # no privileged intents: no message content, no members
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=intents,
            help_command=None,
            allowed_mentions=discord.AllowedMentions.none(),
            max_messages=200,
        )
        self.services = services

    async def setup_hook(self) -> None:
        from cogs import errors as error_handling

        error_handling.install(self.tree)
        for name in COGS:
            await self.load_extension(name)
        recovered = await self.services.quota.recover_reservations()
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
        definitions = [c.to_dict(self.tree) for c in self.tree.get_commands(guild=guild)]
        digest = hashlib.sha256(json.dumps(definitions, sort_keys=True).encode()).hexdigest()
        key = f"command_sync:{self.application_id}:{guild_id or 'global'}"
        if mode == "auto" and await kv_get(self.services.db, key) == digest:
            log.info("commands unchanged since the last sync; not syncing")
            return
        try:
            synced = await self.tree.sync(guild=guild)
        except discord.HTTPException as exc:
            log.error("command sync failed (%s); slash commands may be out of date", exc.status)
            return
        async with connection_lock(self.services.db):  # never join a quota transaction in flight
            await kv_set(self.services.db, key, digest)
        log.info("synced %d commands %s", len(synced), f"to guild {guild_id}" if guild_id else "globally")

    async def process_commands(self, message: discord.Message) -> None:
        """No prefix commands: messages that mention the bot are edit requests (``cogs.edit``)."""
        return

    async def on_ready(self) -> None:
        log.info("ready as %s (%s) in %d server(s)", self.user, getattr(self.user, "id", "?"), len(self.guilds))

    async def close(self) -> None:
        await self.services.jobs.shutdown()
        await super().close()
