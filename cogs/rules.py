"""``rule add / remove / list``: the prompt rules moderators set, as an ``app_commands.Group`` to attach.

``build_rule_group`` returns a group named ``rule``; ``cogs/quota/cog.py`` attaches it under ``/quota`` (so
members type ``/quota rule add …``). Every subcommand is for moderators only (``cogs/_checks.py``), ``list``
included: rule texts are shown to nobody else. The matching itself and every audit entry live in
``bot/rules/``; the words for errors in ``bot/messages/``.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import discord
from discord import app_commands

from bot.messages import clip, relative_time, rule_error
from bot.messages.i18n import format_number, translate
from bot.rules import MAX_REGEX_CHARS, MAX_REGEX_RULES, MAX_RULES, Rule, RuleError, RuleStore
from cogs._checks import managers_only
from cogs._common import EMBED_COLOUR, guild_id_of, reply_ephemeral
from cogs._translator import locale_of

LIST_CHARS = 3900  # of the embed description (Discord allows 4096)


def code(text: str, limit: int = 80) -> str:
    """A rule's text as inline code: backticks defused, clipped."""
    return f"`{clip(text.replace('`', 'ˋ'), limit)}`"


def kind_text(rule: Rule, locale: str | None = None) -> str:
    return translate(locale, "regex") if rule.kind == "regex" else translate(locale, "word")


def rule_line(rule: Rule, refusals: int = 0, *, limit: int = 80, locale: str | None = None) -> str:
    where = translate(locale, "not in NSFW channels") if rule.sfw_only else translate(locale, "all channels")
    counted = " · " + translate(locale, "{n} refused", n=format_number(locale, refusals)) if refusals else ""
    by = translate(
        locale, "by {user} {when}", user="<@" + str(rule.created_by) + ">", when=relative_time(rule.created_at)
    )
    return f"`#{rule.id}` {kind_text(rule, locale)} {code(rule.pattern, limit)} · {where}{counted} · {by}"


def list_text(lines: Sequence[str], limit: int = LIST_CHARS, locale: str | None = None) -> tuple[str, bool]:
    """As many lines as fit in ``limit`` characters, and whether some were left out."""
    out: list[str] = []
    size = 0
    for i, line in enumerate(lines):
        if size + len(line) + 40 > limit:
            left = format_number(locale, len(lines) - i)
            out.append(translate(locale, "… and {n} more (all of them are in the attached file)", n=left))
            return "\n".join(out), True
        out.append(line)
        size += len(line) + 1
    return "\n".join(out), False


def rules_file(rules: Sequence[Rule], refusals: dict[int, int]) -> discord.File:
    rows = [
        f"#{r.id}\t{r.kind}\t{'not in NSFW channels' if r.sfw_only else 'all channels'}\t"
        f"{refusals.get(r.id, 0)} refused\t{r.pattern}"
        for r in rules
    ]
    return discord.File(io.BytesIO(("\n".join(rows) + "\n").encode("utf-8")), filename="prompt-rules.txt")


def build_rule_group(rules: RuleStore) -> app_commands.Group:
    """The ``rule`` group (add, remove, list), for moderators only."""
    group = app_commands.Group(
        name="rule", description="Moderators: words and patterns prompts may not contain", guild_only=True
    )

    @group.command(name="add", description="Moderators: refuse prompts that contain a word, a phrase or a pattern")
    @app_commands.describe(
        text="A word or phrase (whole words, any case or width), or a regular expression with regex:True",
        regex="True: text is an RE2 regular expression, matched case-insensitively",
        sfw_only="True: apply the rule only in channels that are not age-restricted (NSFW)",
    )
    @managers_only()
    async def add(
        interaction: discord.Interaction,
        text: app_commands.Range[str, 1, MAX_REGEX_CHARS],
        regex: bool = False,
        sfw_only: bool = False,
    ) -> None:
        guild_id = guild_id_of(interaction)
        loc = locale_of(interaction)
        try:
            rule = await rules.add(
                guild_id,
                "regex" if regex else "word",
                text,
                sfw_only=sfw_only,
                actor_id=interaction.user.id,
            )
        except RuleError as exc:
            await reply_ephemeral(interaction, rule_error(exc, loc))
            return
        if rule.sfw_only:
            where = translate(loc, "only in channels that are not age-restricted")
        else:
            where = translate(loc, "in every channel")
        kind = translate(loc, "regular expression") if rule.kind == "regex" else translate(loc, "word")
        added = translate(
            loc,
            "Added rule `#{id}`: {kind} {rule}, {where}. Prompts that match it are refused before anything is "
            "reserved or sent; members are not told the rule's text.",
            id=rule.id,
            kind=kind,
            rule=code(rule.pattern, 300),
            where=where,
        )
        limits = translate(
            loc,
            "Up to {rules} rules per server, {regex} of them regular expressions. "
            "`/quota rule remove` takes the number.",
            rules=MAX_RULES,
            regex=MAX_REGEX_RULES,
        )
        await reply_ephemeral(interaction, f"{added}\n-# {limits}")

    @group.command(name="remove", description="Moderators: remove a prompt rule (its number is in the list)")
    @app_commands.describe(rule_id="The rule's number, as /quota rule list shows it")
    @app_commands.rename(rule_id="id")
    @managers_only()
    async def remove(interaction: discord.Interaction, rule_id: app_commands.Range[int, 1, 2**53 - 1]) -> None:
        guild_id = guild_id_of(interaction)
        rule = await rules.remove(guild_id, int(rule_id), actor_id=interaction.user.id)
        loc = locale_of(interaction)
        if rule is None:
            await reply_ephemeral(
                interaction,
                translate(loc, "This server has no rule `#{id}`. `/quota rule list` shows them.", id=rule_id),
            )
            return
        removed = translate(
            loc,
            "Removed rule `#{id}` ({kind} {rule}).",
            id=rule.id,
            kind=kind_text(rule, loc),
            rule=code(rule.pattern, 300),
        )
        await reply_ephemeral(interaction, removed)

    @group.command(name="list", description="Moderators: this server's prompt rules")
    @managers_only()
    async def list_rules(interaction: discord.Interaction) -> None:
        guild_id = guild_id_of(interaction)
        found = await rules.list_rules(guild_id)
        loc = locale_of(interaction)
        if not found:
            await reply_ephemeral(
                interaction, translate(loc, "This server has no prompt rules. Add one with `/quota rule add`.")
            )
            return
        refusals = await rules.refusal_counts(guild_id)
        body, cut = list_text([rule_line(r, refusals.get(r.id, 0), locale=loc) for r in found], locale=loc)
        title = translate(loc, "Prompt rules ({n} of {max})", n=len(found), max=MAX_RULES)
        embed = discord.Embed(title=title, description=body, colour=EMBED_COLOUR)
        embed.set_footer(
            text=translate(loc, "Words match whole words in any case or width; regular expressions use RE2 syntax.")
        )
        fields: dict[str, Any] = {"embed": embed}
        if cut:
            fields["file"] = rules_file(found, refusals)
        await reply_ephemeral(interaction, **fields)

    return group
