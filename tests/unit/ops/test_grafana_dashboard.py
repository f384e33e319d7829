"""The sample Grafana dashboard of the documentation asks only for metrics the bot exposes."""

from __future__ import annotations

import json
import re
from pathlib import Path

from bot.ops.metrics import Metrics

DASHBOARD = Path(__file__).resolve().parents[3] / "docs" / "operations" / "grafana-dashboard.json"
SUFFIXES = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_count", "_sum")}


def _exposed() -> set[str]:
    """The sample names ``GET /metrics`` serves, labelled or not, without needing a sample of each."""
    return {
        family.name + suffix for family in Metrics().registry.collect() for suffix in SUFFIXES.get(family.type, ("",))
    }


def _queried() -> set[str]:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    assert exprs, "the dashboard has no queries"
    return {name for expr in exprs for name in re.findall(r"\bimagebot_[a-z_]+", expr)}


def test_every_metric_the_dashboard_queries_is_exposed() -> None:
    unknown = _queried() - _exposed()
    assert unknown == set(), f"the dashboard queries metrics the bot does not expose: {sorted(unknown)}"


def test_the_dashboard_shows_every_metric_the_bot_exposes() -> None:
    families = {family.name for family in Metrics().registry.collect()}
    shown = {re.sub(r"_(total|bucket|count|sum)$", "", name) for name in _queried()}
    assert families - shown == set(), f"metrics without a panel: {sorted(families - shown)}"
