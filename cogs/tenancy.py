"""Who pays: ``/apikey`` (a server's own API key, for its managers) and ``/operator`` (the application's
owner approves, revokes and lists the servers the operator's key pays for).

The key is given in a modal, never as a command option (options are shown in the channel's command
preview and kept in clients' history); it is checked against its API before it is stored, encrypted, and
never shown back (``bot/quota/tenants.py``). Owners are read from Discord's application endpoint
(the owner, or a team's admins and developers), and so is the Public Bot switch (``bot/jobs/payers.py``).
"""

from __future__ import annotations

import logging
import time

import discord
from discord import app_commands
from discord.ext import commands, tasks

from bot.jobs.payers import OPENAI_BASE_URL, Application
from bot.messages import invalid_value
from bot.messages import tenancy as words
from bot.messages.i18n import translate
from bot.ops.doctor_api import check_server_key, public_base_url
from bot.quota.tenants import KeysDisabled, last4
from cogs._checks import admins_only
from cogs._common import ImageBotBase, guild_id_of, reply_ephemeral
from cogs._errors import OwnerOnly, answering_errors
from cogs._translator import locale_of

log = logging.getLogger(__name__)

APPLICATION_FRESH = 300.0  # seconds the application's owners and Public Bot switch are trusted
KEY_MAX = 400


async def refresh_application(bot: ImageBotBase, *, force: bool = False) -> Application:
    """Read ``GET /oauth2/applications/@me`` (at most every ``APPLICATION_FRESH`` seconds unless forced)."""
    payers = bot.services.payers
    known = payers.application
    if not force and known.bot_public is not None and time.monotonic() - known.read_at < APPLICATION_FRESH:
        return known
    info = await bot.application_info()
    if info.team is not None:
        owners = {
            m.id
            for m in info.team.members
            if getattr(m.role, "value", m.role) in ("admin", "developer")  # read-only members are not owners
        }
    else:
        owners = {info.owner.id}
    payers.application = Application(bool(info.bot_public), frozenset(owners), time.monotonic())
    return payers.application


async def require_owner(interaction: discord.Interaction) -> None:
    bot = interaction.client
    assert isinstance(bot, ImageBotBase)
    app = await refresh_application(bot, force=True)  # a team change applies at once
    if interaction.user.id not in app.owner_ids:
        log.warning("owner command refused for user %s", interaction.user.id)
        raise OwnerOnly()


def _guild_label(bot: ImageBotBase, guild_id: int) -> str:
    guild = bot.get_guild(guild_id)
    return f"{guild.name} ({guild_id})" if guild is not None else str(guild_id)


class KeyModal(discord.ui.Modal):
    """The key and base URL, typed into a form only the manager sees."""

    def __init__(self, cog: TenancyCog, locale: str | None) -> None:
        super().__init__(title=translate(locale, words.KEY_MODAL_TITLE), timeout=15 * 60)
        self.cog = cog
        self.key: discord.ui.TextInput[KeyModal] = discord.ui.TextInput(
            label=translate(locale, words.KEY_LABEL), placeholder="sk-…", max_length=KEY_MAX
        )
        self.base_url: discord.ui.TextInput[KeyModal] = discord.ui.TextInput(
            label=translate(locale, words.BASE_URL_LABEL),
            placeholder=OPENAI_BASE_URL,
            required=False,
            max_length=300,
        )
        self.add_item(self.key)
        self.add_item(self.base_url)

    async def on_submit(self, interaction: discord.Interaction) -> None:
        async with answering_errors(interaction):
            await self.cog.save_key(interaction, self.key.value.strip(), self.base_url.value.strip())


class TenancyCog(commands.Cog):
    # Hidden by default from members without Manage Server (servers may change that; the bot checks anyway).
    apikey = app_commands.Group(
        name="apikey",
        description="This server's own API key for images (server managers)",
        guild_only=True,
        default_permissions=discord.Permissions(manage_guild=True),
    )
    operator = app_commands.Group(
        name="operator",
        description="Servers the bot's owner pays for (owner only)",
        default_permissions=discord.Permissions(manage_guild=True),
    )

    def __init__(self, bot: ImageBotBase) -> None:
        self.bot = bot

    async def cog_load(self) -> None:
        self.reread.start()

    async def cog_unload(self) -> None:
        self.reread.cancel()

    @tasks.loop(seconds=APPLICATION_FRESH)
    async def reread(self) -> None:
        """The Public Bot switch and the team may change while the bot runs: read them again."""
        await self.bot.wait_until_ready()
        try:
            await refresh_application(self.bot, force=True)
        except discord.HTTPException as exc:
            log.warning("could not read the application from Discord: %s", exc.status)

    @commands.Cog.listener()
    async def on_guild_join(self, guild: discord.Guild) -> None:
        try:
            await refresh_application(self.bot)
        except discord.HTTPException as exc:
            log.warning("could not read the application from Discord: %s", exc.status)
        payers = self.bot.services.payers
        if not await payers.operator_pays(guild.id):
            log.info("joined server %s: not approved; it can bring its own key or be approved", guild.id)

    # ------------------------------------------------------------------ /apikey
    @apikey.command(name="set", description="Give the bot this server's own API key (opens a private form)")
    @admins_only()
    async def key_set(self, interaction: discord.Interaction) -> None:
        locale = locale_of(interaction)
        if not self.bot.services.tenants.keys_enabled:
            await reply_ephemeral(interaction, translate(locale, words.KEYS_DISABLED))
            return
        await interaction.response.send_modal(KeyModal(self, locale))

    async def save_key(self, interaction: discord.Interaction, key: str, base_url: str) -> None:
        locale = locale_of(interaction)
        services = self.bot.services
        guild_id = guild_id_of(interaction)
        if not services.tenants.keys_enabled:
            raise KeysDisabled()
        if not key:
            await reply_ephemeral(interaction, translate(locale, words.KEY_MISSING))
            return
        base = (base_url or OPENAI_BASE_URL).rstrip("/")
        if not await public_base_url(base, allow_private=services.settings.allow_private_base_urls):
            await reply_ephemeral(interaction, translate(locale, words.KEY_BAD_URL))
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        problem = await check_server_key(services.http, services.settings, base, key)
        if problem is not None:
            log.info("server %s: a key was refused before storing (%s)", guild_id, problem)
            await reply_ephemeral(interaction, words.key_check_failed(problem, services.settings.image_model, locale))
            return
        await services.tenants.set_key(guild_id, key, base_url and base, interaction.user.id)
        log.info("server %s: its own API key was set by %s", guild_id, interaction.user.id)
        await reply_ephemeral(interaction, words.key_saved(last4(key), base, locale))

    @apikey.command(name="remove", description="Remove this server's own API key")
    @admins_only()
    async def key_remove(self, interaction: discord.Interaction) -> None:
        locale = locale_of(interaction)
        guild_id = guild_id_of(interaction)
        services = self.bot.services
        if not await services.tenants.remove_key(guild_id, interaction.user.id):
            await reply_ephemeral(interaction, translate(locale, words.KEY_NOTHING_TO_REMOVE))
            return
        log.info("server %s: its own API key was removed by %s", guild_id, interaction.user.id)
        operator = await services.payers.operator_pays(guild_id)
        await reply_ephemeral(
            interaction, translate(locale, words.KEY_REMOVED_OPERATOR if operator else words.KEY_REMOVED_REFUSED)
        )

    @apikey.command(name="status", description="Which API key pays for this server's images")
    @admins_only()
    async def key_status(self, interaction: discord.Interaction) -> None:
        guild_id = guild_id_of(interaction)
        services = self.bot.services
        info = await services.tenants.key_info(guild_id)
        operator = await services.payers.operator_pays(guild_id)
        text = words.key_status(
            info.last4 if info else None, info.base_url if info else None, operator, locale_of(interaction)
        )
        await reply_ephemeral(interaction, text)

    # ------------------------------------------------------------------ /operator (owner only)
    @operator.command(name="approve", description="Let a server use your API key (owner only)")
    @app_commands.describe(server="The server's id (default: this server)")
    async def approve(self, interaction: discord.Interaction, server: str | None = None) -> None:
        await require_owner(interaction)
        guild_id = await self._target(interaction, server)
        if guild_id is None:
            return
        changed = await self.bot.services.tenants.approve(guild_id, interaction.user.id)
        log.info("server %s approved by owner %s", guild_id, interaction.user.id)
        label = _guild_label(self.bot, guild_id)
        await reply_ephemeral(interaction, words.approved(label, not changed, locale_of(interaction)))

    @operator.command(name="revoke", description="Stop paying for a server's images (owner only)")
    @app_commands.describe(server="The server's id (default: this server)")
    async def revoke(self, interaction: discord.Interaction, server: str | None = None) -> None:
        await require_owner(interaction)
        guild_id = await self._target(interaction, server)
        if guild_id is None:
            return
        changed = await self.bot.services.tenants.revoke(guild_id, interaction.user.id)
        log.info("server %s revoked by owner %s", guild_id, interaction.user.id)
        label = _guild_label(self.bot, guild_id)
        await reply_ephemeral(interaction, words.revoked(label, changed, locale_of(interaction)))

    @operator.command(name="list", description="The servers your API key pays for (owner only)")
    async def listing(self, interaction: discord.Interaction) -> None:
        await require_owner(interaction)
        services = self.bot.services
        approvals = await services.tenants.approvals()
        text = words.listing(
            services.payers.application.bot_public,
            services.payers.mode,
            [_guild_label(self.bot, g) for g in services.settings.allowed_guild_ids],
            [_guild_label(self.bot, a.guild_id) for a in approvals],
            locale_of(interaction),
        )
        await reply_ephemeral(interaction, text)

    @staticmethod
    async def _target(interaction: discord.Interaction, server: str | None) -> int | None:
        """The server an owner command is about (ids exceed what integer options carry: a string); None
        when the text is no id (answered here)."""
        if server is None or not server.strip():
            if interaction.guild_id is None:
                raise app_commands.NoPrivateMessage()
            return interaction.guild_id
        text = server.strip()
        if not text.isdigit() or not 0 < int(text) < 2**64:
            await reply_ephemeral(interaction, invalid_value(text, locale_of(interaction)))
            return None
        return int(text)
