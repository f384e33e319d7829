"""End to end: the real bot process, a fake Discord and a fake Images API on 127.0.0.1.

Each test drives ``/imagine`` (and its buttons) the way Discord would and checks what the bot sent.
"""

from __future__ import annotations

import io
from typing import Any

from PIL import Image

from tests.helpers.e2e import EPHEMERAL, buttons, files_of, final_files, has_result, job_rows, poll
from tests.plugins.rig import Rig


async def test_imagine_streams_previews_then_posts_the_exact_image(rig: Rig) -> None:
    rig.images.delay_between_events = 0.15
    await rig.start_bot()
    fd = rig.discord

    # The commands synced carry the fixed option names, with choices the model supports.
    imagine = next(c for c in fd.global_commands if c["name"] == "imagine")
    options = {o["name"]: o for o in imagine["options"]}
    assert list(options) == ["prompt", "size", "quality", "background", "format", "count"]
    assert options["prompt"]["required"] is True
    assert {c["value"] for c in options["format"]["choices"]} == {"png", "jpeg", "webp"}
    assert any(c["value"] == "1536x1024" for c in options["size"]["choices"])
    assert options["count"]["min_value"] == 1 and options["count"]["max_value"] == 10

    h = await fd.inject_interaction(fd.slash("imagine", {"prompt": "a white siamese cat on a windowsill"}))
    await h.wait_for(has_result, timeout=20)

    assert h.callback_types == [5]  # deferred at once
    history = h.original_history
    previews = [m for m in history if any(a["filename"].startswith("preview") for a in files_of(m))]
    assert previews, "no preview frame was shown"
    assert "frame 1/2" in previews[0]["content"]
    preview_file = files_of(previews[0])[0]
    with Image.open(io.BytesIO(fd.cdn_bytes(preview_file))) as im:
        assert im.format == "JPEG" and max(im.size) <= 512  # a small preview, not the original

    # The final attachment is exactly what the API returned.
    [final] = final_files(h)
    assert fd.cdn_bytes(final) == rig.images.results[-1]
    embed = h.msg["embeds"][0]
    assert "siamese cat" in embed["description"]
    assert set(buttons(h.msg)) == {"Reroll", "Edit", "Delete"}

    # The API request was a streaming generation with the configured model.
    [req] = [r for r in rig.images.requests if r.path.endswith("/images/generations")]
    assert req.json["model"] == "gpt-image-2"
    assert req.json["stream"] is True and req.json["partial_images"] == 2
    assert req.json["prompt"] == "a white siamese cat on a windowsill"

    # The ledger recorded the job as done, with the message it produced and the real usage.
    # The message is recorded as soon as it is posted, the charge just after: wait for the charge.
    await poll(lambda: job_rows(rig)[0]["status"] == "done")
    [job] = job_rows(rig)
    assert job["images_done"] == 1
    assert job["message_id"] == int(h.msg["id"]) and job["output_tokens"] > 0 and job["cost_actual"] > 0


async def test_count_two_gives_two_images_with_a_slot_each(rig: Rig) -> None:
    await rig.start_bot()
    fd = rig.discord
    h = await fd.inject_interaction(fd.slash("imagine", {"prompt": "two foxes", "count": 2, "format": "webp"}))
    await h.wait_for(has_result, timeout=20)
    got = sorted(fd.cdn_bytes(a) for a in final_files(h))
    assert len(got) == 2
    assert got == sorted(rig.images.results[-2:])
    assert all(a["filename"].endswith(".webp") for a in final_files(h))
    gens = [r for r in rig.images.requests if r.path.endswith("/images/generations")]
    assert len(gens) == 2 and all(r.json["n"] == 1 and r.json["output_format"] == "webp" for r in gens)


async def test_reroll_and_delete_buttons_survive_a_restart(rig: Rig) -> None:
    await rig.start_bot()
    fd = rig.discord
    h = await fd.inject_interaction(
        fd.slash("imagine", {"prompt": "a lighthouse at dusk", "size": "1024x1024", "quality": "low"})
    )
    await h.wait_for(has_result, timeout=20)
    result = h.msg
    ids = buttons(result)

    await rig.restart_bot()  # buttons must keep working after the bot restarts

    reroll = await fd.inject_interaction(fd.button(ids["Reroll"], result, user="bob"))
    await reroll.wait_for(has_result, timeout=20)
    assert reroll.callback_types == [5]
    gens = [r for r in rig.images.requests if r.path.endswith("/images/generations")]
    assert len(gens) == 2
    assert gens[1].json["prompt"] == "a lighthouse at dusk"
    assert gens[1].json["size"] == "1024x1024" and gens[1].json["quality"] == "low"
    assert fd.cdn_bytes(final_files(reroll)[0]) == rig.images.results[-1] != rig.images.results[0]

    # The Edit button answers (a modal or a message), never "interaction failed".
    edit = await fd.inject_interaction(fd.button(ids["Edit"], result))
    await edit.wait_for(lambda x: x.callbacks, timeout=10)

    # Someone else (no Manage Messages) cannot delete alice's image...
    denied = await fd.inject_interaction(fd.button(ids["Delete"], result, user="bob"))
    await denied.wait_for(lambda x: x.callbacks, timeout=10)
    assert denied.callbacks[0]["type"] == 4 and denied.callbacks[0]["data"]["flags"] & EPHEMERAL
    assert int(result["id"]) in fd.messages
    # ...the requester can, and so can a moderator.
    own = await fd.inject_interaction(fd.button(ids["Delete"], result, user="alice"))
    await own.wait_for(lambda x: int(result["id"]) in fd.deleted_messages, timeout=10)
    mod = await fd.inject_interaction(fd.button(buttons(reroll.msg)["Delete"], reroll.msg, user="mod"))
    await mod.wait_for(lambda x: reroll.original_id in fd.deleted_messages, timeout=10)


async def test_bad_options_are_refused_privately_without_an_api_call(rig: Rig) -> None:
    await rig.start_bot()
    fd = rig.discord
    cases: list[dict[str, Any]] = [
        {"prompt": "a logo", "background": "transparent", "format": "jpeg"},
        {"prompt": "a logo", "size": "100x100"},
        {"prompt": "a logo", "quality": "ultra"},
        {"prompt": "a logo", "count": 11},
        {"prompt": "   "},
    ]
    for options in cases:
        h = await fd.inject_interaction(fd.slash("imagine", options))
        await h.wait_for(lambda x: x.callbacks, timeout=10)
        [cb] = h.callbacks
        assert cb["type"] == 4 and cb["data"]["flags"] & EPHEMERAL, options
        assert cb["data"]["content"], options
    assert rig.images.requests == []
    assert job_rows(rig) == []


async def test_long_prompt_with_mentions_is_truncated_and_never_pings(rig: Rig) -> None:
    await rig.start_bot(PARTIAL_IMAGES="0")  # the non-streaming path
    fd = rig.discord
    prompt = "@everyone <@&1> " + "a very detailed castle " * 260  # ~6000 characters
    h = await fd.inject_interaction(fd.slash("imagine", {"prompt": prompt[:6000]}))
    await h.wait_for(has_result, timeout=20)
    for message in h.original_history:
        assert len(message.get("content") or "") <= 2000
    req = rig.images.requests[-1]
    assert "stream" not in req.json and req.json["prompt"] == prompt[:6000].strip()
    # every edit carried allowed_mentions parse=[] (the rig fails the test otherwise)


async def test_safety_refusal_reads_kindly_and_is_not_charged(rig: Rig) -> None:
    await rig.start_bot()
    fd = rig.discord
    rig.images.moderation_block_next()
    h = await fd.inject_interaction(fd.slash("imagine", {"prompt": "something the safety system refuses"}))
    await h.wait_for(lambda x: x.original and "declined" in (x.original.get("content") or ""), timeout=20)
    assert "400" not in h.msg["content"]
    [job] = job_rows(rig)
    assert job["status"] == "blocked" and job["images_done"] == 0


async def test_preview_edits_ride_out_a_429(rig: Rig) -> None:
    await rig.start_bot()
    fd = rig.discord
    fd.rate_limit_next("PATCH", r"/webhooks/.*/messages/@original", retry_after=0.3)
    h = await fd.inject_interaction(fd.slash("imagine", {"prompt": "rain on a tin roof"}))
    await h.wait_for(has_result, timeout=20)
    assert fd.rate_limited_count == 1
    assert fd.cdn_bytes(final_files(h)[0]) == rig.images.results[-1]
