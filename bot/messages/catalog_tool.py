"""Maintaining the message catalogs (``bot/messages/locales/``) with Babel, from a checkout of the project.

    python -m bot.messages.catalog_tool extract   # code → bot/messages/locales/imagebot.pot (the English template)
    python -m bot.messages.catalog_tool update    # template → every bot/messages/locales/<lang>/LC_MESSAGES/imagebot.po
    python -m bot.messages.catalog_tool check     # what tests/test_i18n_catalogs.py checks, as a list

The same settings drive ``pybabel extract`` / ``pybabel update`` run in the project directory: both read
``[tool.babel.*]`` in ``pyproject.toml``. No Discord imports; the bot itself never runs this.
"""

from __future__ import annotations

import io
import re
import sys
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from babel.messages.catalog import Catalog, Message
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_keywords
from babel.messages.pofile import read_po, write_po

from bot.messages.i18n import DOMAIN, LANGUAGES, TEMPLATE, po_path

ROOT = Path(__file__).resolve().parents[2]
PLACEHOLDER = re.compile(r"(?<!\{)\{([A-Za-z_][A-Za-z0-9_]*)?(?:[!:][^{}]*)?\}(?!\})")

Key = tuple[str, str | None]  # (msgid, msgctxt)


def settings() -> dict[str, Any]:
    with (ROOT / "pyproject.toml").open("rb") as f:
        return dict(tomllib.load(f)["tool"]["babel"]["extract_messages"])


def extract() -> Catalog:
    """The template as the code has it now (Babel's Python extractor, the keywords of ``pyproject.toml``)."""
    cfg = settings()
    keywords = parse_keywords(cfg["keywords"].split())
    comment_tags = [cfg["add-comments"]] if cfg.get("add-comments") else []
    template = Catalog(project=cfg.get("project"), version=cfg.get("version"), fuzzy=False)
    for folder in cfg["input-paths"]:
        found = extract_from_dir(
            ROOT / folder, method_map=[("**.py", "python")], keywords=keywords, comment_tags=comment_tags
        )
        for filename, lineno, message, comments, context in found:
            template.add(message, None, [(f"{folder}/{filename}", lineno)], auto_comments=comments, context=context)
    return template


def read(path: Path, locale: str | None = None) -> Catalog:
    with path.open("rb") as f:
        return read_po(f, locale=locale, domain=DOMAIN)


def write(catalog: Catalog, path: Path) -> None:
    buffer = io.BytesIO()
    write_po(buffer, catalog, width=120, sort_output=True, include_lineno=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buffer.getvalue())


def update() -> None:
    template = read(TEMPLATE)
    for lang in LANGUAGES:
        path = po_path(lang)
        catalog = read(path, lang) if path.exists() else Catalog(locale=lang, domain=DOMAIN)
        catalog.update(template, update_header_comment=False)
        write(catalog, path)


def keys(catalog: Catalog) -> set[Key]:
    return {_key(m) for m in catalog if m.id}


def _key(message: Message) -> Key:
    msgid = message.id[0] if isinstance(message.id, tuple) else message.id
    return str(msgid), message.context


def placeholders(text: str) -> set[str]:
    return {m.group(1) or "" for m in PLACEHOLDER.finditer(text)}


def _ids(message: Message) -> list[str]:
    return [str(i) for i in message.id] if isinstance(message.id, tuple | list) else [str(message.id)]


def _strings(message: Message) -> list[str]:
    if isinstance(message.string, tuple | list):
        return list(message.string)
    return [message.string or ""]


def _show(key: Key) -> str:
    return repr(key[0]) if key[1] is None else f"{key[1]}|{key[0]!r}"


def translation_problems(template: Catalog, catalog: Catalog, lang: str) -> list[str]:
    """Entries missing on either side, untranslated or fuzzy entries, and placeholders that differ."""
    problems = [f"{lang}: {_show(k)} is not in the template" for k in sorted(keys(catalog) - keys(template), key=str)]
    problems += [f"{lang}: {_show(k)} is missing" for k in sorted(keys(template) - keys(catalog), key=str)]
    for message in catalog:
        if not message.id:
            continue
        key = _show(_key(message))
        if message.fuzzy:
            problems.append(f"{lang}: {key} is fuzzy")
        strings = _strings(message)
        if not all(strings):
            problems.append(f"{lang}: {key} has no translation")
            continue
        expected = set().union(*(placeholders(i) for i in _ids(message)))
        for text in strings:
            if placeholders(text) != expected:
                problems.append(f"{lang}: {key} has placeholders {sorted(placeholders(text))}, not {sorted(expected)}")
    return problems


def problems() -> list[str]:
    """Everything the catalog test checks: the template against the code, each language against both."""
    template = read(TEMPLATE)
    code = extract()
    out = [
        f"template: {_show(k)} is in the code but not in the template"
        for k in sorted(keys(code) - keys(template), key=str)
    ]
    out += [f"template: {_show(k)} is no longer in the code" for k in sorted(keys(template) - keys(code), key=str)]
    for lang in LANGUAGES:
        path = po_path(lang)
        if not path.exists():
            out.append(f"{lang}: {path} is missing")
            continue
        out += translation_problems(template, read(path, lang), lang)
    return out


def main(argv: Iterable[str]) -> int:
    args = list(argv)
    command = args[0] if args else ""
    if command == "extract":
        write(extract(), TEMPLATE)
        print(f"wrote {TEMPLATE.relative_to(ROOT)}")
        return 0
    if command == "update":
        update()
        print("updated", ", ".join(str(po_path(lang).relative_to(ROOT)) for lang in LANGUAGES))
        return 0
    if command == "check":
        found = problems()
        print("\n".join(found) if found else "catalogs are complete")
        return 1 if found else 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
