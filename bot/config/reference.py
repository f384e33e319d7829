"""The configuration reference of the documentation site, generated from the settings' declarations.

``docs/operations/configuration.md`` and its Chinese twin are written from the same ``setting(...)``
declarations as ``.env.example``, so the reference cannot say something the code does not read:

    python -m bot config-docs           # rewrite both pages
    python -m bot config-docs --check   # exit 1 when a page is stale (what the test suite checks)

The pages are documentation of a checkout, not package data: the command works from the repository only.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import Field
from pathlib import Path
from typing import Any

from bot.config.env_example import example_value
from bot.config.reference_zh import SECTIONS_ZH, SETTINGS_ZH
from bot.config.settings import ENV_FILE_VARIABLE, declared
from bot.config.spec import Spec

ROOT = Path(__file__).resolve().parents[2]
PAGES = {"en": ROOT / "docs/operations/configuration.md", "zh": ROOT / "docs/operations/configuration.zh.md"}
REGENERATE = "python -m bot config-docs"

_TEXT = {
    "en": {
        "title": "Configuration reference",
        "intro": (
            "Every setting the bot reads, with its default. Settings come from the environment and from a `.env` "
            f"file in the working directory (set `{ENV_FILE_VARIABLE}` in the environment to read another file); "
            "real environment variables win over the file. An empty value means the default. A missing or "
            "malformed value stops the bot with one line naming the setting and why; `./imagebot doctor` checks "
            "the same. `.env.example` in the repository is the same list as a file to copy to `.env`."
        ),
        "generated": f"This page is generated from `bot/config/settings.py` (`{REGENERATE}`); do not edit it by hand.",
        "header": "| Setting | Default | What it does |",
        "required": "required",
        "empty": "empty",
        "secret": " Secret: never logged or shown.",
    },
    "zh": {
        "title": "配置参考",
        "intro": (
            "机器人读取的每一项设置及其默认值。设置来自环境变量和工作目录下的 `.env` 文件"
            "（要读取其他文件，请在环境变量中设置 "
            f"`{ENV_FILE_VARIABLE}`）；真实环境变量优先于文件。留空表示使用默认值。缺失或格式错误的值会让机器人停止，"
            "并用一行文字说明是哪项设置、错在哪里；`./imagebot doctor` 做同样的检查。"
            "仓库中的 `.env.example` 是同一份清单，可复制为 `.env`。"
        ),
        "generated": f"本页由 `bot/config/settings.py` 生成（`{REGENERATE}`），请勿手工编辑。",
        "header": "| 设置 | 默认值 | 作用 |",
        "required": "必填",
        "empty": "空",
        "secret": "机密：从不写入日志或显示。",
    },
}


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def _default(f: Field[Any], spec: Spec, lang: str) -> str:
    if spec.required:
        return _TEXT[lang]["required"]
    value = example_value(f, spec)
    return f"`{_cell(value)}`" if value else _TEXT[lang]["empty"]


def missing_translations() -> list[str]:
    """Settings and sections without a Chinese text (the reference's Chinese page needs every one)."""
    out = [f"setting {spec.env}" for _, spec in declared() if spec.env not in SETTINGS_ZH]
    out += [f"section {spec.section!r}" for _, spec in declared() if spec.section and spec.section not in SECTIONS_ZH]
    return out


def stale_translations() -> list[str]:
    """Chinese texts of settings and sections that are no longer declared."""
    envs = {spec.env for _, spec in declared()}
    sections = {spec.section for _, spec in declared() if spec.section}
    return [f"setting {env}" for env in SETTINGS_ZH if env not in envs] + [
        f"section {title!r}" for title in SECTIONS_ZH if title not in sections
    ]


def render(lang: str) -> str:
    """The page in ``lang`` ("en" or "zh"): one table per section of ``.env.example``, in its order."""
    text = _TEXT[lang]
    out = [f"# {text['title']}", "", text["intro"], "", f"!!! note\n    {text['generated']}"]
    for f, spec in declared():
        if spec.section:
            section = spec.section if lang == "en" else SECTIONS_ZH.get(spec.section, spec.section)
            out += ["", f"## {section}", "", text["header"], "|---|---|---|"]
        doc = spec.doc if lang == "en" else SETTINGS_ZH.get(spec.env, spec.doc)
        if spec.secret:
            doc += text["secret"]
        out.append(f"| `{spec.env}` | {_default(f, spec, lang)} | {_cell(doc)} |")
    return "\n".join(out) + "\n"


def stale() -> list[str]:
    """The pages whose text differs from what the declarations give."""
    return [
        str(path.relative_to(ROOT))
        for lang, path in PAGES.items()
        if not path.is_file() or path.read_text(encoding="utf-8") != render(lang)
    ]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bot config-docs",
        description="write docs/operations/configuration(.zh).md from the settings' declarations",
    )
    parser.add_argument("--check", action="store_true", help="only check: exit 1 when a page is stale")
    args = parser.parse_args(argv)
    missing, unknown = missing_translations(), stale_translations()
    if missing:
        print("bot/config/reference_zh.py has no Chinese text for: " + ", ".join(missing), file=sys.stderr)
    if unknown:
        print("bot/config/reference_zh.py names what is no longer declared: " + ", ".join(unknown), file=sys.stderr)
    if missing or unknown:
        return 1
    if args.check:
        found = stale()
        for page in found:
            print(f"{page} is stale: run {REGENERATE}", file=sys.stderr)
        return 1 if found else 0
    for lang, path in PAGES.items():
        path.write_text(render(lang), encoding="utf-8")
        print(f"wrote {path.relative_to(ROOT)}")
    return 0
