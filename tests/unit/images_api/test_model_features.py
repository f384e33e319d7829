"""The registry's newer capabilities and prices: GIF frames, the SVG pass, complexity, the union of models."""

from __future__ import annotations

import pytest

from bot.images_api.models import get_model, models_with, union_of
from bot.images_api.types import Usage
from bot.jobs.options import OptionError, parse_options


def test_capabilities_by_family() -> None:
    two, flare5, flare6, one = (
        get_model(n) for n in ("gpt-image-2", "gpt-image-2.5-flare", "gpt-image-2.6-flare", "gpt-image-1")
    )
    assert two.output_formats == ("png", "jpeg", "webp") and not two.complexity and not two.markup
    assert flare5.output_formats == ("png", "jpeg", "webp", "gif", "svg") and flare5.complexity and flare5.markup
    assert flare6.gif and flare6.svg and flare6.complexity and not flare6.markup
    assert not one.gif and "xhigh" not in one.qualities
    assert get_model("gpt-image-2.5-sunburst-2026-09-08").markup  # snapshots resolve to their family
    assert models_with("markup") == ["gpt-image-2.5-sunburst", "gpt-image-2.5-flare"]
    union = union_of([two, flare6])
    assert union.gif and union.complexity and "xhigh" in union.qualities and not union.markup


def test_gif_estimate_counts_frames_and_svg_adds_its_pass() -> None:
    m = get_model("gpt-image-2.5-sunburst")
    still = m.estimate_cost(1, "1024x1024", "medium")
    assert m.estimate_cost(1, "1024x1024", "medium", output_format="gif", frames=4) > 3.9 * still - 1e-9
    nine = m.estimate_cost(1, "1024x1024", "medium", output_format="gif")  # default 9 frames
    assert nine == pytest.approx(m.estimate_cost(1, "1024x1024", "medium", output_format="gif", frames=9))
    svg = m.estimate_cost(1, "1024x1024", "medium", output_format="svg")
    assert svg > still
    assert m.estimate_output_tokens("1024x1024", "high", complexity="high") == pytest.approx(
        1.5 * m.estimate_output_tokens("1024x1024", "high"), abs=1
    )


def test_settled_cost_prices_the_svg_pass_with_its_own_prices() -> None:
    m = get_model("gpt-image-2.5-sunburst", {"gpt-image-2.5-sunburst": {"svg_in": 2.0, "svg_out": 20.0}})
    usage = Usage(input_tokens=100, output_tokens=1000, input_text_tokens=100)
    svg = Usage(input_tokens=500, output_tokens=3000, total_tokens=3500)
    expected = (100 * 5.0 + 1000 * 30.0) / 1e6 + (500 * 2.0 + 3000 * 20.0) / 1e6
    assert m.cost_from_usage(usage, svg) == pytest.approx(expected)
    assert m.cost_from_usage(usage) == pytest.approx((100 * 5.0 + 1000 * 30.0) / 1e6)
    with pytest.raises(ValueError):
        get_model("gpt-image-2", {"gpt-image-2": {"svg_price": 1}})


@pytest.mark.parametrize(
    ("model", "kwargs", "code"),
    [
        ("gpt-image-2", {"output_format": "gif"}, "format_model"),
        ("gpt-image-2", {"output_format": "svg"}, "format_model"),
        ("gpt-image-2", {"complexity": "high"}, "complexity_model"),
        ("gpt-image-2", {"quality": "xhigh"}, "quality"),
        ("gpt-image-2.5-flare", {"complexity": "extreme"}, "complexity"),
        ("gpt-image-2.5-flare", {"output_format": "png", "frame_count": 4}, "frames_gif_only"),
        ("gpt-image-2.5-flare", {"output_format": "gif", "frame_count": 17}, "frame_count"),
        ("gpt-image-2.5-flare", {"output_format": "gif", "frame_duration_ms": 5}, "frame_duration"),
        ("gpt-image-2.5-flare", {"output_format": "svg", "count": 2}, "svg_count"),
        ("gpt-image-2.5-flare", {"output_format": "gif", "mask": True}, "preview_mask"),
        ("gpt-image-2.6-flare", {"markup": True}, "markup_model"),
        ("gpt-image-2.5-flare", {"markup": True, "mask": True}, "markup_mask"),
    ],
)
def test_options_the_model_cannot_do_are_refused(model: str, kwargs: dict[str, object], code: str) -> None:
    with pytest.raises(OptionError) as caught:
        parse_options(get_model(model), **kwargs)  # type: ignore[arg-type]
    assert caught.value.code == code
    if code == "markup_model":
        assert caught.value.params["models"] == "gpt-image-2.5-sunburst, gpt-image-2.5-flare"


def test_gif_options_round_trip_through_the_ledger_settings() -> None:
    o = parse_options(
        get_model("gpt-image-2.5-flare"), output_format="GIF", frame_count=5, frame_duration_ms=120, complexity="Low"
    )
    assert (o.output_format, o.frame_count, o.frame_duration_ms, o.complexity) == ("gif", 5, 120, "low")
    assert o.preview_format
    assert type(o).from_settings(o.as_settings()) == o
    plain = parse_options(get_model("gpt-image-2"))
    assert set(plain.as_settings()) == {"size", "quality", "background", "format", "count"}  # older rows alike
