"""Unit tests of the model registry: name resolution, sizes, token and cost estimates, prices."""

from __future__ import annotations

import pytest

from bot.images_api.models import get_model
from bot.images_api.types import Usage


def test_snapshots_resolve_to_family() -> None:
    assert get_model("gpt-image-2-2026-04-21").name == "gpt-image-2"
    assert get_model("gpt-image-2.5-flare-2026-09-08").name == "gpt-image-2.5-flare"
    assert get_model("gpt-image-1-mini").name == "gpt-image-1-mini"
    assert get_model("GPT-Image-2").known


def test_unknown_model_defaults() -> None:
    m = get_model("my-gateway-model")
    assert not m.known and m.name == "my-gateway-model"
    assert m.fixed_sizes == ("1024x1024", "1536x1024", "1024x1536", "auto")
    assert m.qualities == ("low", "medium", "high", "auto")
    assert not m.supports_transparent and m.input_fidelity == ()
    g1 = get_model("gpt-image-1")
    assert (m.text_in, m.image_in, m.image_out) == (g1.text_in, g1.image_in, g1.image_out) == (5.0, 10.0, 40.0)


def test_capabilities() -> None:
    assert get_model("gpt-image-2").input_fidelity == ()
    assert get_model("gpt-image-1-mini").input_fidelity == ("low",)
    assert "xhigh" in get_model("gpt-image-2.5-sunburst").qualities
    assert "xhigh" not in get_model("gpt-image-2").qualities


def test_gpt_image_2_formula_matches_doc() -> None:
    m = get_model("gpt-image-2")
    assert m.estimate_output_tokens("1024x1024", "high") == 7024
    assert m.estimate_output_tokens("1024x1024", "low") == 196
    assert m.estimate_output_tokens("auto", "auto") == m.estimate_output_tokens("1024x1024", "medium")


def test_gpt_image_1_table() -> None:
    m = get_model("gpt-image-1")
    assert m.estimate_output_tokens("1024x1024", "low") == 272
    assert m.estimate_output_tokens("1024x1536", "medium") == 1584
    assert m.estimate_output_tokens("1536x1024", "high") == 6208
    assert m.estimate_output_tokens(None, None) == 1056
    # 4160 tokens at $40/1M = $0.1664 per high square image; estimate is at least that.
    assert m.estimate_cost(1, "1024x1024", "high") == pytest.approx(0.1664, rel=0.01)
    assert m.estimate_cost(2, "1024x1024", "high", prompt_chars=300, input_images=1) > 2 * 0.1664


def test_free_sizes() -> None:
    m = get_model("gpt-image-2")
    values = [c.value for c in m.sizes_for_choices()]
    assert "1536x864" in values and values[-1] == "auto"
    assert {"2560x1440", "3840x2160", "2160x3840"} <= set(values)  # large sizes offered too
    for v in values:
        assert m.resolve_size(v, allow_experimental=True) == v
    assert m.resolve_size("16:9") == "1536x864"
    assert m.resolve_size("auto") == "auto"
    assert m.resolve_size(" 2048X1152 ") == "2048x1152"
    w, h = (int(x) for x in m.resolve_size("5:1").split("x"))  # clamped to 3:1
    assert w % 16 == 0 and h % 16 == 0 and w / h <= 3
    for bad in ("1000x1000", "3072x512", "3840x2160x", "4096x2304", "big"):
        with pytest.raises(ValueError):
            m.resolve_size(bad)
    with pytest.raises(ValueError, match="experimental"):
        m.resolve_size("3840x2160")
    assert m.resolve_size("3840x2160", allow_experimental=True) == "3840x2160"


def test_fixed_sizes() -> None:
    m = get_model("gpt-image-1.5")
    assert [c.value for c in m.sizes_for_choices()] == ["1024x1024", "1536x1024", "1024x1536", "auto"]
    assert m.resolve_size("16:9") == "1536x1024"
    assert m.resolve_size("9:16") == "1024x1536"
    assert m.resolve_size("1:1") == "1024x1024"
    with pytest.raises(ValueError, match="choose one of"):
        m.resolve_size("1536x864")


def test_cost_from_usage_and_overrides() -> None:
    m = get_model("gpt-image-2")
    usage = Usage(
        input_tokens=1100, output_tokens=7024, total_tokens=8124, input_text_tokens=100, input_image_tokens=1000
    )
    assert m.cost_from_usage(usage) == pytest.approx((100 * 5 + 1000 * 8 + 7024 * 30) / 1e6)
    no_details = Usage(input_tokens=100, output_tokens=196, total_tokens=296)
    assert m.cost_from_usage(no_details) == pytest.approx((100 * 5 + 196 * 30) / 1e6)
    cheap = get_model("gpt-image-2-2026-04-21", {"gpt-image-2": {"image_out": 10}})
    assert cheap.image_out == 10 and cheap.text_in == 5
    assert get_model("other", {"default": {"text_in": 1}}).text_in == 1
    with pytest.raises(ValueError):
        get_model("gpt-image-2", {"gpt-image-2": {"bogus": 1}})
