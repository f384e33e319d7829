"""The documentation site builds in strict mode (broken links fail), and every page a member, moderator or
operator reads has its Simplified Chinese twin (``page.zh.md``): the i18n plugin would otherwise fall back to
English without a word."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
ENGLISH_ONLY = {"development"}  # contributors' pages


def _english_pages() -> list[Path]:
    return sorted(p for p in DOCS.rglob("*.md") if not p.name.endswith(".zh.md"))


def test_every_user_page_has_a_chinese_twin() -> None:
    missing = [
        str(p.relative_to(DOCS))
        for p in _english_pages()
        if p.relative_to(DOCS).parts[0] not in ENGLISH_ONLY and not p.with_name(p.stem + ".zh.md").is_file()
    ]
    assert missing == [], f"pages without a .zh.md translation: {missing}"


def test_no_chinese_page_without_its_english_original() -> None:
    orphans = [
        str(p.relative_to(DOCS))
        for p in DOCS.rglob("*.zh.md")
        if not p.with_name(p.name.removesuffix(".zh.md") + ".md").is_file()
    ]
    assert orphans == []


def test_the_site_builds_in_strict_mode(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert (tmp_path / "site" / "index.html").is_file() and (tmp_path / "site" / "zh" / "index.html").is_file()
