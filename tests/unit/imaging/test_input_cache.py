"""The recent-edit-inputs cache keeps to its memory budget, whatever the inputs' sizes."""

from __future__ import annotations

import pytest

from bot.config.settings import load_settings
from bot.images_api.types import InputImage
from bot.imaging.input_cache import ENTRY_OVERHEAD, EditInputs, InputCache

MB = 1024 * 1024


def _inputs(size: int, n: int = 1) -> EditInputs:
    return EditInputs(tuple(InputImage(f"{i}.png", bytes(size), "image/png") for i in range(n)))


def test_heavy_editing_stays_inside_the_budget() -> None:
    cache = InputCache(max_bytes=48 * MB)
    for job in range(80):  # 80 edits of 1.3 MB inputs
        cache.put(job, _inputs(1_300_000))
    kept = [j for j in range(80) if cache.get(j) is not None]
    assert kept == list(range(80 - len(kept), 80))  # the most recent ones
    assert len(kept) * (1_300_000 + ENTRY_OVERHEAD) <= 48 * MB < (len(kept) + 1) * (1_300_000 + ENTRY_OVERHEAD)


def test_many_tiny_inputs_count_their_overhead_and_the_count_bound_holds() -> None:
    cache = InputCache(max_bytes=10 * ENTRY_OVERHEAD, max_items=64)
    for job in range(20):
        cache.put(job, _inputs(1, n=2))  # two parts: 2 x (1 + overhead)
    assert sum(cache.get(j) is not None for j in range(20)) == 4


def test_a_zero_budget_keeps_nothing() -> None:
    cache = InputCache(max_bytes=0)
    cache.put(1, _inputs(10))
    assert cache.get(1) is None


def test_the_default_budget_fits_a_small_container(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISCORD_TOKEN", "x" * 60)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-" + "x" * 40)
    monkeypatch.setenv("IMAGEBOT_ENV_FILE", "/nonexistent")
    assert load_settings().edit_cache_bytes == 48 * MB
    monkeypatch.setenv("EDIT_CACHE_MB", "0")
    assert load_settings().edit_cache_bytes == 0
