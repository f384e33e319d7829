"""Prompt rules, the pure part: normalising text, validating rules, and matching a prompt against them.

Two kinds of rule:

* **word**: a word or phrase, matched as whole words, case-insensitively and across Unicode width and case
  variants (both sides are NFKC-normalised and case-folded, format characters such as zero-width spaces are
  dropped and runs of white space count as one space). "Whole word" means a match may not split a run of
  letters or digits of a script written with spaces: ``bad`` matches ``Bad!`` and ``ｂａｄ`` but not
  ``badge``. Chinese, Japanese, Korean (and Thai, Lao, Khmer, Myanmar) have no spaces between words, so a word
  written in them matches wherever it appears, and a word next to such text needs no boundary there.
* **regex**: a regular expression in RE2 syntax (``google-re2``: no back-references or look-around), matched
  case-insensitively against the NFKC-normalised prompt. RE2 runs in time linear in the prompt's length
  (no backtracking, so ``(a+)+$`` is as cheap as ``a+$``), and each pattern's size is limited here.

Nothing here touches the database or Discord; ``bot.rules.store`` loads rules and calls ``RuleSet.match``.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal

import re2

RuleKind = Literal["word", "regex"]
RULE_KINDS: Final = ("word", "regex")

MAX_WORD_CHARS: Final = 100
MAX_REGEX_CHARS: Final = 300
MAX_REGEX_PROGRAM: Final = 1000  # RE2 program size (instructions): match time is linear in it and the text
MAX_REGEX_PROGRAM_TOTAL: Final = 2000  # all of a server's regex rules together: bounds the time per prompt
REGEX_MAX_MEM: Final = 1 << 20  # bytes RE2 may use for one pattern (program and DFA cache)


class RuleError(ValueError):
    """A rule a moderator tried to add is not acceptable. ``code`` says why (``bot.messages`` words it)."""

    def __init__(self, code: str, **info: Any) -> None:
        super().__init__(code)
        self.code = code
        self.info = info


class PromptRefused(Exception):
    """A prompt matched one of the server's rules. Carries the rule's id, never the prompt."""

    def __init__(self, rule_id: int, kind: str) -> None:
        super().__init__(f"prompt refused by rule {rule_id}")
        self.rule_id = rule_id
        self.kind = kind


@dataclass(frozen=True, slots=True)
class Rule:
    id: int
    guild_id: int
    kind: RuleKind
    pattern: str  # as the moderator wrote it (stripped)
    sfw_only: bool  # True: applies only in channels that are not age-restricted
    created_at: datetime
    created_by: int


# --------------------------------------------------------------------------- normalising

# Scripts written without spaces between words: a word in them matches as a substring.
_NO_SPACE_RANGES: Final = (
    (0x0E00, 0x0EFF),  # Thai, Lao
    (0x1000, 0x109F),  # Myanmar
    (0x1100, 0x11FF),  # Hangul Jamo
    (0x1780, 0x17FF),  # Khmer
    (0x2E80, 0x2FDF),  # CJK radicals, Kangxi radicals
    (0x3005, 0x3007),  # 々 〆 〇
    (0x3040, 0x30FF),  # Hiragana, Katakana
    (0x3100, 0x31FF),  # Bopomofo, Hangul compatibility Jamo, Katakana extensions
    (0x3400, 0x4DBF),  # CJK extension A
    (0x4E00, 0x9FFF),  # CJK unified ideographs
    (0xA960, 0xA97F),  # Hangul Jamo extended A
    (0xAC00, 0xD7FF),  # Hangul syllables, Jamo extended B
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
    (0xFF66, 0xFF9F),  # half-width Katakana (NFKC makes them full-width anyway)
    (0x20000, 0x323AF),  # CJK extensions B-H
)


def no_space_script(ch: str) -> bool:
    cp = ord(ch)
    return any(lo <= cp <= hi for lo, hi in _NO_SPACE_RANGES)


def word_char(ch: str) -> bool:
    """Letters, digits, combining marks and the underscore: what a whole-word match may not split."""
    return ch == "_" or unicodedata.category(ch)[0] in "LMN"


def _drop_format(text: str) -> str:
    """Remove format characters (zero-width space and joiners, soft hyphen, bidi marks)."""
    if text.isascii():
        return text
    return "".join(ch for ch in text if unicodedata.category(ch) != "Cf")


def normalize_for_regex(text: str) -> str:
    """What a regular expression is matched against: NFKC (width variants unified), format characters dropped."""
    return _drop_format(unicodedata.normalize("NFKC", text))


def normalize_words(text: str) -> str:
    """What word rules compare: NFKC, format characters dropped, case-folded, white space collapsed."""
    folded = unicodedata.normalize("NFKC", _drop_format(unicodedata.normalize("NFKC", text)).casefold())
    return " ".join(folded.split())


# --------------------------------------------------------------------------- validating


def validate_word(text: str) -> str:
    """The word's normalised form; RuleError when it is empty or too long."""
    stripped = text.strip()
    if len(stripped) > MAX_WORD_CHARS:
        raise RuleError("too_long", limit=MAX_WORD_CHARS)
    normal = normalize_words(stripped)
    if not normal:
        raise RuleError("empty")
    return normal


def compile_regex(pattern: str) -> Any:
    """Compile ``pattern`` with RE2 under the size limits; RuleError when it is not acceptable."""
    if not pattern.strip():
        raise RuleError("empty")
    if len(pattern) > MAX_REGEX_CHARS:
        raise RuleError("too_long", limit=MAX_REGEX_CHARS)
    options = re2.Options()
    options.max_mem = REGEX_MAX_MEM
    options.case_sensitive = False
    options.log_errors = False  # a moderator's typo is not an operator's problem
    try:
        compiled = re2.compile(pattern, options)
    except re2.error as exc:
        raise RuleError("invalid_regex") from exc
    if compiled.programsize > MAX_REGEX_PROGRAM:
        raise RuleError("too_complex", limit=MAX_REGEX_PROGRAM)
    if compiled.search("") is not None:
        raise RuleError("matches_everything")
    return compiled


# --------------------------------------------------------------------------- matching


def _bounded(text: str, start: int, end: int, word: str) -> bool:
    """True when ``text[start:end]`` (equal to ``word``) does not split a word of a space-using script."""
    if start > 0:
        before, first = text[start - 1], word[0]
        if word_char(before) and word_char(first) and not no_space_script(before) and not no_space_script(first):
            return False
    if end < len(text):
        after, last = text[end], word[-1]
        if word_char(after) and word_char(last) and not no_space_script(after) and not no_space_script(last):
            return False
    return True


def contains_word(normalized_text: str, normalized_word: str) -> bool:
    """Whole-word search of one normalised word in a normalised text."""
    start = normalized_text.find(normalized_word)
    while start != -1:
        if _bounded(normalized_text, start, start + len(normalized_word), normalized_word):
            return True
        start = normalized_text.find(normalized_word, start + 1)
    return False


@dataclass(frozen=True, slots=True)
class _Compiled:
    rule: Rule
    word: str | None  # normalised word, for word rules
    regex: Any  # compiled RE2 pattern, for regex rules


class RuleSet:
    """A server's rules, each compiled once. Immutable: ``bot.rules.store`` builds a new one after a change."""

    def __init__(self, rules: list[Rule]) -> None:
        compiled: list[_Compiled] = []
        for rule in sorted(rules, key=lambda r: r.id):
            try:
                if rule.kind == "word":
                    compiled.append(_Compiled(rule, validate_word(rule.pattern), None))
                else:
                    compiled.append(_Compiled(rule, None, compile_regex(rule.pattern)))
            except RuleError:
                # Accepted when it was added; a later, stricter limit must not make every prompt fail.
                continue
        self._rules = tuple(compiled)
        self.rules = tuple(c.rule for c in compiled)
        self.has_regex = any(c.regex is not None for c in compiled)

    def __len__(self) -> int:
        return len(self._rules)

    def match(self, prompt: str, *, nsfw_channel: bool) -> Rule | None:
        """The first rule (lowest id) the prompt breaks in a channel of this kind, or None.

        Linear in the prompt's length for every rule; with regex rules it may take a few milliseconds on a
        long prompt, so ``bot.rules.store`` runs it off the event loop then.
        """
        active = [c for c in self._rules if not (nsfw_channel and c.rule.sfw_only)]
        if not active:
            return None
        words = normalize_words(prompt) if any(c.word is not None for c in active) else ""
        regex_text = normalize_for_regex(prompt) if any(c.regex is not None for c in active) else ""
        for c in active:
            if c.word is not None:
                if contains_word(words, c.word):
                    return c.rule
            elif c.regex.search(regex_text) is not None:
                return c.rule
        return None
