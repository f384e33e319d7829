"""End to end: the newer model features (animated GIFs, SVGs, complexity, xhigh) with the real bot process.

The fake Images API draws real GIFs and SVGs, reports ``usage``/``svg_usage``, and refuses each parameter a
model lacks the way the API does, so a parameter that reaches the wrong model fails these tests.
"""

from __future__ import annotations

import io
from typing import Any

import pytest
from PIL import Image, ImageChops

from bot.images_api.models import get_model, input_image_tokens
from bot.images_api.types import Usage
from tests.conftest import Rig
from tests.helpers.e2e import EPHEMERAL, db, files_of, final_files, has_result, job_rows, poll, results_of

NEW_MODEL = "gpt-image-2.5-sunburst"


def px(im: Image.Image, xy: tuple[int, int]) -> tuple[int, ...]:
    value = im.getpixel(xy)
    assert isinstance(value, tuple)
    return value


def gens(rig: Rig) -> list[dict[str, Any]]:
    return [r.json for r in rig.images.requests if r.path.endswith("/images/generations") and r.json]


def settled_cost(rig: Rig, job: Any) -> float:
    return float(job["cost_actual"])


async def test_gif_job_posts_an_animation_with_the_asked_frames_and_fits_the_upload_limit(rig: Rig) -> None:
    rig.images.realistic = True  # grain: a photographic GIF that weighs megabytes
    rig.discord.upload_limit = 1_500_000
    rig.images.delay_response = 2.0  # long enough for the status to go out before the result
    await rig.start_bot(IMAGE_MODEL=NEW_MODEL)
    fd = rig.discord
    imagine = next(c for c in fd.global_commands if c["name"] == "imagine")
    options = {o["name"]: o for o in imagine["options"]}
    assert {c["value"] for c in options["format"]["choices"]} == {"png", "jpeg", "webp", "gif", "svg"}
    assert {"complexity", "frames", "frame_ms"} <= set(options)
    assert options["frames"]["min_value"] == 2 and options["frames"]["max_value"] == 16

    h = await fd.inject_interaction(
        fd.slash(
            "imagine",
            {"prompt": "a bouncing ball", "format": "gif", "frames": 5, "frame_ms": 120, "size": "1024x1024"},
        )
    )
    # The progress message says what is going on without pretending to stream.
    await h.wait_for(lambda x: "animated GIF" in ((x.original or {}).get("content") or ""), timeout=20)
    assert h.original is not None and "frame 1/" not in h.original["content"]
    await h.wait_for(has_result, timeout=60)

    [req] = gens(rig)
    assert req["output_format"] == "gif" and req["frame_count"] == 5 and req["frame_duration_ms"] == 120
    assert "stream" not in req and "partial_images" not in req  # no stream, no partial frames
    assert len(rig.images.results[-1]) > 1_500_000, "the test needs a GIF over the limit"

    [final] = final_files(h)
    data = fd.cdn_bytes(final)
    assert final["filename"].endswith(".gif") and len(data) <= 1_500_000
    with Image.open(io.BytesIO(data)) as im:
        frames = getattr(im, "n_frames", 1)
        assert im.format == "GIF" and frames == 5  # fitting kept the animation
        durations = []
        for i in range(frames):
            im.seek(i)
            durations.append(im.info["duration"])
    assert durations == [120] * 5
    assert "re-encoded" in h.msg["content"]
    assert not any(a["filename"].startswith("preview") for m in h.original_history for a in files_of(m))

    # The estimate counted the frames; the settled cost is the registry's price of the reported usage.
    await poll(lambda: job_rows(rig)[0]["status"] == "done")
    [job] = job_rows(rig)
    model = get_model(NEW_MODEL)
    prompt = "a bouncing ball"
    assert job["cost_estimate"] == pytest.approx(
        model.estimate_cost(1, "1024x1024", "auto", prompt_chars=len(prompt), output_format="gif", frames=5)
    )
    expected_out = model.estimate_output_tokens("1024x1024", "medium", frames=5)
    assert job["output_tokens"] == expected_out
    usage = Usage(input_tokens=job["input_tokens"], output_tokens=expected_out)
    assert settled_cost(rig, job) == pytest.approx(model.cost_from_usage(usage), rel=1e-6)
    assert job["cost_estimate"] >= job["cost_actual"]


async def test_svg_job_attaches_the_svg_and_shows_a_png_rendering(rig: Rig) -> None:
    await rig.start_bot(IMAGE_MODEL=NEW_MODEL)
    fd = rig.discord
    prompt = "a logo <b>&amp; friends</b>"
    h = await fd.inject_interaction(fd.slash("imagine", {"prompt": prompt, "format": "svg", "size": "1536x1024"}))
    await h.wait_for(has_result, timeout=40)
    [req] = gens(rig)
    assert req["output_format"] == "svg" and req["n"] == 1 and "stream" not in req

    [svg_file] = final_files(h)
    assert svg_file["filename"].endswith(".svg")
    svg = fd.cdn_bytes(svg_file)
    assert b"<svg" in svg and b"&lt;b&gt;" in svg  # the prompt's markup stays text
    rendering = [a for a in files_of(h.original) if a["filename"].startswith("rendering-")]
    assert len(rendering) == 1 and h.original is not None
    embed = h.original["embeds"][0]
    assert embed["image"]["url"].endswith(f"/{rendering[0]['filename']}")  # Discord resolves attachment://
    with Image.open(io.BytesIO(fd.cdn_bytes(rendering[0]))) as im:
        assert im.format == "PNG" and im.size == (1024, 683)

    # usage and svg_usage both settle, at the registry's prices.
    await poll(lambda: job_rows(rig)[0]["status"] == "done")
    [job] = job_rows(rig)
    model = get_model(NEW_MODEL)
    assert job["cost_estimate"] == pytest.approx(
        model.estimate_cost(1, "1536x1024", "auto", prompt_chars=len(prompt), output_format="svg")
    )
    assert (
        job["cost_estimate"]
        >= job["cost_actual"]
        > model.cost_from_usage(Usage(input_tokens=job["input_tokens"], output_tokens=job["output_tokens"]))
    )  # the SVG pass is charged on top of the image tokens


HOSTILE_SVGS = {
    "external entity": b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><text>&xxe;</text></svg>',
    "billion laughs": b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
    b'<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
    b'<svg xmlns="http://www.w3.org/2000/svg"><text>&lol3;</text></svg>',
    "absurd viewBox": b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 1000000000 1"><rect/></svg>',
}


@pytest.mark.parametrize("kind", sorted(HOSTILE_SVGS))
async def test_hostile_svg_is_refused_clearly_and_not_charged(rig: Rig, kind: str) -> None:
    rig.images.replace_final_next(HOSTILE_SVGS[kind])
    await rig.start_bot(IMAGE_MODEL=NEW_MODEL)
    fd = rig.discord
    h = await fd.inject_interaction(fd.slash("imagine", {"prompt": "a crest", "format": "svg"}))
    await h.wait_for(lambda x: "SVG the bot won't pass on" in ((x.original or {}).get("content") or ""), timeout=30)
    assert not final_files(h)
    await poll(lambda: job_rows(rig)[0]["status"] == "failed")
    assert job_rows(rig)[0]["images_done"] == 0


async def test_svg_with_a_script_and_outside_references_is_cleaned_then_rendered(rig: Rig) -> None:
    hostile = (
        b'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
        b'viewBox="0 0 1000000000 1000000000"><script>alert(document.cookie)</script>'
        b'<rect width="1000000000" height="1000000000" fill="#36c" onload="alert(1)"/>'
        b'<image xlink:href="file:///etc/passwd" width="10" height="10"/>'
        b'<use href="http://example.invalid/x.svg#a"/>'
        b'<foreignObject><body xmlns="http://www.w3.org/1999/xhtml">hi</body></foreignObject></svg>'
    )
    rig.images.replace_final_next(hostile)
    await rig.start_bot(IMAGE_MODEL=NEW_MODEL)
    fd = rig.discord
    h = await fd.inject_interaction(fd.slash("imagine", {"prompt": "a huge square", "format": "svg"}))
    await h.wait_for(has_result, timeout=40)
    svg = fd.cdn_bytes(final_files(h)[0])
    for banned in (b"<script", b"onload", b"file:", b"http://example", b"foreignObject"):
        assert banned not in svg, banned
    [rendering] = [a for a in files_of(h.original) if a["filename"].startswith("rendering-")]
    with Image.open(io.BytesIO(fd.cdn_bytes(rendering))) as im:
        assert im.size == (1024, 1024)  # bounded, whatever the viewBox says
        assert im.convert("RGB").getpixel((512, 512)) == (0x33, 0x66, 0xCC)


async def test_complexity_and_xhigh_reach_the_api_only_for_models_that_take_them(rig: Rig) -> None:
    await rig.start_bot(IMAGE_MODEL=NEW_MODEL)
    fd = rig.discord
    prompt = "a clockwork city"
    h = await fd.inject_interaction(
        fd.slash("imagine", {"prompt": prompt, "complexity": "high", "quality": "xhigh", "size": "1024x1024"})
    )
    await h.wait_for(has_result, timeout=40)
    [req] = gens(rig)
    assert req["complexity"] == "high" and req["quality"] == "xhigh"
    await poll(lambda: job_rows(rig)[0]["status"] == "done")
    [job] = job_rows(rig)
    model = get_model(NEW_MODEL)
    assert job["cost_estimate"] == pytest.approx(
        model.estimate_cost(1, "1024x1024", "xhigh", prompt_chars=len(prompt), complexity="high")
    )
    assert job["output_tokens"] == model.estimate_output_tokens("1024x1024", "xhigh", complexity="high")
    await rig.stop_bot()

    # gpt-image-2 has neither: the options are not offered, and typed values are refused privately.
    await rig.start_bot(IMAGE_MODEL="gpt-image-2")
    imagine = next(c for c in fd.global_commands if c["name"] == "imagine")
    names = [o["name"] for o in imagine["options"]]
    assert "complexity" not in names and "frames" not in names
    fmt = next(o for o in imagine["options"] if o["name"] == "format")
    assert {c["value"] for c in fmt["choices"]} == {"png", "jpeg", "webp"}
    for options in ({"quality": "xhigh"}, {"format": "gif"}, {"format": "svg"}):
        h = await fd.inject_interaction(fd.slash("imagine", {"prompt": "x", **options}))
        await h.wait_for(lambda x: bool(x.callbacks), timeout=10)
        cb = h.callbacks[0]
        assert cb["type"] == 4 and cb["data"]["flags"] & EPHEMERAL, options
    assert len(gens(rig)) == 1  # nothing more reached the API
    assert len(job_rows(rig)) == 1  # and nothing was reserved


async def test_svg_with_count_and_frames_without_gif_are_refused_before_any_reservation(rig: Rig) -> None:
    await rig.start_bot(IMAGE_MODEL=NEW_MODEL)
    fd = rig.discord
    for options, words in (
        ({"format": "svg", "count": 2}, "SVG makes one image at a time"),
        ({"format": "png", "frames": 4}, "only apply to the GIF format"),
    ):
        h = await fd.inject_interaction(fd.slash("imagine", {"prompt": "x", **options}))
        await h.wait_for(lambda x: bool(x.callbacks), timeout=10)
        cb = h.callbacks[0]
        assert cb["type"] == 4 and cb["data"]["flags"] & EPHEMERAL and words in cb["data"]["content"], cb
    assert not rig.images.requests and not job_rows(rig)


# --- markup (scribbled edits) ---------------------------------------------------------------------------


def _photo(w: int = 320, h: int = 200) -> Image.Image:
    im = Image.new("RGB", (w, h))
    im.putdata([((x * 255) // w, (y * 255) // h, 128) for y in range(h) for x in range(w)])
    return im


def _png(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


async def test_scribble_reply_sends_a_markup_part_matching_the_drawn_pixels_and_no_mask(rig: Rig) -> None:
    from PIL import ImageDraw

    await rig.start_bot(IMAGE_MODEL=NEW_MODEL)
    fd = rig.discord
    photo = _photo()
    drawn = photo.copy()
    ImageDraw.Draw(drawn).ellipse((40, 40, 120, 120), outline=(255, 0, 0), width=6)  # a red circle
    ImageDraw.Draw(drawn).line((200, 150, 300, 60), fill=(255, 255, 0), width=5)  # a yellow arrow stroke
    original = fd.create_user_message("bob", "our garden", [fd.add_attachment(_png(photo), "garden.png", "image/png")])
    ask = fd.reply(
        "alice",
        f"<@{fd.bot_id}> put a tree where I circled",
        original,
        attachments=[fd.add_attachment(_png(drawn), "marked.png", "image/png")],
    )
    await fd.inject_message(ask)
    await fd.wait_for(lambda: any(results_of(m) for m in fd.bot_messages() if m.get("components")), timeout=30)
    [req] = [r for r in rig.images.requests if r.path.endswith("/images/edits")]
    assert [f.field for f in req.files] == ["image", "markup"]  # the original and the layer; no mask
    [image] = [f for f in req.files if f.field == "image"]
    [markup] = [f for f in req.files if f.field == "markup"]
    assert markup.content_type == "image/png"
    with Image.open(io.BytesIO(image.data)) as sent:
        assert sent.convert("RGB").tobytes() == photo.tobytes()
    with Image.open(io.BytesIO(markup.data)) as opened:
        layer = opened.convert("RGBA")
    assert layer.size == photo.size
    assert px(layer, (43, 80)) == (255, 0, 0, 255)  # the circle, in its colour
    assert px(layer, (250, 105)) == (255, 255, 0, 255)  # the arrow
    assert px(layer, (80, 80))[3] == 0 and px(layer, (5, 190))[3] == 0  # untouched: see-through
    opaque = layer.width * layer.height - layer.getchannel("A").histogram()[0]
    changed = ImageChops.difference(photo, drawn).convert("L").point(lambda v: 255 if v else 0)
    drawn_px = changed.histogram()[255]
    assert drawn_px <= opaque <= 3 * drawn_px  # the strokes (and their rim), nothing else
    # The fake service shows it used the marks: the result carries them.
    with Image.open(io.BytesIO(rig.images.results[-1])) as result:
        assert px(result.convert("RGB"), (43, 80)) == (255, 0, 0)


async def test_edit_markup_option_and_models_without_markup(rig: Rig) -> None:
    await rig.start_bot(IMAGE_MODEL=NEW_MODEL)
    fd = rig.discord
    edit = next(c for c in fd.global_commands if c["name"] == "edit")
    names = [o["name"] for o in edit["options"]]
    assert "markup" in names and "complexity" in names
    layer = Image.new("RGBA", (160, 100), (0, 0, 0, 0))
    layer.paste((0, 255, 0, 255), (10, 10, 40, 40))
    image_att = fd.add_attachment(_png(_photo()), "photo.png", "image/png")
    markup_att = fd.add_attachment(_png(layer), "marks.png", "image/png")
    h = await fd.inject_interaction(
        fd.slash("edit", {"prompt": "make the green box a door", "complexity": "low"},
                 attachments={"image": image_att, "markup": markup_att})
    )  # fmt: skip
    await h.wait_for(has_result, timeout=30)
    [req] = [r for r in rig.images.requests if r.path.endswith("/images/edits")]
    assert req.form["complexity"] == "low"
    [markup] = [f for f in req.files if f.field == "markup"]
    with Image.open(io.BytesIO(markup.data)) as m:
        assert m.size == (320, 200) and px(m.convert("RGBA"), (50, 50)) == (0, 255, 0, 255)
    # The layer is priced as an input image, before (estimate) and after (the reported usage).
    await poll(lambda: job_rows(rig)[0]["status"] == "done")
    [job] = job_rows(rig)
    model = get_model(NEW_MODEL)
    prompt = "make the green box a door"
    assert job["cost_estimate"] == pytest.approx(
        model.estimate_cost(1, "auto", "auto", prompt_chars=len(prompt), input_images=2, complexity="low")
    )
    assert job["input_tokens"] > 2 * 65  # both images' tokens reported
    text = job["input_tokens"] - 2 * input_image_tokens(320, 200)
    usage = Usage(job["input_tokens"], job["output_tokens"], input_text_tokens=text,
                  input_image_tokens=2 * input_image_tokens(320, 200))  # fmt: skip
    assert job["cost_actual"] == pytest.approx(model.cost_from_usage(usage), rel=1e-6)
    # With a mask as well: refused privately, nothing reserved.
    mask_att = fd.add_attachment(_png(Image.new("L", (320, 200), 255)), "mask.png", "image/png")
    both = await fd.inject_interaction(
        fd.slash("edit", {"prompt": "x"}, attachments={"image": image_att, "markup": markup_att, "mask": mask_att})
    )
    await both.wait_for(lambda x: bool(x.callbacks), timeout=10)
    assert both.callbacks[0]["data"]["flags"] & EPHEMERAL and "not both" in both.callbacks[0]["data"]["content"]
    await rig.stop_bot()

    # gpt-image-2.6 has no markup: /edit does not offer the option there.
    await rig.start_bot(IMAGE_MODEL="gpt-image-2.6-flare")
    edit = next(c for c in fd.global_commands if c["name"] == "edit")
    assert "markup" not in [o["name"] for o in edit["options"]]
    assert len(job_rows(rig)) == 1


# --- the /quota report chart ----------------------------------------------------------------------------


async def test_quota_report_carries_a_chart_in_both_languages(rig: Rig) -> None:
    from bot.imaging.chart import CARD

    await rig.start_bot()
    fd = rig.discord
    for user, count in (("alice", 2), ("bob", 1)):
        h = await fd.inject_interaction(fd.slash("imagine", {"prompt": "a kite", "count": count}, user=user))
        await h.wait_for(has_result, timeout=30)
    await poll(lambda: all(r["status"] == "done" for r in job_rows(rig)))

    charts = {}
    for locale in ("en-US", "zh-CN"):
        h = await fd.inject_interaction(fd.slash("quota", subcommand="report", user="mod", locale=locale))
        await h.wait_for(lambda x: x.original and len(x.original["attachments"]) == 2, timeout=20)
        [chart] = [a for a in h.msg["attachments"] if a["filename"].endswith(".png")]
        assert chart["filename"].startswith("imagebot-usage-")
        [embed] = h.msg["embeds"]
        assert embed["image"]["url"].endswith("/" + chart["filename"])  # shown in the embed
        assert ("Image usage this month" in embed["title"]) == (locale == "en-US")
        with Image.open(io.BytesIO(fd.cdn_bytes(chart))) as im:
            assert im.format == "PNG" and im.size == (1200, 760)
            charts[locale] = im.convert("RGB")
    en, zh = charts["en-US"], charts["zh-CN"]
    # Its own light card: the same on dark and light themes.
    assert px(en, (600, 460)) == CARD and px(zh, (600, 460)) == CARD
    # Same numbers (bars), other words: the title band differs, the plotted bars agree.
    assert en.crop((0, 0, 1200, 80)).tobytes() != zh.crop((0, 0, 1200, 80)).tobytes()
    assert en.crop((90, 130, 1090, 430)).tobytes() == zh.crop((90, 130, 1090, 430)).tobytes()
    bars = en.crop((90, 130, 1090, 430))
    green = sum(
        1 for x in range(0, bars.width, 2) for y in range(0, bars.height, 2) if px(bars, (x, y)) == (16, 163, 127)
    )
    assert green > 100  # today's bar is there (3 images)


# --- choosing the model ---------------------------------------------------------------------------------


async def _autocomplete(rig: Rig, command: str, option: str, typed: str, *, user: str = "alice") -> list[str]:
    fd = rig.discord
    payload = fd.slash(command, {"prompt": "x", option: typed}, user=user)
    payload["type"] = 4  # APPLICATION_COMMAND_AUTOCOMPLETE
    for o in payload["data"]["options"]:
        if o["name"] == option:
            o["focused"] = True
    h = await fd.inject_interaction(payload)
    await h.wait_for(lambda x: bool(x.callbacks), timeout=10)
    cb = h.callbacks[0]
    assert cb["type"] == 8, cb
    return [c["value"] for c in cb["data"]["choices"]]


async def test_moderators_choose_the_models_and_the_model_option_follows(rig: Rig) -> None:
    await rig.start_bot(IMAGE_MODEL="gpt-image-2", IMAGE_MODELS=f"{NEW_MODEL}, gpt-image-2.6-flare")
    fd = rig.discord
    imagine = next(c for c in fd.global_commands if c["name"] == "imagine")
    options = {o["name"]: o for o in imagine["options"]}
    assert options["model"].get("autocomplete") is True
    assert {"complexity", "frames"} <= set(options)  # what any configured model can do
    quota_cmd = next(c for c in fd.global_commands if c["name"] == "quota")
    assert "models" in [o["name"] for o in quota_cmd["options"]]

    # By default only IMAGE_MODEL: offered alone, and another model (or what it cannot do) is refused
    # privately before anything is reserved.
    assert await _autocomplete(rig, "imagine", "model", "") == ["gpt-image-2"]
    for opts, words in (
        ({"model": NEW_MODEL}, "isn't one of the models this server allows"),
        ({"format": "gif"}, "gpt-image-2 can't make GIF images"),
        ({"complexity": "high"}, "doesn't take a complexity setting"),
    ):
        h = await fd.inject_interaction(fd.slash("imagine", {"prompt": "a boat", **opts}))
        await h.wait_for(lambda x: bool(x.callbacks), timeout=10)
        cb = h.callbacks[0]
        assert cb["type"] == 4 and cb["data"]["flags"] & EPHEMERAL and words in cb["data"]["content"], cb
    # /edit offers markup (the 2.5 model reads it); with gpt-image-2 it is refused, naming the models that can.
    layer = Image.new("RGBA", (320, 200), (0, 0, 0, 0))
    layer.paste((255, 0, 0, 255), (10, 10, 30, 30))
    h = await fd.inject_interaction(
        fd.slash("edit", {"prompt": "a door here"}, attachments={
            "image": fd.add_attachment(_png(_photo()), "p.png", "image/png"),
            "markup": fd.add_attachment(_png(layer), "m.png", "image/png"),
        })
    )  # fmt: skip
    await h.wait_for(lambda x: bool(x.callbacks), timeout=10)
    cb = h.callbacks[0]
    assert cb["data"]["flags"] & EPHEMERAL
    assert "gpt-image-2 can't read a markup layer. Models that can: gpt-image-2.5-sunburst" in cb["data"]["content"]
    assert not rig.images.requests and not job_rows(rig)

    # A member is not a moderator; the moderator allows the 2.5 model.
    h = await fd.inject_interaction(fd.slash("quota", {"allow": NEW_MODEL}, subcommand="models", user="alice"))
    await h.wait_for(lambda x: bool(x.callbacks), timeout=10)
    assert h.callbacks[0]["data"]["flags"] & EPHEMERAL
    h = await fd.inject_interaction(fd.slash("quota", {"allow": NEW_MODEL}, subcommand="models", user="mod"))
    await h.wait_for(lambda x: bool(x.callbacks), timeout=10)
    assert f"`gpt-image-2`, `{NEW_MODEL}`" in h.callbacks[0]["data"]["content"]
    assert await _autocomplete(rig, "imagine", "model", "") == ["gpt-image-2", NEW_MODEL]
    assert await _autocomplete(rig, "imagine", "model", "2.5") == [NEW_MODEL]

    # The chosen model is used, with its own capabilities and prices.
    h = await fd.inject_interaction(
        fd.slash("imagine", {"prompt": "a boat", "model": NEW_MODEL, "quality": "xhigh", "size": "1024x1024"})
    )
    await h.wait_for(has_result, timeout=30)
    [req] = gens(rig)
    assert req["model"] == NEW_MODEL and req["quality"] == "xhigh"
    await poll(lambda: job_rows(rig)[0]["status"] == "done")
    [job] = job_rows(rig)
    assert job["model"] == NEW_MODEL
    assert job["cost_estimate"] == pytest.approx(
        get_model(NEW_MODEL).estimate_cost(1, "1024x1024", "xhigh", prompt_chars=len("a boat"))
    )
    embed = h.msg["embeds"][0]
    assert any(f["value"] == NEW_MODEL for f in embed["fields"])

    # Removing the default leaves the 2.5 model as the server's default; the last one cannot go.
    h = await fd.inject_interaction(fd.slash("quota", {"remove": "gpt-image-2"}, subcommand="models", user="mod"))
    await h.wait_for(lambda x: bool(x.callbacks), timeout=10)
    h = await fd.inject_interaction(fd.slash("quota", {"remove": NEW_MODEL}, subcommand="models", user="mod"))
    await h.wait_for(lambda x: bool(x.callbacks), timeout=10)
    assert "At least one model must stay allowed" in h.callbacks[0]["data"]["content"]
    h = await fd.inject_interaction(fd.slash("imagine", {"prompt": "a second boat"}))
    await h.wait_for(has_result, timeout=30)
    assert gens(rig)[-1]["model"] == NEW_MODEL
    audit = [r["action"] for r in db(rig, "SELECT action FROM audit_log ORDER BY id")]
    assert audit == ["set_models", "set_models"]


async def test_a_4k_size_is_offered_sent_priced_and_fitted_to_the_upload_limit(rig: Rig) -> None:
    rig.discord.upload_limit = 1_000_000
    await rig.start_bot(PARTIAL_IMAGES="0")
    fd = rig.discord
    imagine = next(c for c in fd.global_commands if c["name"] == "imagine")
    size = next(o for o in imagine["options"] if o["name"] == "size")
    assert {"name": "16:9 (3840x2160)", "value": "3840x2160"} in [
        {"name": c["name"], "value": c["value"]} for c in size["choices"]
    ]
    h = await fd.inject_interaction(fd.slash("imagine", {"prompt": "a wide valley", "size": "3840x2160"}))
    await h.wait_for(has_result, timeout=60)
    [req] = gens(rig)
    assert req["size"] == "3840x2160"
    [final] = final_files(h)
    data = fd.cdn_bytes(final)
    assert len(data) <= 1_000_000
    with Image.open(io.BytesIO(data)) as im:
        assert im.width / im.height == pytest.approx(16 / 9, rel=0.01)
    await poll(lambda: job_rows(rig)[0]["status"] == "done")
    [job] = job_rows(rig)
    model = get_model("gpt-image-2")
    assert job["cost_estimate"] == pytest.approx(
        model.estimate_cost(1, "3840x2160", "auto", prompt_chars=len("a wide valley"))
    )
    assert job["output_tokens"] == model.estimate_output_tokens("3840x2160", "medium")
