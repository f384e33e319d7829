"""Prompt rules moderators set: banned words and regular expressions (no Discord imports)."""

from bot.rules.engine import (
    MAX_REGEX_CHARS,
    MAX_WORD_CHARS,
    PromptRefused,
    Rule,
    RuleError,
    RuleSet,
    compile_regex,
    normalize_words,
    validate_word,
)
from bot.rules.store import MAX_REGEX_RULES, MAX_RULES, RuleStore, rule_label

__all__ = [
    "MAX_REGEX_CHARS",
    "MAX_REGEX_RULES",
    "MAX_RULES",
    "MAX_WORD_CHARS",
    "PromptRefused",
    "Rule",
    "RuleError",
    "RuleSet",
    "RuleStore",
    "compile_regex",
    "normalize_words",
    "rule_label",
    "validate_word",
]
