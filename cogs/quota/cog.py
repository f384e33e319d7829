"""``/quota``: members see their usage; moderators set limits and the budget, reset usage and read reports.

Thin: options are parsed and the caller's rights checked here (``cogs/_checks.py``); the rules (which
limit applies, what counts as usage) live in ``bot/quota/``, which also writes every moderator change to
the audit log; the words and embeds are in ``cogs/quota/render.py``.

Who is a moderator is decided by the bot itself, on every call: the Manage Server permission, or the
manager role the server configured with ``/quota managerrole``. (Discord's ``default_permissions``
cannot be set on subcommands, and ``/quota me`` must stay open to everyone.)
"""

from __future__ import annotations

import asyncio
import io
import zoneinfo
from datetime import UTC, datetime, timedelta
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.imaging.chart import render_chart
from bot.messages import clip, relative_time
from bot.messages.i18n import format_number, format_usd, translate
from bot.quota import Ledger, LimitArg, Moderation, Reports
from cogs._checks import admins_only, managers_only
from cogs._common import EMBED_COLOUR, ImageBotBase, guild_id_of, reply_ephemeral, role_ids, upload_budget
from cogs._translator import locale_of
from cogs.quota.chart import TOP_MEMBERS, chart_content
from cogs.quota.models import build_models_command
from cogs.quota.render import (
    MAX_BUDGET,
    MAX_LIMIT,
    audit_line,
    budget_line,
    changes_text,
    csv_file,
    limit_change,
    limit_text,
    lines_within,
    me_text,
    plural,
    refusal_lines,
    report_embed,
    show_embed,
    timezone_matches,
    usage_lines,
)
from cogs.rules import build_rule_group

REFUSALS_SHOWN_FOR = timedelta(days=30)
REPORT_DEFER_AFTER = 2.0  # seconds: Discord wants an answer within 3
LIMIT_HELP = "Images; 0 blocks, -1 is unlimited; leave out to keep"
CLEAR_HELP = "True: remove the limits set here, so the level below applies (values given are then set)"


class QuotaCog(commands.Cog):
    quota = app_commands.Group(
        name="quota", description="Image quotas: your usage, and limits for moderators", guild_only=True
    )

    def __init__(self, bot: ImageBotBase) -> None:
        self.bot = bot
        # /quota rule add|remove|list: the server's prompt rules (cogs/rules.py)
        self.quota.add_command(build_rule_group(bot.services.rules))
        # /quota models: which configured models members may use (cogs/quota/models.py)
        choice = getattr(bot.services, "model_choice", None)
        if choice is not None and len(choice.configured) > 1:
            self.quota.add_command(build_models_command(choice))

    @property
    def ledger(self) -> Ledger:
        return self.bot.services.ledger

    @property
    def moderation(self) -> Moderation:
        return self.bot.services.moderation

    @property
    def reports(self) -> Reports:
        return self.bot.services.reports

    # --- everyone ------------------------------------------------------------------------------------

    @quota.command(name="me", description="Your images used and remaining today and this month")
    async def me(self, interaction: discord.Interaction) -> None:
        guild_id = guild_id_of(interaction)
        usage = await self.ledger.usage(guild_id, interaction.user.id, role_ids(interaction.user))
        await reply_ephemeral(interaction, me_text(usage, locale_of(interaction)))

    # --- moderators ----------------------------------------------------------------------------------

    @quota.command(name="show", description="Moderators: a member's limits, usage and recent jobs")
    @app_commands.describe(user="Whose quota to show")
    @managers_only()
    async def show(self, interaction: discord.Interaction, user: discord.User) -> None:
        guild_id = guild_id_of(interaction)
        usage = await self.ledger.usage(guild_id, user.id, role_ids(user))
        jobs = await self.ledger.recent_jobs(guild_id, user.id, limit=10)
        await reply_ephemeral(interaction, embed=show_embed(user, usage, jobs, locale_of(interaction)))

    @quota.command(name="set", description="Moderators: a member's own daily and monthly image limits")
    @app_commands.describe(user="Whose limits to set", daily=LIMIT_HELP, monthly=LIMIT_HELP, clear=CLEAR_HELP)
    @managers_only()
    async def set_user(
        self,
        interaction: discord.Interaction,
        user: discord.User,
        daily: app_commands.Range[int, -1, MAX_LIMIT] | None = None,
        monthly: app_commands.Range[int, -1, MAX_LIMIT] | None = None,
        clear: bool = False,
    ) -> None:
        guild_id = guild_id_of(interaction)
        changes = await self._limit_changes(interaction, daily, monthly, clear)
        if changes is None:
            return
        details = await self.moderation.set_user_limit(
            guild_id, user.id, daily=changes[0], monthly=changes[1], actor_id=interaction.user.id
        )
        usage = await self.ledger.usage(guild_id, user.id, role_ids(user))
        loc = locale_of(interaction)
        head = translate(
            loc, "Limits of {user}: {changes}.\nNow:", user=user.mention, changes=changes_text(details, loc)
        )
        await reply_ephemeral(interaction, head + "\n" + "\n".join(usage_lines(usage, you=False, locale=loc)))

    @quota.command(name="role", description="Moderators: daily and monthly image limits for members of a role")
    @app_commands.describe(role="The role", daily=LIMIT_HELP, monthly=LIMIT_HELP, clear=CLEAR_HELP)
    @managers_only()
    async def set_role(
        self,
        interaction: discord.Interaction,
        role: discord.Role,
        daily: app_commands.Range[int, -1, MAX_LIMIT] | None = None,
        monthly: app_commands.Range[int, -1, MAX_LIMIT] | None = None,
        clear: bool = False,
    ) -> None:
        guild_id = guild_id_of(interaction)
        changes = await self._limit_changes(interaction, daily, monthly, clear)
        if changes is None:
            return
        details = await self.moderation.set_role_limit(
            guild_id, role.id, daily=changes[0], monthly=changes[1], actor_id=interaction.user.id
        )
        loc = locale_of(interaction)
        head = translate(loc, "Limits of {role}: {changes}.", role=role.mention, changes=changes_text(details, loc))
        note = translate(
            loc, "A member's own limit comes first; with several roles, the most generous role limit applies."
        )
        await reply_ephemeral(interaction, f"{head}\n-# {note}")

    @quota.command(name="default", description="Moderators: the server's default daily and monthly image limits")
    @app_commands.describe(daily=LIMIT_HELP, monthly=LIMIT_HELP, clear=CLEAR_HELP)
    @managers_only()
    async def set_default(
        self,
        interaction: discord.Interaction,
        daily: app_commands.Range[int, -1, MAX_LIMIT] | None = None,
        monthly: app_commands.Range[int, -1, MAX_LIMIT] | None = None,
        clear: bool = False,
    ) -> None:
        guild_id = guild_id_of(interaction)
        changes = await self._limit_changes(interaction, daily, monthly, clear)
        if changes is None:
            return
        details = await self.moderation.set_default_limit(
            guild_id, daily=changes[0], monthly=changes[1], actor_id=interaction.user.id
        )
        loc = locale_of(interaction)
        bot_default = translate(
            loc,
            "{daily} a day, {monthly} a month",
            daily=limit_text(self.ledger.default_daily, loc),
            monthly=limit_text(self.ledger.default_monthly, loc),
        )
        head = translate(loc, "Server default: {changes}.", changes=changes_text(details, loc))
        note = translate(
            loc,
            "It applies to members without a limit of their own or from a role. Where it is not set, the bot "
            "default applies ({bot_default}).",
            bot_default=bot_default,
        )
        await reply_ephemeral(interaction, f"{head}\n-# {note}")

    async def _limit_changes(
        self, interaction: discord.Interaction, daily: int | None, monthly: int | None, clear: bool
    ) -> tuple[LimitArg, LimitArg] | None:
        """The store arguments, or None after telling the moderator there is nothing to do."""
        if daily is None and monthly is None and not clear:
            await reply_ephemeral(
                interaction,
                translate(
                    locale_of(interaction),
                    "Nothing to change: give `daily` and/or `monthly` (a number of images, 0 blocks, -1 is unlimited), "
                    "or `clear:True` to remove the limits set here.",
                ),
            )
            return None
        try:
            return limit_change(daily, clear=clear), limit_change(monthly, clear=clear)
        except ValueError:  # Discord enforces the range too; a forged payload ends here
            loc = locale_of(interaction)
            text = translate(
                loc,
                "A limit is -1 (unlimited), 0 (blocked) or a number of images up to {max}.",
                max=format_number(loc, MAX_LIMIT),
            )
            await reply_ephemeral(interaction, text)
            return None

    @quota.command(name="reset", description="Moderators: clear a member's usage for today and this month")
    @app_commands.describe(user="Whose usage to clear")
    @managers_only()
    async def reset(self, interaction: discord.Interaction, user: discord.User) -> None:
        guild_id = guild_id_of(interaction)
        before = await self.moderation.reset_user(guild_id, user.id, actor_id=interaction.user.id)
        loc = locale_of(interaction)
        await reply_ephemeral(
            interaction,
            translate(
                loc,
                "Cleared the usage of {user}: the {daily} of today and {monthly} of this month no longer count "
                "against their limits. The ledger and the server budget keep them.",
                user=user.mention,
                daily=plural(before.daily_used, locale=loc),
                monthly=plural(before.monthly_used, locale=loc),
            ),
        )

    @quota.command(name="budget", description="Moderators: the server's monthly spending cap in US dollars")
    @app_commands.describe(usd="Monthly budget in USD; 0 stops all images, -1 removes the budget; leave out to see it")
    @managers_only()
    async def budget(
        self, interaction: discord.Interaction, usd: app_commands.Range[float, -1.0, MAX_BUDGET] | None = None
    ) -> None:
        guild_id = guild_id_of(interaction)
        if usd is not None:
            value = None if float(usd) < 0 else round(float(usd), 4)
            await self.moderation.set_budget(guild_id, value, actor_id=interaction.user.id)
        usage = await self.ledger.usage(guild_id, interaction.user.id, role_ids(interaction.user))
        loc = locale_of(interaction)
        if usage.budget_usd is None:
            if usd is not None:
                head = translate(loc, "Budget removed: no monthly cap.")
            else:
                head = translate(loc, "This server has no monthly budget.")
            text = head + " " + translate(loc, "Set one with `/quota budget usd:<dollars>`.")
        else:
            if usd is not None:
                head = translate(loc, "Monthly budget set to {budget}.", budget=format_usd(loc, usage.budget_usd))
            else:
                head = translate(loc, "Monthly budget.")
            text = f"{head}\n{budget_line(usage, loc)}"
            if usage.budget_usd == 0:
                text += "\n" + translate(
                    loc, "With a budget of $0 nobody can make images until it is raised or removed (`usd:-1`)."
                )
        await reply_ephemeral(interaction, text)

    @quota.command(name="report", description="Moderators: this month's images and spend per member, with a CSV")
    @managers_only()
    async def report(self, interaction: discord.Interaction) -> None:
        guild_id = guild_id_of(interaction)
        limit = max(1024, upload_budget(interaction.filesize_limit))
        build = asyncio.ensure_future(self._build_report(guild_id, limit, locale_of(interaction), interaction.guild))
        try:
            # Answer at once when the report is quick (the usual case); defer when a big ledger takes longer.
            fields = await asyncio.wait_for(asyncio.shield(build), REPORT_DEFER_AFTER)
        except TimeoutError:
            await interaction.response.defer(ephemeral=True, thinking=True)
            fields = await build
            await interaction.followup.send(ephemeral=True, **fields)
            return
        except asyncio.CancelledError:
            build.cancel()
            raise
        await reply_ephemeral(interaction, **fields)

    async def _build_report(
        self, guild_id: int, upload_limit: int, locale: str | None = None, guild: discord.Guild | None = None
    ) -> dict[str, Any]:
        """The report's embed, its chart and, when it fits the upload limit, its CSV ledger."""
        report = await self.reports.report(guild_id)
        ledger = await self.reports.ledger_csv(guild_id, since=report.period_start)
        local = report.period_start.astimezone(zoneinfo.ZoneInfo(report.timezone))
        file = await asyncio.to_thread(csv_file, ledger, f"imagebot-ledger-{local:%Y-%m}", upload_limit)
        embed = report_embed(report, locale)
        names = {u.user_id: await self._display_name(guild, u.user_id) for u in report.users[:TOP_MEMBERS]}
        chart_name = f"imagebot-usage-{local:%Y-%m}.png"
        chart = await render_chart(*chart_content(report, names, locale))
        embed.set_image(url=f"attachment://{chart_name}")
        files = [discord.File(io.BytesIO(chart), filename=chart_name)]
        if file is None:
            too_large = translate(locale, "The ledger is too large to attach, even compressed.")
            embed.add_field(name="CSV", value=too_large, inline=False)
        else:
            files.append(file)
        return {"embed": embed, "files": files}

    async def _display_name(self, guild: discord.Guild | None, user_id: int) -> str:
        """A member's name for the chart (a picture cannot show a mention)."""
        member = guild.get_member(user_id) if guild is not None else None
        user: discord.abc.User | None = member or self.bot.get_user(user_id)
        if user is None:
            try:
                user = await self.bot.fetch_user(user_id)
            except discord.HTTPException:
                return f"…{str(user_id)[-4:]}"
        return user.display_name

    @quota.command(name="audit", description="Moderators: the latest quota changes (who, what, when)")
    @managers_only()
    async def audit(self, interaction: discord.Interaction) -> None:
        guild_id = guild_id_of(interaction)
        entries = await self.moderation.audit_log(guild_id, limit=20, changes_only=True)
        since = datetime.now(UTC) - REFUSALS_SHOWN_FOR
        refusals = await self.bot.services.rules.refusals_by_member(guild_id, since=since)
        loc = locale_of(interaction)
        if not entries and not refusals:
            await reply_ephemeral(interaction, translate(loc, "No quota changes recorded yet."))
            return
        body = lines_within(
            [audit_line(e, loc) for e in entries] or [translate(loc, "No quota changes recorded yet.")],
            3000,
            lambda n: translate(loc, "… and {n} older", n=format_number(loc, n)),
        )
        embed = discord.Embed(
            title=translate(loc, "Quota changes, newest first"), description=body, colour=EMBED_COLOUR
        )
        if refusals:  # apart from the changes, one line per member however often they retried
            embed.add_field(name=translate(loc, "Refused prompts, last 30 days"), value=refusal_lines(refusals, loc))
        await reply_ephemeral(interaction, embed=embed)

    @quota.command(name="timezone", description="Moderators: the time zone in which days and months start")
    @app_commands.describe(tz="An IANA time zone such as Europe/Berlin or America/New_York; leave out to see it")
    @managers_only()
    async def timezone(self, interaction: discord.Interaction, tz: str | None = None) -> None:
        guild_id = guild_id_of(interaction)
        loc = locale_of(interaction)
        if tz is not None:
            try:
                await self.moderation.set_timezone(guild_id, tz, actor_id=interaction.user.id)
            except ValueError:
                await reply_ephemeral(
                    interaction,
                    translate(
                        loc,
                        "`{tz}` isn't a time zone I know. Pick one from the list, e.g. `Europe/Berlin`.",
                        tz=clip(discord.utils.escape_markdown(tz), 60),
                    ),
                )
                return
        usage = await self.ledger.usage(guild_id, interaction.user.id, role_ids(interaction.user))
        resets = {
            "tz": usage.timezone,
            "day": relative_time(usage.daily_resets_at),
            "month": relative_time(usage.monthly_resets_at),
        }
        if tz is not None:
            text = translate(loc, "Time zone set: **{tz}**. Days reset {day}, months {month}.", **resets)
        else:
            text = translate(loc, "Time zone: **{tz}**. Days reset {day}, months {month}.", **resets)
        await reply_ephemeral(interaction, text)

    @timezone.autocomplete("tz")
    async def timezone_autocomplete(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return [app_commands.Choice(name=n, value=n) for n in timezone_matches(current)]

    @quota.command(name="managerrole", description="Manage Server only: a role whose members may manage quotas")
    @app_commands.describe(role="Members with this role may use the moderator commands", clear="True: remove it")
    @admins_only()
    async def managerrole(
        self, interaction: discord.Interaction, role: discord.Role | None = None, clear: bool = False
    ) -> None:
        guild_id = guild_id_of(interaction)
        loc = locale_of(interaction)
        if role is not None and clear:
            await reply_ephemeral(interaction, translate(loc, "Give either `role` or `clear:True`, not both."))
            return
        if role is not None or clear:
            new_role = None if role is None else role.id
            await self.moderation.set_manager_role(guild_id, new_role, actor_id=interaction.user.id)
        current = await self.moderation.get_manager_role(guild_id)
        if current is None:
            text = translate(loc, "No manager role: only members with Manage Server can manage quotas.")
        else:
            text = translate(
                loc,
                "Members with {role} can manage quotas (as can everyone with Manage Server).",
                role="<@&" + str(current) + ">",
            )
        await reply_ephemeral(interaction, text)
