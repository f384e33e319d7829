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

from bot.messages import clip, relative_time
from bot.messages.i18n import format_number, format_share, format_usd, translate, translate_plural
from bot.quota import INHERIT, UNCHANGED, AuditEntry, JobRecord, LimitArg, Report, UsageSummary
from bot.rules.store import RefusalSummary
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


def plural(n: int, noun: str = "image", locale: str | None = None) -> str:
    """``3 images`` / ``2 jobs`` in the language of ``locale``."""
    if noun == "job":
        return translate_plural(locale, "{n} job", "{n} jobs", n)
    return translate_plural(locale, "{n} image", "{n} images", n)


def limit_text(value: int | None, locale: str | None = None) -> str:
    if value is None:
        return translate(locale, "unlimited")
    if value == 0:
        return translate(locale, "blocked (0)")
    return format_number(locale, value)


def audit_value(value: Any, locale: str | None = None) -> str:
    """A limit as the audit log records it ("inherit", "unlimited" or a number)."""
    if value == "inherit":
        return translate(locale, "not set")
    if value == "unlimited":
        return translate(locale, "unlimited")
    if isinstance(value, int):
        return limit_text(value, locale)
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
    if source == "everywhere":
        return translate(locale, "the bot's cap per person, UTC days")
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
    # A person's count across every server is theirs alone (``/quota me``): moderators see their own server's.
    if you and usage.everywhere_daily is not None and usage.everywhere_resets_at is not None:
        lines.append(
            period_line(
                translate(locale, "Today in all servers"),
                usage.everywhere_used,
                usage.everywhere_daily,
                "everywhere",
                usage.everywhere_resets_at,
                you=you,
                locale=locale,
            )
        )
    return lines


def me_text(usage: UsageSummary, locale: str | None = None) -> str:
    """The ``/quota me`` answer, in the language of ``locale`` (English when None)."""
    lines = [translate(locale, "**Your images on this server**"), *usage_lines(usage, you=True, locale=locale)]
    lines.append(translate(locale, "-# Days and months follow the server's time zone ({tz}).", tz=usage.timezone))
    return clip("\n".join(lines), 2000)


def job_images(job: JobRecord, locale: str | None = None) -> str:
    if job.active:
        return translate_plural(locale, "{n} image reserved", "{n} images reserved", job.images_reserved)
    if job.status in ("done", "partial"):
        return plural(job.images_done, locale=locale)
    return translate(locale, "refunded")


def job_line(job: JobRecord, locale: str | None = None) -> str:
    cost = job.cost_actual if not job.active else job.cost_estimate
    prompt = discord.utils.escape_markdown(clip(" ".join(job.prompt.split()), 40))
    money = format_usd(locale, cost or 0.0, decimals=3)
    return (
        f"`#{job.id}` {relative_time(job.created_at)} · {job.status} · {job_images(job, locale)} · {money} · {prompt}"
    )


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


def show_embed(
    user: discord.abc.User, usage: UsageSummary, jobs: Sequence[JobRecord], locale: str | None = None
) -> discord.Embed:
    embed = discord.Embed(
        title=clip(translate(locale, "Image quota of {name}", name=user.display_name), 256),
        description="\n".join([user.mention, *usage_lines(usage, you=False, locale=locale)]),
        colour=EMBED_COLOUR,
    )
    recent = (
        lines_within(
            [job_line(j, locale) for j in jobs],
            1024,
            lambda n: translate(locale, "… and {n} more", n=format_number(locale, n)),
        )
        if jobs
        else translate(locale, "None yet.")
    )
    embed.add_field(name=translate(locale, "Recent jobs"), value=recent, inline=False)
    embed.set_footer(text=translate(locale, "Time zone {tz} · -1 = unlimited, 0 = blocked", tz=usage.timezone))
    return embed


def changes_text(details: dict[str, dict[str, Any]], locale: str | None = None) -> str:
    parts = []
    for period, d in details.items():
        values = {"old": audit_value(d["old"], locale), "new": audit_value(d["new"], locale)}
        if period == "daily":
            parts.append(translate(locale, "daily {old} → **{new}**", **values))
        elif period == "monthly":
            parts.append(translate(locale, "monthly {old} → **{new}**", **values))
    return translate(locale, ", ").join(parts)


def report_embed(report: Report, locale: str | None = None) -> discord.Embed:
    def usd(amount: float) -> str:
        return format_usd(locale, amount)

    lines = [
        f"<@{u.user_id}>: {plural(u.images, locale=locale)} · {plural(u.jobs, 'job', locale)} · {usd(u.spent_usd)}"
        for u in report.users
    ]
    more = lambda n: translate(locale, "… and {n} more", n=format_number(locale, n))  # noqa: E731
    body = lines_within(lines[:REPORT_USERS], 3500, more) if lines else translate(locale, "No images this month yet.")
    if len(lines) > REPORT_USERS:
        extra = format_number(locale, len(lines) - REPORT_USERS)
        body += "\n" + translate(locale, "… and {n} more users (see the CSV)", n=extra)
    since = translate(
        locale,
        "Since {day}, resets {when} ({tz})",
        day="<t:" + str(int(report.period_start.timestamp())) + ":D>",
        when=relative_time(report.period_end),
        tz=report.timezone,
    )
    embed = discord.Embed(
        title=translate(locale, "Image usage this month"), description=f"{since}\n\n{body}", colour=EMBED_COLOUR
    )
    total = (
        f"{plural(report.total_images, locale=locale)} · {plural(report.total_jobs, 'job', locale)} · "
        f"{usd(report.total_spent)}"
    )
    embed.add_field(name=translate(locale, "Total"), value=total, inline=False)
    if report.budget_usd is not None:
        share = f" ({format_share(locale, report.total_spent / report.budget_usd)})" if report.budget_usd > 0 else ""
        spent = translate(locale, "{spent} of {budget}", spent=usd(report.total_spent), budget=usd(report.budget_usd))
        embed.add_field(name=translate(locale, "Budget"), value=spent + share, inline=False)
    embed.set_footer(
        text=translate(
            locale, "The CSV lists every job of the month: status, images, tokens, estimated and actual cost."
        )
    )
    return embed


def money_text(value: Any, locale: str | None = None) -> str:
    return translate(locale, "no budget") if value is None else format_usd(locale, float(value))


def audit_line(entry: AuditEntry, locale: str | None = None) -> str:
    target = ""
    if entry.target_id is not None:
        target = (
            f" <@&{entry.target_id}>"
            if entry.action in ("set_role_limit", "set_manager_role")
            else (f" <@{entry.target_id}>")
        )
    details = entry.details
    if entry.action in ("set_user_limit", "set_role_limit", "set_default_limit"):
        what = changes_text(details, locale)
    elif entry.action == "reset_user":
        what = translate(
            locale,
            "cleared {daily} today, {monthly} this month",
            daily=format_number(locale, details.get("daily_used", 0)),
            monthly=format_number(locale, details.get("monthly_used", 0)),
        )
    elif entry.action == "set_budget":
        what = f"{money_text(details.get('old'), locale)} → **{money_text(details.get('new'), locale)}**"
    elif entry.action == "set_manager_role":
        old, new = details.get("old"), details.get("new")
        none = translate(locale, "none")
        what = f"{f'<@&{old}>' if old else none} → **{f'<@&{new}>' if new else none}**"
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


def _mention(user_id: int) -> str:
    return f"<@{user_id}>"


def refusal_lines(refusals: list[RefusalSummary], locale: str | None = None) -> str:
    """One line per member whose prompts were refused: how many times, and when last (never the prompts)."""
    lines = [
        translate_plural(
            locale,
            "{user}: {n} refused prompt, latest {when}",
            "{user}: {n} refused prompts, latest {when}",
            r.count,
            user=_mention(r.user_id),
            when=relative_time(r.latest),
        )
        for r in refusals
    ]
    return clip("\n".join(lines), 1024)
