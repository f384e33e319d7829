"""``/quota``: members see their usage; moderators set limits and the budget, reset usage and read reports.

Thin: options are parsed and the caller's rights checked here; the rules (which limit applies, what
counts as usage) live in ``bot.quota``, which also writes every moderator change to the audit log.

Value conventions of the limit options (``daily``, ``monthly``): a number of images, ``0`` blocks,
``-1`` is unlimited, and leaving the option out keeps what is set. ``clear:True`` removes the limits
set at that level (a user's own, a role's, the server default) so the level below applies again.

Who is a moderator is decided by the bot itself, on every call: the Manage Server permission, or the
manager role the server configured with ``/quota managerrole``. (Discord's ``default_permissions``
cannot be set on subcommands, and ``/quota me`` must stay open to everyone.)
"""

from __future__ import annotations

import asyncio
import gzip
import io
import logging
import zoneinfo
from collections.abc import Callable, Sequence
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any, TypeVar

import discord
from discord import app_commands
from discord.ext import commands

from bot.messages import clip, relative_time
from bot.quota import INHERIT, UNCHANGED, AuditEntry, JobRecord, QuotaStore, Report, UsageSummary
from bot.quota.store import LimitArg
from cogs.errors import reply_ephemeral
from cogs.jobview import role_ids

if TYPE_CHECKING:
    from bot.app import ImageBot

log = logging.getLogger(__name__)

NO_MENTIONS = discord.AllowedMentions.none()
EMBED_COLOUR = discord.Colour(0x10A37F)
UNLIMITED = -1  # the option value that means "no limit"
MAX_LIMIT = 1_000_000
MAX_BUDGET = 1_000_000.0
UPLOAD_MARGIN = 64 * 1024  # room for the JSON part of the report's multipart upload
REPORT_DEFER_AFTER = 2.0  # seconds: Discord wants an answer within 3
REPORT_USERS = 40  # per-user lines in the report embed (the CSV has everyone)

LIMIT_HELP = "Images; 0 blocks, -1 is unlimited; leave out to keep"
CLEAR_HELP = "True: remove the limits set here, so the level below applies (values given are then set)"

F = TypeVar("F", bound=Callable[..., Any])


# --- who may do what ------------------------------------------------------------------------------


class NotQuotaManager(app_commands.CheckFailure):
    """A member without the rights used a moderator command (``cogs.errors`` answers privately)."""


def _store(interaction: discord.Interaction) -> QuotaStore:
    bot: ImageBot = interaction.client  # type: ignore[assignment]
    return bot.services.quota


def _is_admin(interaction: discord.Interaction) -> bool:
    perms = interaction.permissions
    if perms.manage_guild or perms.administrator:
        return True
    guild = interaction.guild
    return guild is not None and guild.owner_id == interaction.user.id


async def is_quota_manager(interaction: discord.Interaction) -> bool:
    """Manage Server (or administrator, or owner), or the server's quota manager role."""
    if interaction.guild_id is None:
        return False
    if _is_admin(interaction):
        return True
    manager_role = await _store(interaction).get_manager_role(interaction.guild_id)
    return manager_role is not None and manager_role in role_ids(interaction.user)


def managers_only() -> Callable[[F], F]:
    """The bot's own check of moderator commands; a refusal changes nothing."""

    async def predicate(interaction: discord.Interaction) -> bool:
        if await is_quota_manager(interaction):
            return True
        role = await _store(interaction).get_manager_role(interaction.guild_id) if interaction.guild_id else None
        extra = f" or the <@&{role}> role" if role else ""
        raise NotQuotaManager(
            f"Only moderators can use this command: it needs the Manage Server permission{extra}. Nothing was changed."
        )

    return app_commands.check(predicate)


def admins_only() -> Callable[[F], F]:
    """Manage Server only: for settings that decide who counts as a moderator."""

    async def predicate(interaction: discord.Interaction) -> bool:
        if _is_admin(interaction):
            return True
        raise NotQuotaManager("Only members with the Manage Server permission can change this. Nothing was changed.")

    return app_commands.check(predicate)


# --- option values ----------------------------------------------------------------------------------


def limit_change(value: int | None, *, clear: bool) -> LimitArg:
    """An option value as the store wants it: -1 unlimited (None), 0+ a number, absent keep (or clear)."""
    if value is None:
        return INHERIT if clear else UNCHANGED
    if value == UNLIMITED:
        return None
    if value < 0 or value > MAX_LIMIT:
        raise ValueError(f"a limit is -1 (unlimited), 0 (blocked) or a number of images up to {MAX_LIMIT:,}")
    return value


# --- rendering (pure) -------------------------------------------------------------------------------


def plural(n: int, noun: str = "image") -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def limit_text(value: int | None) -> str:
    if value is None:
        return "unlimited"
    if value == 0:
        return "blocked (0)"
    return str(value)


def audit_value(value: Any) -> str:
    """A limit as the audit log records it ("inherit", "unlimited" or a number)."""
    if value == "inherit":
        return "not set"
    if value == "unlimited":
        return "unlimited"
    if isinstance(value, int):
        return limit_text(value)
    return str(value)


def source_text(source: str, *, you: bool) -> str:
    """Where a limit comes from, in words: the user's own, a role's, the server's or the bot's default."""
    if source == "user":
        return "set for you" if you else "set for this user"
    if source.startswith("role:"):
        return f"from role <@&{source.removeprefix('role:')}>"
    if source == "server":
        return "server default"
    return "bot default"


def period_line(label: str, used: int, limit: int | None, source: str, resets_at: datetime, *, you: bool) -> str:
    where = source_text(source, you=you)
    if limit is None:
        allowance = f"no limit ({where})"
    elif limit == 0:
        allowance = f"blocked (limit 0, {where})"
    else:
        allowance = f"**{max(0, limit - used)}** remaining (limit {limit}, {where})"
    return f"**{label}**: {used} used, {allowance} · resets {relative_time(resets_at)}"


def budget_line(usage: UsageSummary) -> str | None:
    if usage.budget_usd is None:
        return None
    left = usage.budget_remaining or 0.0
    return (
        f"**Server budget**: ${usage.budget_spent:.2f} of ${usage.budget_usd:.2f} spent this month "
        f"(${left:.2f} remaining) · resets {relative_time(usage.budget_resets_at)}"
    )


def usage_lines(usage: UsageSummary, *, you: bool) -> list[str]:
    limits = usage.limits
    lines = [
        period_line("Today", usage.daily_used, limits.daily, limits.daily_source, usage.daily_resets_at, you=you),
        period_line(
            "This month",
            usage.monthly_used,
            limits.monthly,
            limits.monthly_source,
            usage.monthly_resets_at,
            you=you,
        ),
    ]
    if (budget := budget_line(usage)) is not None:
        lines.append(budget)
    return lines


def me_text(usage: UsageSummary) -> str:
    lines = ["**Your images on this server**", *usage_lines(usage, you=True)]
    lines.append(f"-# Days and months follow the server's time zone ({usage.timezone}).")
    return clip("\n".join(lines), 2000)


def job_images(job: JobRecord) -> str:
    if job.active:
        return f"{plural(job.images_reserved)} reserved"
    if job.status in ("done", "partial"):
        return plural(job.images_done)
    return "refunded"


def job_line(job: JobRecord) -> str:
    cost = job.cost_actual if not job.active else job.cost_estimate
    prompt = discord.utils.escape_markdown(clip(" ".join(job.prompt.split()), 40))
    return f"`#{job.id}` {relative_time(job.created_at)} · {job.status} · {job_images(job)} · ${cost:.3f} · {prompt}"


def lines_within(lines: Sequence[str], limit: int, more: Callable[[int], str]) -> str:
    """Join as many lines as fit in ``limit`` characters, ending with ``more(n)`` if ``n`` were left out."""
    out: list[str] = []
    size = 0
    for i, line in enumerate(lines):
        after = len(lines) - i - 1
        reserve = len(more(after)) + 1 if after else 0
        if size + len(line) + reserve > limit:
            out.append(more(len(lines) - i))
            break
        out.append(line)
        size += len(line) + 1
    return "\n".join(out)


def show_embed(user: discord.abc.User, usage: UsageSummary, jobs: Sequence[JobRecord]) -> discord.Embed:
    embed = discord.Embed(
        title=clip(f"Image quota of {user.display_name}", 256),
        description="\n".join([user.mention, *usage_lines(usage, you=False)]),
        colour=EMBED_COLOUR,
    )
    recent = lines_within([job_line(j) for j in jobs], 1024, lambda n: f"… and {n} more") if jobs else "None yet."
    embed.add_field(name="Recent jobs", value=recent, inline=False)
    embed.set_footer(text=f"Time zone {usage.timezone} · -1 = unlimited, 0 = blocked")
    return embed


def changes_text(details: dict[str, dict[str, Any]]) -> str:
    names = {"daily": "daily", "monthly": "monthly"}
    parts = [
        f"{names[p]} {audit_value(d['old'])} → **{audit_value(d['new'])}**" for p, d in details.items() if p in names
    ]
    return ", ".join(parts)


def report_embed(report: Report) -> discord.Embed:
    lines = [f"<@{u.user_id}>: {plural(u.images)} · {plural(u.jobs, 'job')} · ${u.spent_usd:.2f}" for u in report.users]
    body = (
        lines_within(lines[:REPORT_USERS], 3500, lambda n: f"… and {n} more") if lines else "No images this month yet."
    )
    if len(lines) > REPORT_USERS:
        body += f"\n… and {len(lines) - REPORT_USERS} more users (see the CSV)"
    embed = discord.Embed(
        title="Image usage this month",
        description=(
            f"Since <t:{int(report.period_start.timestamp())}:D>, resets {relative_time(report.period_end)} "
            f"({report.timezone})\n\n{body}"
        ),
        colour=EMBED_COLOUR,
    )
    embed.add_field(
        name="Total",
        value=f"{plural(report.total_images)} · {plural(report.total_jobs, 'job')} · ${report.total_spent:.2f}",
        inline=False,
    )
    if report.budget_usd is not None:
        share = f" ({report.total_spent / report.budget_usd:.0%})" if report.budget_usd > 0 else ""
        embed.add_field(
            name="Budget", value=f"${report.total_spent:.2f} of ${report.budget_usd:.2f}{share}", inline=False
        )
    embed.set_footer(text="The CSV lists every job of the month: status, images, tokens, estimated and actual cost.")
    return embed


def money_text(value: Any) -> str:
    return "no budget" if value is None else f"${float(value):.2f}"


def audit_line(entry: AuditEntry) -> str:
    target = ""
    if entry.target_id is not None:
        target = (
            f" <@&{entry.target_id}>"
            if entry.action in ("set_role_limit", "set_manager_role")
            else (f" <@{entry.target_id}>")
        )
    details = entry.details
    if entry.action in ("set_user_limit", "set_role_limit", "set_default_limit"):
        what = changes_text(details)
    elif entry.action == "reset_user":
        what = f"cleared {details.get('daily_used', 0)} today, {details.get('monthly_used', 0)} this month"
    elif entry.action == "set_budget":
        what = f"{money_text(details.get('old'))} → **{money_text(details.get('new'))}**"
    elif entry.action == "set_manager_role":
        old, new = details.get("old"), details.get("new")
        what = f"{f'<@&{old}>' if old else 'none'} → **{f'<@&{new}>' if new else 'none'}**"
    else:
        what = f"{details.get('old')} → **{details.get('new')}**"
    return clip(f"{relative_time(entry.created_at)} <@{entry.actor_id}> `{entry.action}`{target}: {what}", 300)


@lru_cache(maxsize=1)
def all_timezones() -> tuple[str, ...]:
    return tuple(sorted(zoneinfo.available_timezones()))


def timezone_matches(current: str, limit: int = 25) -> list[str]:
    """Time zone names for autocomplete: those starting with the text first, then those containing it."""
    needle = current.strip().lower().replace(" ", "_")
    names = all_timezones()
    if not needle:
        return ["UTC", *[n for n in names if "/" in n and not n.startswith("Etc/")][: limit - 1]]
    starts = [n for n in names if n.lower().startswith(needle)]
    contains = [n for n in names if needle in n.lower() and n not in starts]
    return (starts + contains)[:limit]


def _csv_file(text: str, name: str, limit: int) -> discord.File | None:
    """The ledger as a file that fits the upload limit: plain CSV, else gzipped, else None."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return discord.File(io.BytesIO(data), filename=f"{name}.csv")
    packed = gzip.compress(data)
    if len(packed) <= limit:
        return discord.File(io.BytesIO(packed), filename=f"{name}.csv.gz")
    return None


# --- the cog ----------------------------------------------------------------------------------------


class QuotaCog(commands.Cog):
    quota = app_commands.Group(
        name="quota", description="Image quotas: your usage, and limits for moderators", guild_only=True
    )

    def __init__(self, bot: ImageBot) -> None:
        self.bot = bot
        if (rules := getattr(bot.services, "rules", None)) is not None:  # TEMPORARY (issue 14): for the lead
            from cogs.rules import build_rule_group

            self.quota.add_command(build_rule_group(rules, is_quota_manager))

    @property
    def store(self) -> QuotaStore:
        return self.bot.services.quota

    async def _answer(self, interaction: discord.Interaction, text: str = "", **fields: Any) -> None:
        if text:
            fields["content"] = clip(text, 2000)
        await interaction.response.send_message(ephemeral=True, allowed_mentions=NO_MENTIONS, **fields)

    # --- everyone ------------------------------------------------------------------------------------

    @quota.command(name="me", description="Your images used and remaining today and this month")
    async def me(self, interaction: discord.Interaction) -> None:
        assert interaction.guild_id is not None
        usage = await self.store.usage(interaction.guild_id, interaction.user.id, role_ids(interaction.user))
        await self._answer(interaction, me_text(usage))

    # --- moderators ----------------------------------------------------------------------------------

    @quota.command(name="show", description="Moderators: a member's limits, usage and recent jobs")
    @app_commands.describe(user="Whose quota to show")
    @managers_only()
    async def show(self, interaction: discord.Interaction, user: discord.User) -> None:
        assert interaction.guild_id is not None
        usage = await self.store.usage(interaction.guild_id, user.id, role_ids(user))
        jobs = await self.store.recent_jobs(interaction.guild_id, user.id, limit=10)
        await self._answer(interaction, embed=show_embed(user, usage, jobs))

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
        assert interaction.guild_id is not None
        changes = await self._limit_changes(interaction, daily, monthly, clear)
        if changes is None:
            return
        details = await self.store.set_user_limit(
            interaction.guild_id, user.id, daily=changes[0], monthly=changes[1], actor_id=interaction.user.id
        )
        usage = await self.store.usage(interaction.guild_id, user.id, role_ids(user))
        text = f"Limits of {user.mention}: {changes_text(details)}.\nNow:\n" + "\n".join(usage_lines(usage, you=False))
        await self._answer(interaction, text)

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
        assert interaction.guild_id is not None
        changes = await self._limit_changes(interaction, daily, monthly, clear)
        if changes is None:
            return
        details = await self.store.set_role_limit(
            interaction.guild_id, role.id, daily=changes[0], monthly=changes[1], actor_id=interaction.user.id
        )
        await self._answer(
            interaction,
            f"Limits of {role.mention}: {changes_text(details)}.\n"
            "-# A member's own limit comes first; with several roles, the most generous role limit applies.",
        )

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
        assert interaction.guild_id is not None
        changes = await self._limit_changes(interaction, daily, monthly, clear)
        if changes is None:
            return
        details = await self.store.set_default_limit(
            interaction.guild_id, daily=changes[0], monthly=changes[1], actor_id=interaction.user.id
        )
        bot_default = f"{limit_text(self.store.default_daily)} a day, {limit_text(self.store.default_monthly)} a month"
        await self._answer(
            interaction,
            f"Server default: {changes_text(details)}.\n"
            f"-# It applies to members without a limit of their own or from a role. Where it is not set, the bot "
            f"default applies ({bot_default}).",
        )

    async def _limit_changes(
        self, interaction: discord.Interaction, daily: int | None, monthly: int | None, clear: bool
    ) -> tuple[LimitArg, LimitArg] | None:
        """The store arguments, or None after telling the moderator there is nothing to do."""
        if daily is None and monthly is None and not clear:
            await reply_ephemeral(
                interaction,
                "Nothing to change: give `daily` and/or `monthly` (a number of images, 0 blocks, -1 is unlimited), "
                "or `clear:True` to remove the limits set here.",
            )
            return None
        try:
            return limit_change(daily, clear=clear), limit_change(monthly, clear=clear)
        except ValueError as exc:
            await reply_ephemeral(interaction, str(exc).capitalize() + ".")
            return None

    @quota.command(name="reset", description="Moderators: clear a member's usage for today and this month")
    @app_commands.describe(user="Whose usage to clear")
    @managers_only()
    async def reset(self, interaction: discord.Interaction, user: discord.User) -> None:
        assert interaction.guild_id is not None
        before = await self.store.reset_user(interaction.guild_id, user.id, actor_id=interaction.user.id)
        await self._answer(
            interaction,
            f"Cleared the usage of {user.mention}: the {plural(before.daily_used)} of today and "
            f"{plural(before.monthly_used)} of this month no longer count against their limits. "
            "The ledger and the server budget keep them.",
        )

    @quota.command(name="budget", description="Moderators: the server's monthly spending cap in US dollars")
    @app_commands.describe(usd="Monthly budget in USD; 0 stops all images, -1 removes the budget; leave out to see it")
    @managers_only()
    async def budget(
        self, interaction: discord.Interaction, usd: app_commands.Range[float, -1.0, MAX_BUDGET] | None = None
    ) -> None:
        guild_id = interaction.guild_id
        assert guild_id is not None
        if usd is not None:
            value = None if float(usd) < 0 else round(float(usd), 4)
            await self.store.set_budget(guild_id, value, actor_id=interaction.user.id)
        usage = await self.store.usage(guild_id, interaction.user.id, role_ids(interaction.user))
        if usage.budget_usd is None:
            head = "Budget removed: no monthly cap." if usd is not None else "This server has no monthly budget."
            text = f"{head} Set one with `/quota budget usd:<dollars>`."
        else:
            head = f"Monthly budget set to ${usage.budget_usd:.2f}." if usd is not None else "Monthly budget."
            text = f"{head}\n{budget_line(usage)}"
            if usage.budget_usd == 0:
                text += "\nWith a budget of $0 nobody can make images until it is raised or removed (`usd:-1`)."
        await self._answer(interaction, text)

    @quota.command(name="report", description="Moderators: this month's images and spend per member, with a CSV")
    @managers_only()
    async def report(self, interaction: discord.Interaction) -> None:
        guild_id = interaction.guild_id
        assert guild_id is not None
        limit = max(1024, interaction.filesize_limit - UPLOAD_MARGIN)
        build = asyncio.ensure_future(self._build_report(guild_id, limit))
        try:
            # Answer at once when the report is quick (the usual case); defer when a big ledger takes longer.
            fields = await asyncio.wait_for(asyncio.shield(build), REPORT_DEFER_AFTER)
        except TimeoutError:
            await interaction.response.defer(ephemeral=True, thinking=True)
            fields = await build
            await interaction.followup.send(ephemeral=True, allowed_mentions=NO_MENTIONS, **fields)
            return
        except asyncio.CancelledError:
            build.cancel()
            raise
        await interaction.response.send_message(ephemeral=True, allowed_mentions=NO_MENTIONS, **fields)

    async def _build_report(self, guild_id: int, upload_limit: int) -> dict[str, Any]:
        """The report's embed and, when it fits the upload limit, its CSV ledger."""
        report = await self.store.report(guild_id)
        ledger = await self.store.ledger_csv(guild_id, since=report.period_start)
        local = report.period_start.astimezone(zoneinfo.ZoneInfo(report.timezone))
        file = await asyncio.to_thread(_csv_file, ledger, f"imagebot-ledger-{local:%Y-%m}", upload_limit)
        embed = report_embed(report)
        if file is None:
            embed.add_field(name="CSV", value="The ledger is too large to attach, even compressed.", inline=False)
            return {"embed": embed}
        return {"embed": embed, "file": file}

    @quota.command(name="audit", description="Moderators: the latest quota changes (who, what, when)")
    @managers_only()
    async def audit(self, interaction: discord.Interaction) -> None:
        assert interaction.guild_id is not None
        entries = await self.store.audit_log(interaction.guild_id, limit=20)
        if not entries:
            await self._answer(interaction, "No quota changes recorded yet.")
            return
        body = lines_within([audit_line(e) for e in entries], 4000, lambda n: f"… and {n} older")
        embed = discord.Embed(title="Quota changes, newest first", description=body, colour=EMBED_COLOUR)
        await self._answer(interaction, embed=embed)

    @quota.command(name="timezone", description="Moderators: the time zone in which days and months start")
    @app_commands.describe(tz="An IANA time zone such as Europe/Berlin or America/New_York; leave out to see it")
    @managers_only()
    async def timezone(self, interaction: discord.Interaction, tz: str | None = None) -> None:
        guild_id = interaction.guild_id
        assert guild_id is not None
        if tz is not None:
            try:
                await self.store.set_timezone(guild_id, tz, actor_id=interaction.user.id)
            except ValueError:
                await reply_ephemeral(
                    interaction,
                    f"`{clip(discord.utils.escape_markdown(tz), 60)}` isn't a time zone I know. "
                    "Pick one from the list, e.g. `Europe/Berlin`.",
                )
                return
        usage = await self.store.usage(guild_id, interaction.user.id, role_ids(interaction.user))
        head = "Time zone set" if tz is not None else "Time zone"
        await self._answer(
            interaction,
            f"{head}: **{usage.timezone}**. Days reset {relative_time(usage.daily_resets_at)}, "
            f"months {relative_time(usage.monthly_resets_at)}.",
        )

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
        guild_id = interaction.guild_id
        assert guild_id is not None
        if role is not None and clear:
            await reply_ephemeral(interaction, "Give either `role` or `clear:True`, not both.")
            return
        if role is not None or clear:
            new_role = None if role is None else role.id
            await self.store.set_manager_role(guild_id, new_role, actor_id=interaction.user.id)
        current = await self.store.get_manager_role(guild_id)
        if current is None:
            text = "No manager role: only members with Manage Server can manage quotas."
        else:
            text = f"Members with <@&{current}> can manage quotas (as can everyone with Manage Server)."
        await self._answer(interaction, text)


async def setup(bot: ImageBot) -> None:
    await bot.add_cog(QuotaCog(bot))
