"""``/quota``'s pure parts: option values as the store wants them, and the words and embeds it shows.

Value conventions of the limit options (``daily``, ``monthly``): a number of images, ``0`` blocks,
``-1`` is unlimited, and leaving the option out keeps what is set. ``clear:True`` removes the limits
set at that level (a user's own, a role's, the server default) so the level below applies again.
"""

from __future__ import annotations

import gzip
import io
import zoneinfo
from collections.abc import Callable, Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any

import discord

from bot.i18n import format_number, format_usd, translate
from bot.messages import clip, relative_time
from bot.quota import INHERIT, UNCHANGED, AuditEntry, JobRecord, Report, UsageSummary
from bot.quota.store import LimitArg
from cogs._common import EMBED_COLOUR

UNLIMITED = -1  # the option value that means "no limit"
MAX_LIMIT = 1_000_000
MAX_BUDGET = 1_000_000.0
REPORT_USERS = 40  # per-user lines in the report embed (the CSV has everyone)


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


def source_text(source: str, *, you: bool, locale: str | None = None) -> str:
    """Where a limit comes from, in words: the user's own, a role's, the server's or the bot's default."""
    if source == "user":
        return translate(locale, "set for you") if you else translate(locale, "set for this user")
    if source.startswith("role:"):
        role = "<@&" + source.removeprefix("role:") + ">"
        return translate(locale, "from role {role}", role=role)
    if source == "server":
        return translate(locale, "server default")
    return translate(locale, "bot default")


def period_line(
    label: str,
    used: int,
    limit: int | None,
    source: str,
    resets_at: datetime,
    *,
    you: bool,
    locale: str | None = None,
) -> str:
    """One period's line; ``label`` is already in the reader's language."""
    params: dict[str, Any] = {
        "label": label,
        "used": format_number(locale, used),
        "source": source_text(source, you=you, locale=locale),
        "when": relative_time(resets_at),
    }
    if limit is None:
        return translate(locale, "**{label}**: {used} used, no limit ({source}) · resets {when}", **params)
    if limit == 0:
        return translate(locale, "**{label}**: {used} used, blocked (limit 0, {source}) · resets {when}", **params)
    return translate(
        locale,
        "**{label}**: {used} used, **{remaining}** remaining (limit {limit}, {source}) · resets {when}",
        remaining=format_number(locale, max(0, limit - used)),
        limit=format_number(locale, limit),
        **params,
    )


def budget_line(usage: UsageSummary, locale: str | None = None) -> str | None:
    if usage.budget_usd is None:
        return None
    return translate(
        locale,
        "**Server budget**: {spent} of {budget} spent this month ({left} remaining) · resets {when}",
        spent=format_usd(locale, usage.budget_spent),
        budget=format_usd(locale, usage.budget_usd),
        left=format_usd(locale, usage.budget_remaining or 0.0),
        when=relative_time(usage.budget_resets_at),
    )


def usage_lines(usage: UsageSummary, *, you: bool, locale: str | None = None) -> list[str]:
    limits = usage.limits
    lines = [
        period_line(
            translate(locale, "Today"),
            usage.daily_used,
            limits.daily,
            limits.daily_source,
            usage.daily_resets_at,
            you=you,
            locale=locale,
        ),
        period_line(
            translate(locale, "This month"),
            usage.monthly_used,
            limits.monthly,
            limits.monthly_source,
            usage.monthly_resets_at,
            you=you,
            locale=locale,
        ),
    ]
    if (budget := budget_line(usage, locale)) is not None:
        lines.append(budget)
    return lines


def me_text(usage: UsageSummary, locale: str | None = None) -> str:
    """The ``/quota me`` answer, in the language of ``locale`` (English when None)."""
    lines = [translate(locale, "**Your images on this server**"), *usage_lines(usage, you=True, locale=locale)]
    lines.append(translate(locale, "-# Days and months follow the server's time zone ({tz}).", tz=usage.timezone))
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


def csv_file(text: str, name: str, limit: int) -> discord.File | None:
    """The ledger as a file that fits the upload limit: plain CSV, else gzipped, else None."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return discord.File(io.BytesIO(data), filename=f"{name}.csv")
    packed = gzip.compress(data)
    if len(packed) <= limit:
        return discord.File(io.BytesIO(packed), filename=f"{name}.csv.gz")
    return None
