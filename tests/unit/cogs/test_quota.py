"""Unit tests of ``cogs.quota``'s pure parts and of the report's slow path (the e2e tests cover the rest)."""

from __future__ import annotations

import asyncio
import gzip
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

import cogs.quota.cog as qc
import cogs.quota.render as q
from bot.quota import INHERIT, UNCHANGED, Report


def test_limit_options_follow_the_documented_conventions() -> None:
    assert q.limit_change(None, clear=False) is UNCHANGED
    assert q.limit_change(None, clear=True) is INHERIT
    assert q.limit_change(-1, clear=False) is None  # unlimited
    assert q.limit_change(0, clear=True) == 0  # blocked, even with clear
    assert q.limit_change(7, clear=False) == 7
    for bad in (-2, q.MAX_LIMIT + 1):  # Discord's client enforces the range, discord.py does not
        with pytest.raises(ValueError):
            q.limit_change(bad, clear=False)


def test_sources_and_audit_values_read_as_words() -> None:
    assert q.source_text("user", you=True) == "set for you"
    assert q.source_text("role:42", you=True) == "from role <@&42>"
    assert q.source_text("server", you=False) == "server default"
    assert q.source_text("bot", you=False) == "bot default"
    assert q.changes_text({"daily": {"old": "inherit", "new": 0}, "monthly": {"old": 5, "new": "unlimited"}}) == (
        "daily not set → **blocked (0)**, monthly 5 → **unlimited**"
    )


def test_lines_within_says_how_many_were_left_out() -> None:
    lines = [f"line {i:02d}" for i in range(10)]  # 7 characters each
    assert q.lines_within(lines, 1000, lambda n: f"+{n}") == "\n".join(lines)
    text = q.lines_within(lines, 30, lambda n: f"+{n}")
    assert len(text) <= 30 and text.endswith("+7") and text.startswith("line 00\nline 01\nline 02")
    assert q.lines_within(["x" * 50], 10, lambda n: f"+{n}") == "+1"


def test_timezone_autocomplete_prefers_prefixes() -> None:
    assert q.timezone_matches("europe/ber")[0] == "Europe/Berlin"
    assert "Europe/Berlin" in q.timezone_matches("berl")
    assert "America/New_York" in q.timezone_matches("new york")
    blank = q.timezone_matches("")
    assert blank[0] == "UTC" and len(blank) == 25


def test_ledger_is_gzipped_when_too_big_and_dropped_when_even_that_is() -> None:
    text = "id,prompt\n" + "".join(f"{i},a cat\n" for i in range(5000))
    plain = q.csv_file(text, "ledger", 1_000_000)
    assert plain is not None and plain.filename == "ledger.csv"
    packed = q.csv_file(text, "ledger", 20_000)
    assert packed is not None and packed.filename == "ledger.csv.gz"
    assert gzip.decompress(packed.fp.read()).decode() == text
    assert q.csv_file(text, "ledger", 10) is None


class _Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Any:
        async def record(*args: Any, **kwargs: Any) -> None:
            self.calls.append((name, kwargs))

        return record


async def test_a_slow_report_is_deferred_then_sent_as_a_follow_up(monkeypatch: pytest.MonkeyPatch) -> None:
    start, end = datetime(2024, 6, 1, tzinfo=UTC), datetime(2024, 7, 1, tzinfo=UTC)

    class SlowStore:
        async def report(self, guild_id: int) -> Report:
            await asyncio.sleep(0.05)
            return Report(guild_id, "UTC", start, end, None, 0, 0, 0.0, [])

        async def ledger_csv(self, guild_id: int, *, since: datetime) -> str:
            assert since == start
            return "id\n"

    monkeypatch.setattr(qc, "REPORT_DEFER_AFTER", 0.01)
    bot: Any = SimpleNamespace(services=SimpleNamespace(reports=SlowStore(), rules=None))
    response, followup = _Recorder(), _Recorder()
    interaction: Any = SimpleNamespace(
        guild_id=1, guild=None, filesize_limit=10_000_000, response=response, followup=followup
    )
    await qc.QuotaCog.report.callback(qc.QuotaCog(bot), interaction)  # type: ignore[call-arg, arg-type]
    assert [c[0] for c in response.calls] == ["defer"] and response.calls[0][1]["ephemeral"] is True
    [(name, kwargs)] = followup.calls
    assert name == "send" and kwargs["ephemeral"] is True
    assert [f.filename for f in kwargs["files"]] == ["imagebot-usage-2024-06.png", "imagebot-ledger-2024-06.csv"]
    assert kwargs["embed"].title == "Image usage this month"
