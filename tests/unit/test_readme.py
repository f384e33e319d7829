"""The README stays short, its Chinese translation keeps its structure, and neither links to a missing file."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ENGLISH, CHINESE = ROOT / "README.md", ROOT / "README.zh-CN.md"
LINK = re.compile(r"\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.S | re.M)
COMMENT = re.compile(r"<!--.*?-->", re.S)


def _text(path: Path) -> str:
    return COMMENT.sub("", path.read_text(encoding="utf-8"))


def _headings(text: str) -> list[str]:
    return [line.split(" ", 1)[0] for line in FENCE.sub("", text).splitlines() if line.startswith("#")]


def _commands(text: str) -> list[str]:
    """The fenced blocks without their comments: the commands themselves are the same in both languages."""
    return [re.sub(r"\s+#.*", "", block).strip() for block in FENCE.findall(text)]


def _local_links(text: str) -> list[str]:
    return [t.split("#")[0] for t in LINK.findall(text) if not re.match(r"[a-z]+:", t) and not t.startswith("#")]


def test_the_readme_is_an_introduction_not_the_manual() -> None:
    for path in (ENGLISH, CHINESE):
        assert len(_text(path).splitlines()) <= 180, f"{path.name}: move the details into docs/"


def test_the_chinese_readme_keeps_the_english_structure() -> None:
    english, chinese = _text(ENGLISH), _text(CHINESE)
    assert _headings(chinese) == _headings(english)
    assert _commands(chinese) == _commands(english)
    assert len(_local_links(chinese)) == len(_local_links(english))


def test_every_local_link_of_the_readmes_exists() -> None:
    for path in (ENGLISH, CHINESE):
        missing = [link for link in _local_links(_text(path)) if not (ROOT / link).exists()]
        assert missing == [], f"{path.name} links to missing files: {missing}"


def test_the_chinese_readme_links_the_chinese_pages() -> None:
    english_only = [
        link
        for link in _local_links(_text(CHINESE))
        if link.startswith("docs/") and not link.endswith(".zh.md") and Path(ROOT / link).with_suffix(".zh.md").exists()
    ]
    assert english_only == [], f"README.zh-CN.md links English pages that have a Chinese twin: {english_only}"
