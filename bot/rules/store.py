"""Prompt rules in the bot's database (SQLite or PostgreSQL): add, remove, list, check a prompt, and audit it.

Runs on the quota store's backend (``bot/storage/sqlite.py``: ``Backend``, ``Tx``), so its transactions are the
store's: on SQLite they hold the shared connection's lock and write under ``BEGIN IMMEDIATE``; on
PostgreSQL an addition locks the server's rules (an advisory lock) so two processes cannot both pass the
limits. Changes and refusals go to the same ``audit_log`` table, so
``/quota audit`` shows them next to quota changes. A refusal records who, when, where and which rule;
the prompt itself is never written anywhere (nor logged).

Each server's rules are compiled once into a ``RuleSet`` and cached; adding or removing a rule drops the
cache entry. With several processes the cache of each lives ``CACHE_SECONDS``: a rule added through one
process applies in the others within that time. Matching with regex rules runs on a small thread pool
of its own (RE2 releases the GIL), so even a pattern that is slow on a long prompt never holds up the
event loop.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, TypeVar

import aiosqlite

from bot.rules.engine import (
    MAX_REGEX_PROGRAM_TOTAL,
    RULE_KINDS,
    PromptRefused,
    Rule,
    RuleError,
    RuleSet,
    compile_regex,
    normalize_words,
    validate_word,
)
from bot.storage.postgres import hashed_key
from bot.storage.sqlite import Backend, SqliteBackend, Tx

log = logging.getLogger(__name__)

MAX_RULES: Final = 100  # per server
MAX_REGEX_RULES: Final = 20  # per server, within MAX_RULES
INLINE_MATCH_CHARS: Final = 2000  # word-only rule sets match longer prompts off the loop too
CACHE_GUILDS: Final = 1024  # compiled rule sets kept in memory (least recently used dropped)
CACHE_SECONDS: Final = 10.0  # with PostgreSQL (several processes), how long a compiled rule set is trusted

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class RefusalSummary:
    user_id: int
    count: int
    latest: datetime


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _ts(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _json(data: dict[str, Any]) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)


def rule_label(rule: Rule, *, limit: int = 60) -> str:
    """``rule #3, word `bad```: how a rule appears in the audit log (backticks defused, clipped)."""
    text = rule.pattern.replace("`", "ˋ")
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    where = ", not in NSFW channels" if rule.sfw_only else ""
    return f"rule #{rule.id}, {rule.kind} `{text}`{where}"


async def _to_completion(coro: Awaitable[_T]) -> _T:
    """Let a write finish even if the caller is cancelled (a half-done transaction is never the result)."""
    task = asyncio.ensure_future(coro)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        await asyncio.wait({task})
        raise


def _row_to_rule(row: Any) -> Rule:
    return Rule(
        id=int(row["id"]),
        guild_id=int(row["guild_id"]),
        kind=row["kind"],
        pattern=row["pattern"],
        sfw_only=bool(row["sfw_only"]),
        created_at=datetime.fromisoformat(row["created_at"]),
        created_by=int(row["created_by"]),
    )


_RULE_COLUMNS: Final = "id, guild_id, kind, pattern, sfw_only, created_at, created_by"


class RuleStore:
    def __init__(
        self,
        backend: Backend | aiosqlite.Connection,
        *,
        max_rules: int = MAX_RULES,
        max_regex_rules: int = MAX_REGEX_RULES,
        clock: Callable[[], datetime] = _utc_now,
        executor: Executor | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.backend = backend if isinstance(backend, Backend) else SqliteBackend(backend)
        # Where long or regex matches run (built and shut down by the composition root; None: the loop's
        # default thread pool), so a slow pattern never holds the event loop.
        self.executor = executor
        # One SQLite process sees every change itself; other processes' changes need the cache to age.
        self.cache_seconds = None if self.backend.dialect == "sqlite" else CACHE_SECONDS
        self.max_rules = max_rules
        self.max_regex_rules = max_regex_rules
        self._clock = clock
        self._monotonic = monotonic  # the cache's age: a test moves it instead of waiting
        self._cache: OrderedDict[int, tuple[float, RuleSet]] = OrderedDict()
        self._generation: dict[int, int] = {}
        self._matching: dict[tuple[int, bool, str], asyncio.Future[Rule | None]] = {}
        self._loading: dict[tuple[int, int], asyncio.Future[RuleSet]] = {}

    # ------------------------------------------------------------------ transactions

    async def _rules(self, tx: Tx, guild_id: int) -> list[Rule]:
        rows = await tx.fetchall(
            f"SELECT {_RULE_COLUMNS} FROM prompt_rules WHERE guild_id = ? ORDER BY id", (guild_id,)
        )
        return [_row_to_rule(r) for r in rows]

    async def _audit(self, tx: Tx, guild_id: int, actor_id: int, action: str, details: dict[str, Any]) -> None:
        # target_id stays NULL: /quota audit renders a target as a member or role mention.
        await tx.execute(
            "INSERT INTO audit_log (guild_id, actor_id, action, target_id, details, created_at) "
            "VALUES (?, ?, ?, NULL, ?, ?)",
            (guild_id, actor_id, action, _json(details), _ts(self._clock())),
        )

    async def _lock_rules(self, tx: Tx, guild_id: int) -> None:
        """Serialise changes to a server's rules until commit (SQLite's write transactions already do)."""
        if self.backend.dialect == "postgresql":
            await tx.execute("SELECT pg_advisory_xact_lock(?::bigint)", (hashed_key("rules", guild_id),))

    def _invalidate(self, guild_id: int) -> None:
        self._generation[guild_id] = self._generation.get(guild_id, 0) + 1
        self._cache.pop(guild_id, None)

    # ------------------------------------------------------------------ reads

    async def list_rules(self, guild_id: int) -> list[Rule]:
        """The server's rules, oldest first."""
        async with self.backend.transaction(write=False) as tx:
            return await self._rules(tx, guild_id)

    async def refusal_counts(self, guild_id: int) -> dict[int, int]:
        """How many prompts each rule has refused (from the audit log)."""
        rule_id = (
            "json_extract(details, '$.rule_id')"
            if self.backend.dialect == "sqlite"
            else "(details::json ->> 'rule_id')"
        )
        async with self.backend.transaction(write=False) as tx:
            rows = await tx.fetchall(
                f"SELECT {rule_id} AS rule_id, COUNT(*) AS n FROM audit_log "
                "WHERE guild_id = ? AND action = 'prompt_refused' GROUP BY 1",
                (guild_id,),
            )
        return {int(r["rule_id"]): int(r["n"]) for r in rows if r["rule_id"] is not None}

    async def refusals_by_member(self, guild_id: int, *, since: datetime, limit: int = 10) -> list[RefusalSummary]:
        """Refused prompts since ``since``, one line per member (not one per refusal: a member retrying a
        refused prompt must not push moderators' changes out of ``/quota audit``), latest first."""
        async with self.backend.transaction(write=False) as tx:
            rows = await tx.fetchall(
                "SELECT actor_id, COUNT(*) AS n, MAX(created_at) AS latest FROM audit_log "
                "WHERE guild_id = ? AND action = 'prompt_refused' AND created_at >= ? "
                "GROUP BY actor_id ORDER BY latest DESC LIMIT ?",
                (guild_id, _ts(since), max(1, min(int(limit), 100))),
            )
        return [RefusalSummary(int(r["actor_id"]), int(r["n"]), datetime.fromisoformat(r["latest"])) for r in rows]

    async def ruleset(self, guild_id: int) -> RuleSet:
        """The server's rules, compiled (cached until the next change here, or ``cache_seconds``)."""
        cached = self._cache.get(guild_id)
        if cached is not None and (self.cache_seconds is None or self._monotonic() - cached[0] < self.cache_seconds):
            self._cache.move_to_end(guild_id)
            return cached[1]
        # One read per server however many ask at once: the first jobs of a rush all miss the cache, and
        # each reading for itself queued them behind each other's reads before their acknowledgement.
        key = (guild_id, self._generation.get(guild_id, 0))
        loading = self._loading.get(key)
        if loading is None:
            loading = self._loading[key] = asyncio.ensure_future(self._load(guild_id, key[1]))
            loading.add_done_callback(functools.partial(self._loaded, key))
        return await asyncio.shield(loading)

    def _loaded(self, key: tuple[int, int], future: asyncio.Future[RuleSet]) -> None:
        self._loading.pop(key, None)
        if not future.cancelled():
            future.exception()  # retrieved: every caller may have been cancelled meanwhile

    async def _load(self, guild_id: int, generation: int) -> RuleSet:
        read_at = self._monotonic()
        ruleset = RuleSet(await self.list_rules(guild_id))
        if self._generation.get(guild_id, 0) == generation:  # no change landed while we were reading
            self._cache[guild_id] = (read_at, ruleset)
            while len(self._cache) > CACHE_GUILDS:
                self._cache.popitem(last=False)
        return ruleset

    # ------------------------------------------------------------------ the check

    async def check(
        self, *, guild_id: int, user_id: int, channel_id: int | None, prompt: str, nsfw_channel: bool
    ) -> None:
        """Raise ``PromptRefused`` (after auditing the refusal) when the prompt breaks one of the rules."""
        ruleset = await self.ruleset(guild_id)
        if not len(ruleset):
            return
        if ruleset.has_regex or len(prompt) > INLINE_MATCH_CHARS:
            rule = await self._match_off_loop(ruleset, prompt, nsfw_channel)
        else:
            rule = ruleset.match(prompt, nsfw_channel=nsfw_channel)
        if rule is None:
            return
        await _to_completion(self._record_refusal(guild_id, user_id, channel_id, rule))
        log.info("guild %s: a prompt of user %s was refused by rule %s", guild_id, user_id, rule.id)
        raise PromptRefused(rule.id, rule.kind)

    async def _match_off_loop(self, ruleset: RuleSet, prompt: str, nsfw_channel: bool) -> Rule | None:
        """Match in the pool. A caller cancelled meanwhile (an interaction deferred after a slow reserve)
        leaves the match running, and the same check asked again while it runs waits for that one."""
        key = (id(ruleset), nsfw_channel, prompt)
        future = self._matching.get(key)
        if future is None:
            match = functools.partial(ruleset.match, prompt, nsfw_channel=nsfw_channel)
            future = asyncio.get_running_loop().run_in_executor(self.executor, match)
            self._matching[key] = future
            future.add_done_callback(lambda _: self._matching.pop(key, None))
        return await asyncio.shield(future)

    async def _record_refusal(self, guild_id: int, user_id: int, channel_id: int | None, rule: Rule) -> None:
        details = {
            "rule_id": rule.id,
            "kind": rule.kind,
            "channel_id": channel_id,
            "old": "a prompt",
            "new": f"refused by rule #{rule.id}",
        }
        async with self.backend.transaction(write=True) as tx:
            await self._audit(tx, guild_id, user_id, "prompt_refused", details)

    # ------------------------------------------------------------------ changes (moderators)

    async def add(self, guild_id: int, kind: str, pattern: str, *, sfw_only: bool, actor_id: int) -> Rule:
        """Add a rule; ``RuleError`` when it is invalid, a duplicate, or the server has too many."""
        if kind not in RULE_KINDS:
            raise RuleError("bad_kind")
        text = pattern.strip()
        size = 0
        if kind == "word":
            validate_word(text)
        else:
            size = compile_regex(text).programsize
        return await _to_completion(self._add(guild_id, kind, text, sfw_only, actor_id, size))

    async def _add(self, guild_id: int, kind: str, text: str, sfw_only: bool, actor_id: int, size: int) -> Rule:
        async with self.backend.transaction(write=True) as tx:
            await self._lock_rules(tx, guild_id)
            existing = await self._rules(tx, guild_id)
            for rule in existing:
                same = (
                    normalize_words(rule.pattern) == normalize_words(text) if kind == "word" else rule.pattern == text
                )
                if rule.kind == kind and same:
                    raise RuleError("duplicate", rule_id=rule.id)
            if len(existing) >= self.max_rules:
                raise RuleError("too_many", limit=self.max_rules)
            if kind == "regex" and sum(r.kind == "regex" for r in existing) >= self.max_regex_rules:
                raise RuleError("too_many_regex", limit=self.max_regex_rules)
            if kind == "regex":
                total = size + sum(compile_regex(r.pattern).programsize for r in existing if r.kind == "regex")
                if total > MAX_REGEX_PROGRAM_TOTAL:
                    raise RuleError("too_complex_total", limit=MAX_REGEX_PROGRAM_TOTAL, used=total - size)
            now = self._clock()
            rule_id = await tx.insert(
                "INSERT INTO prompt_rules (guild_id, kind, pattern, sfw_only, created_at, created_by) "
                "VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                (guild_id, kind, text, int(sfw_only), _ts(now), actor_id),
            )
            rule = Rule(rule_id, guild_id, kind, text, sfw_only, now.astimezone(UTC), actor_id)  # type: ignore[arg-type]
            details = {
                "rule_id": rule_id,
                "kind": kind,
                "pattern": text,
                "sfw_only": sfw_only,
                "old": "none",
                "new": rule_label(rule),
            }
            await self._audit(tx, guild_id, actor_id, "add_rule", details)
        self._invalidate(guild_id)
        return rule

    async def remove(self, guild_id: int, rule_id: int, *, actor_id: int) -> Rule | None:
        """Remove a rule of this server; None (and nothing audited) when there is no such rule."""
        return await _to_completion(self._remove(guild_id, rule_id, actor_id))

    async def _remove(self, guild_id: int, rule_id: int, actor_id: int) -> Rule | None:
        async with self.backend.transaction(write=True) as tx:
            await self._lock_rules(tx, guild_id)
            row = await tx.fetchone(
                f"SELECT {_RULE_COLUMNS} FROM prompt_rules WHERE guild_id = ? AND id = ?", (guild_id, rule_id)
            )
            if row is None:
                return None
            rule = _row_to_rule(row)
            await tx.execute("DELETE FROM prompt_rules WHERE id = ?", (rule_id,))
            details = {
                "rule_id": rule.id,
                "kind": rule.kind,
                "pattern": rule.pattern,
                "sfw_only": rule.sfw_only,
                "old": rule_label(rule),
                "new": "removed",
            }
            await self._audit(tx, guild_id, actor_id, "remove_rule", details)
        self._invalidate(guild_id)
        return rule
