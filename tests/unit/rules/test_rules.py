"""Prompt rules: the matching engine (pure) and the store (``bot.rules``) on both databases, a real SQLite
file and a real PostgreSQL (``tests/helpers/stores.py``)."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.messages import PROMPT_REFUSED, rule_error, user_error
from bot.rules import PromptRefused, Rule, RuleError, RuleSet, RuleStore, compile_regex, normalize_words
from bot.rules.engine import MAX_REGEX_PROGRAM, contains_word
from tests.helpers.stores import BackendOpener
from tests.helpers.waiting import poll

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def word(rule_id: int, text: str, sfw_only: bool = False) -> Rule:
    return Rule(rule_id, 1, "word", text, sfw_only, NOW, 7)


def regex(rule_id: int, text: str, sfw_only: bool = False) -> Rule:
    return Rule(rule_id, 1, "regex", text, sfw_only, NOW, 7)


def hit(rules: list[Rule], prompt: str, *, nsfw: bool = False) -> int | None:
    found = RuleSet(rules).match(prompt, nsfw_channel=nsfw)
    return None if found is None else found.id


# --- words ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "prompt",
    ["bad", "Bad!", "a BAD dog", "ｂａｄ", "ＢＡＤ cat", "(bad)", "so-bad", "b\u200bad", "bad\u00ad", "坏bad的"],
)
def test_a_word_matches_in_any_case_and_width_as_a_whole_word(prompt: str) -> None:
    assert hit([word(1, "bad")], prompt) == 1


@pytest.mark.parametrize("prompt", ["badge", "a baddie", "sinbad", "bad_guy", "2bad", "b a d", "bd"])
def test_a_word_does_not_match_inside_another_word(prompt: str) -> None:
    assert hit([word(1, "bad")], prompt) is None


def test_the_rule_itself_may_be_written_in_any_width_or_case() -> None:
    assert hit([word(1, "ＢＡＤ")], "a bad idea") == 1
    assert hit([word(1, "Straße")], "STRASSE signs") == 1  # casefold: ß is ss
    assert normalize_words("  Very\tBAD   Thing ") == "very bad thing"


def test_phrases_match_across_runs_of_white_space() -> None:
    assert hit([word(1, "very bad")], "a very   bad\nthing") == 1
    assert hit([word(1, "very bad")], "a very badge") is None


def test_chinese_and_other_words_without_spaces_match_as_substrings() -> None:
    rules = [word(1, "坏蛋"), word(2, "ばか"), word(3, "나쁜")]
    assert hit(rules, "一个坏蛋在画画") == 1
    assert hit(rules, "画一个坏蛋") == 1
    assert hit(rules, "あのばかな猫") == 2
    assert hit(rules, "ﾊﾞｶ") is None  # a different word (katakana), even after NFKC
    assert hit(rules, "나쁜놈") == 3
    assert hit(rules, "一个好人") is None
    # A Latin word next to Chinese text needs no space there.
    assert hit([word(1, "cat")], "一只cat在睡觉") == 1
    assert hit([word(1, "cat")], "一只cats在睡觉") is None


def test_digits_are_whole_words_too() -> None:
    assert hit([word(1, "18")], "age 18 or more") == 1
    assert hit([word(1, "18")], "in 2018") is None


def test_contains_word_tries_every_occurrence() -> None:
    assert contains_word("badge bad", "bad")
    assert not contains_word("badge badly", "bad")


# --- regular expressions -----------------------------------------------------------------------------


def test_regex_rules_are_case_insensitive_and_see_width_variants_unified() -> None:
    rules = [regex(1, r"dr[a@]g[o0]n")]
    assert hit(rules, "a DR@GON") == 1
    assert hit(rules, "ａ ｄｒａｇｏｎ") == 1
    assert hit(rules, "a drake") is None


def test_invalid_or_unbounded_regexes_are_refused_when_added() -> None:
    for pattern, code in [
        ("(?=x)y", "invalid_regex"),  # look-ahead: RE2 has none
        (r"(a)\1", "invalid_regex"),  # back-reference
        ("(", "invalid_regex"),
        ("a{1001}", "invalid_regex"),
        ("x*", "matches_everything"),
        ("", "empty"),
        ("a" * 301, "too_long"),
        ("(?:[ab]*a[ab]{200}){5}z", "too_complex"),
    ]:
        with pytest.raises(RuleError) as caught:
            compile_regex(pattern)
        assert caught.value.code == code, pattern
        assert rule_error(caught.value)  # worded for the moderator, never the library's text


def test_a_catastrophic_pattern_takes_linear_time() -> None:
    """(a+)+$ on "aaaa…b" is exponential for a backtracking engine; RE2 does it in one pass."""
    rules = RuleSet([regex(1, "(a+)+$"), regex(2, "(x+x+)+y"), regex(3, "(.*a){12}z")])
    for n in (1000, 32000):
        started = time.perf_counter()
        assert rules.match("a" * n + "b", nsfw_channel=False) is None
        assert time.perf_counter() - started < 0.5
    assert rules.match("a" * 32000, nsfw_channel=False) is not None


def test_the_largest_allowed_pattern_stays_bounded_on_a_long_prompt() -> None:
    """A pattern that defeats RE2's DFA (it falls back to the NFA: linear, slower) at the size limit."""
    pattern = "(?:[ab]*a[ab]{150}){5}z"
    assert compile_regex(pattern).programsize <= MAX_REGEX_PROGRAM
    text = "".join(random.Random(3).choice("ab") for _ in range(32000))
    started = time.perf_counter()
    assert RuleSet([regex(1, pattern)]).match(text, nsfw_channel=False) is None
    assert time.perf_counter() - started < 5.0  # ~0.2-0.4 s measured on this machine


# --- scoping and the rule set -------------------------------------------------------------------------


def test_sfw_only_rules_do_not_apply_in_age_restricted_channels() -> None:
    rules = [word(1, "gore", sfw_only=True), word(2, "spam")]
    assert hit(rules, "gore", nsfw=False) == 1
    assert hit(rules, "gore", nsfw=True) is None
    assert hit(rules, "spam", nsfw=True) == 2


def test_the_first_rule_by_id_wins_and_a_rule_that_no_longer_compiles_is_skipped() -> None:
    rules = RuleSet([word(5, "cat"), regex(2, "c.t"), regex(9, "(")])
    assert len(rules) == 2 and rules.has_regex
    found = rules.match("a cat", nsfw_channel=False)
    assert found is not None and found.id == 2
    assert RuleSet([]).match("anything", nsfw_channel=False) is None


def test_the_refusal_names_no_rule() -> None:
    assert user_error(PromptRefused(3, "word")) == PROMPT_REFUSED
    assert "#3" not in PROMPT_REFUSED


# --- the store --------------------------------------------------------------------------------------


@pytest.fixture
async def store(open_backend: BackendOpener) -> AsyncIterator[RuleStore]:
    async with open_backend() as backend:
        yield RuleStore(backend, max_rules=5, max_regex_rules=2, clock=lambda: NOW)


def in_files(folder: Path, glob: str, needle: bytes) -> bool:
    return any(needle in path.read_bytes() for path in folder.glob(glob))


async def rows(store: RuleStore, sql: str) -> list[dict[str, object]]:
    async with store.backend.plain() as tx:
        return [dict(r) for r in await tx.fetchall(sql)]


async def test_add_list_remove_and_every_change_audited(store: RuleStore) -> None:
    a = await store.add(1, "word", "  Bad ", sfw_only=False, actor_id=7)
    b = await store.add(1, "regex", "dr[a@]gon", sfw_only=True, actor_id=7)
    await store.add(2, "word", "bad", sfw_only=False, actor_id=8)  # another server's rules are its own
    assert (a.pattern, a.kind, a.sfw_only) == ("Bad", "word", False)
    assert [r.id for r in await store.list_rules(1)] == [a.id, b.id]
    assert await store.remove(1, a.id, actor_id=9) == a
    assert await store.remove(1, a.id, actor_id=9) is None  # gone: nothing to audit
    assert await store.remove(2, b.id, actor_id=9) is None  # not that server's rule
    assert [r.id for r in await store.list_rules(1)] == [b.id]
    audit = await rows(store, "SELECT guild_id, actor_id, action, target_id, details FROM audit_log ORDER BY id")
    assert [(e["guild_id"], e["actor_id"], e["action"]) for e in audit] == [
        (1, 7, "add_rule"),
        (1, 7, "add_rule"),
        (2, 8, "add_rule"),
        (1, 9, "remove_rule"),
    ]
    details = json.loads(str(audit[3]["details"]))
    assert details["rule_id"] == a.id and details["pattern"] == "Bad" and details["new"] == "removed"


async def test_duplicates_and_limits(store: RuleStore) -> None:
    await store.add(1, "word", "bad", sfw_only=False, actor_id=7)
    with pytest.raises(RuleError) as dup:
        await store.add(1, "word", "ＢＡＤ", sfw_only=True, actor_id=7)
    assert dup.value.code == "duplicate" and dup.value.info["rule_id"] == 1
    await store.add(1, "regex", "a+b", sfw_only=False, actor_id=7)
    await store.add(1, "regex", "c+d", sfw_only=False, actor_id=7)
    with pytest.raises(RuleError) as many_regex:
        await store.add(1, "regex", "e+f", sfw_only=False, actor_id=7)
    assert many_regex.value.code == "too_many_regex"
    await store.add(1, "word", "two", sfw_only=False, actor_id=7)
    await store.add(1, "word", "three", sfw_only=False, actor_id=7)
    with pytest.raises(RuleError) as many:
        await store.add(1, "word", "four", sfw_only=False, actor_id=7)
    assert many.value.code == "too_many" and many.value.info["limit"] == 5
    with pytest.raises(RuleError):
        await store.add(1, "glob", "x", sfw_only=False, actor_id=7)
    assert len(await store.list_rules(1)) == 5
    assert len(await rows(store, "SELECT * FROM audit_log")) == 5  # refused additions are not audited


async def test_the_regex_budget_of_a_server(open_backend: BackendOpener) -> None:
    async with open_backend() as backend:
        store = RuleStore(backend)
        await store.add(1, "regex", "(?:[ab]*a[ab]{150}){5}z", sfw_only=False, actor_id=7)
        await store.add(1, "regex", "(?:[ab]*b[ab]{150}){5}z", sfw_only=False, actor_id=7)
        with pytest.raises(RuleError) as over:
            await store.add(1, "regex", "(?:[ab]*a[ab]{100}){5}y", sfw_only=False, actor_id=7)
        assert over.value.code == "too_complex_total"
        assert "at most 2000" in rule_error(over.value)


async def test_check_refuses_audits_and_stores_no_prompt(store: RuleStore, dialect: str, database: str) -> None:
    await store.add(1, "word", "坏蛋", sfw_only=False, actor_id=7)
    await store.add(1, "regex", "(a+)+$", sfw_only=True, actor_id=7)
    await store.check(guild_id=1, user_id=42, channel_id=5, prompt="一个好人", nsfw_channel=False)
    secret = "画一个坏蛋 with a unique marker 8f3a"
    with pytest.raises(PromptRefused) as refused:
        await store.check(guild_id=1, user_id=42, channel_id=5, prompt=secret, nsfw_channel=False)
    assert refused.value.rule_id == 1
    # sfw_only: refused in an ordinary channel, allowed in an age-restricted one.
    with pytest.raises(PromptRefused):
        await store.check(guild_id=1, user_id=42, channel_id=5, prompt="a" * 5000, nsfw_channel=False)
    await store.check(guild_id=1, user_id=42, channel_id=6, prompt="a" * 5000, nsfw_channel=True)
    await store.check(guild_id=2, user_id=42, channel_id=5, prompt=secret, nsfw_channel=False)  # no rules there

    audit = await rows(store, "SELECT * FROM audit_log WHERE action = 'prompt_refused' ORDER BY id")
    assert [(e["actor_id"], json.loads(str(e["details"]))["rule_id"]) for e in audit] == [(42, 1), (42, 2)]
    assert json.loads(str(audit[0]["details"]))["channel_id"] == 5 and audit[0]["created_at"]
    assert await store.refusal_counts(1) == {1: 1, 2: 1}
    for table in ("audit_log", "prompt_rules", "jobs"):
        assert "8f3a" not in repr(await rows(store, f"SELECT * FROM {table}"))
    if dialect == "sqlite":  # not in the file either (nor in its write-ahead log)
        async with store.backend.plain() as tx:
            await tx.execute("PRAGMA wal_checkpoint(FULL)")
        assert not in_files(Path(database).parent, Path(database).name + "*", b"8f3a")


async def test_rules_are_compiled_once_and_the_cache_follows_changes(store: RuleStore) -> None:
    await store.add(1, "regex", "fox+", sfw_only=False, actor_id=7)
    first = await store.ruleset(1)
    assert await store.ruleset(1) is first  # compiled once
    await store.check(guild_id=1, user_id=42, channel_id=None, prompt="a cat", nsfw_channel=False)
    assert await store.ruleset(1) is first
    cat = await store.add(1, "word", "cat", sfw_only=False, actor_id=7)
    second = await store.ruleset(1)
    assert second is not first and len(second) == 2
    with pytest.raises(PromptRefused):
        await store.check(guild_id=1, user_id=42, channel_id=None, prompt="a cat", nsfw_channel=False)
    await store.remove(1, cat.id, actor_id=7)
    await store.check(guild_id=1, user_id=42, channel_id=None, prompt="a cat", nsfw_channel=False)


async def test_a_rush_of_first_checks_reads_and_compiles_the_rules_once(store: RuleStore) -> None:
    await store.add(1, "word", "fox", sfw_only=False, actor_id=7)
    fresh = RuleStore(store.backend, max_rules=5, max_regex_rules=2, clock=lambda: NOW)  # an empty cache
    loaded = await asyncio.gather(*(fresh.ruleset(1) for _ in range(20)))
    assert all(ruleset is loaded[0] for ruleset in loaded) and len(loaded[0]) == 1
    assert await fresh.ruleset(1) is loaded[0]


async def test_a_slow_match_runs_off_the_event_loop(store: RuleStore) -> None:
    await store.add(1, "regex", "(?:[ab]*a[ab]{150}){5}z", sfw_only=False, actor_id=7)
    await store.add(1, "regex", "(?:[ab]*b[ab]{150}){5}z", sfw_only=False, actor_id=7)
    text = "".join(random.Random(5).choice("ab") for _ in range(32000))
    gaps: list[float] = []

    async def ticker() -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    tick = asyncio.create_task(ticker())
    started = time.perf_counter()
    await store.check(guild_id=1, user_id=42, channel_id=None, prompt=text, nsfw_channel=False)
    took = time.perf_counter() - started
    tick.cancel()
    assert took < 10.0
    assert gaps and max(gaps) < max(0.1, took / 3)  # the loop kept running while RE2 worked


async def test_the_same_check_asked_again_while_it_runs_waits_for_the_first(store: RuleStore) -> None:
    await store.add(1, "regex", "(?:[ab]*a[ab]{150}){5}z", sfw_only=False, actor_id=7)
    text = "".join(random.Random(6).choice("ab") for _ in range(32000))
    first = asyncio.ensure_future(store.check(guild_id=1, user_id=42, channel_id=None, prompt=text, nsfw_channel=False))
    # until the match runs in its pool (after the rules are read: slower on PostgreSQL)
    await poll(lambda: len(store._matching) == 1, interval=0.01)
    first.cancel()  # as asyncio.wait_for does to a slow reserve
    second = store.check(guild_id=1, user_id=42, channel_id=None, prompt=text, nsfw_channel=False)
    assert len(store._matching) == 1
    await second
    assert store._matching == {}


# --- rendering of the rule commands (pure parts of cogs/rules.py) ---------------------------------------


def test_rule_texts_are_shown_as_defused_inline_code_and_long_lists_are_cut() -> None:
    from cogs.rules import code, list_text, rule_line, rules_file

    assert code("a`b") == "`aˋb`"
    assert len(code("x" * 500)) <= 82
    line = rule_line(regex(3, "<@123> `x`", sfw_only=True), 4)
    assert line.startswith("`#3` regex `<@123> ˋxˋ` · not in NSFW channels · 4 refused · by <@7>")
    lines = [rule_line(word(i, "w" * 80)) for i in range(100)]
    body, cut = list_text(lines)
    assert cut and len(body) <= 3900 and body.endswith("(all of them are in the attached file)")
    assert list_text(lines[:3]) == ("\n".join(lines[:3]), False)
    data = rules_file([word(1, "bad"), regex(2, "a+b", sfw_only=True)], {2: 5}).fp.read().decode()
    assert data == "#1\tword\tall channels\t0 refused\tbad\n#2\tregex\tnot in NSFW channels\t5 refused\ta+b\n"


async def test_on_postgresql_a_rule_added_in_one_process_applies_in_another_within_the_cache_time() -> None:
    from bot.storage.postgres import PostgresBackend
    from tests.helpers import pgserver

    url = await pgserver.server().new_database()
    b1, b2 = await PostgresBackend.connect(url), await PostgresBackend.connect(url)
    try:
        elapsed = [0.0]  # a fake monotonic clock: the cache ages when the test says so
        one = RuleStore(b1, clock=lambda: NOW)
        two = RuleStore(b2, clock=lambda: NOW, monotonic=lambda: elapsed[0])
        assert one.cache_seconds == two.cache_seconds == 10.0
        await two.check(guild_id=1, user_id=42, channel_id=None, prompt="a cat", nsfw_channel=False)  # cached: none
        await one.add(1, "word", "cat", sfw_only=False, actor_id=7)
        elapsed[0] = 9.9
        await two.check(guild_id=1, user_id=42, channel_id=None, prompt="a cat", nsfw_channel=False)  # not yet
        elapsed[0] = 10.0
        with pytest.raises(PromptRefused):
            await two.check(guild_id=1, user_id=42, channel_id=None, prompt="a cat", nsfw_channel=False)
        assert await one.refusal_counts(1) == {1: 1}  # the refusal, audited through the other process
    finally:
        await b1.close()
        await b2.close()
