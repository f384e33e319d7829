"""The walk of one ``/imagine`` image in ``docs/development/architecture.md`` matches the code: every function
it names exists where it says, every caller's source mentions its callee, and its count of crossings between
``cogs/`` and ``bot/`` is the one the table gives, at most 10."""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "development" / "architecture.md"
MAX_CROSSINGS = 10


def _rows() -> list[dict[str, str]]:
    text = PAGE.read_text(encoding="utf-8")
    table = text.split("<!-- walk:start -->", 1)[1].split("<!-- walk:end -->", 1)[0]
    rows = []
    for line in table.strip().splitlines()[2:]:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        number, function, file, caller, called_as, crossing = cells
        rows.append(
            {
                "number": number,
                "name": re.sub(r"`([^`]*)`.*", r"\1", function),
                "file": file.strip("`"),
                "caller": caller.strip("`") if caller.startswith("`") else "",
                "as": called_as.strip("`"),
                "crossing": crossing,
            }
        )
    return rows


def _module(file: str) -> str:
    path = file.removesuffix(".py").removesuffix("/__init__").rstrip("/")
    return path.replace("/", ".")


def _resolve(name: str, file: str) -> Any:
    obj: Any = importlib.import_module(_module(file))
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


def _layer(file: str) -> str:
    return file.split("/", 1)[0]


def test_every_function_of_the_walk_exists_where_the_page_says() -> None:
    rows = _rows()
    assert len(rows) > 20
    for row in rows:
        obj = _resolve(row["name"], row["file"])
        source = Path(inspect.getsourcefile(inspect.unwrap(obj)) or "").resolve()
        wanted = ROOT / row["file"]
        assert source == wanted or source.parent == wanted, (row["name"], source)


def test_every_caller_calls_its_callee() -> None:
    rows = _rows()
    files = {r["name"]: r["file"] for r in rows}
    for row in rows:
        if not row["caller"]:
            continue
        assert row["caller"] in files, f"{row['caller']} (caller of {row['name']}) has no row of its own"
        caller = inspect.unwrap(_resolve(row["caller"], files[row["caller"]]))
        called_as = row["as"] or row["name"].rsplit(".", 1)[-1]
        assert re.search(rf"\b{re.escape(called_as)}\b", inspect.getsource(caller)), (row["caller"], called_as)


def test_the_crossings_are_counted_right_and_at_most_ten() -> None:
    rows = _rows()
    files = {r["name"]: r["file"] for r in rows}
    crossings = [r for r in rows if r["caller"] and _layer(files[r["caller"]]) != _layer(r["file"])]
    marked = [r for r in rows if r["crossing"]]
    assert [r["number"] for r in crossings] == [r["number"] for r in marked]
    assert [r["crossing"] for r in marked] == [str(i) for i in range(1, len(marked) + 1)]
    stated = re.search(r"\*\*(\d+) crossings\.\*\*", PAGE.read_text(encoding="utf-8"))
    assert stated is not None and int(stated.group(1)) == len(crossings)
    assert len(crossings) <= MAX_CROSSINGS
