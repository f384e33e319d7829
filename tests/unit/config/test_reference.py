"""The configuration reference pages of the documentation are the text the settings' declarations give."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

from bot.config import reference
from bot.config.settings import declared
from bot.config.spec import Spec


def test_the_reference_pages_are_the_generated_text() -> None:
    assert reference.stale() == [], f"stale configuration reference: run {reference.REGENERATE}"


def test_every_setting_and_section_has_its_chinese_text() -> None:
    assert reference.missing_translations() == [], "add the Chinese text to bot/config/reference_zh.py"


def test_no_chinese_text_for_a_setting_that_is_gone() -> None:
    assert reference.stale_translations() == [], "remove it from bot/config/reference_zh.py"


def test_every_declared_setting_has_one_row_in_each_language() -> None:
    for lang in reference.PAGES:
        page = reference.render(lang)
        for _, spec in declared():
            assert page.count(f"| `{spec.env}` |") == 1, (lang, spec.env)


def test_a_changed_declaration_makes_the_page_stale(monkeypatch: pytest.MonkeyPatch) -> None:
    """The check compares with the declarations, not with itself: a new default shows as a stale page."""
    before = reference.render("en")
    spec = next(s for _, s in declared() if s.env == "PARTIAL_IMAGES")
    changed = dataclasses.replace(spec, doc=spec.doc + " Changed.")
    entries = [(f, changed if s is spec else s) for f, s in declared()]
    monkeypatch.setattr(reference, "declared", lambda: entries)
    after = reference.render("en")
    assert after != before and "Changed." in after
    assert "docs/operations/configuration.md" in reference.stale()


def test_table_cells_cannot_break_the_table() -> None:
    spec = Spec("X", str, "a | b\nc")
    assert reference._cell(spec.doc) == "a \\| b c"


def test_the_command_line_checks_the_pages() -> None:
    """``python -m bot config-docs --check``: what a contributor runs, wired to the same check."""
    proc = subprocess.run(
        [sys.executable, "-m", "bot", "config-docs", "--check"], cwd=reference.ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
