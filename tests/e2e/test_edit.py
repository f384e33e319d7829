"""End to end: editing images with the real bot process against the fake Discord and the fake Images API.

Replies that mention the bot (without the Message Content intent), ``/edit`` with a mask, the "Edit image"
message menu and the Edit button (a modal), Reroll of an edit (also after a restart), and every refusal of a
bad input: a short answer and no call to the Images API.
"""

from __future__ import annotations

import io
import random
import struct
import zlib
from typing import Any

from PIL import Image

from bot.demo.discord import FakeDiscord, InteractionHandle
from tests.conftest import Rig
from tests.helpers.e2e import EPHEMERAL, buttons, files_of, has_result, job_rows, poll, results_of

MESSAGE_CONTENT_INTENT = 1 << 15


# --- images -----------------------------------------------------------------------------------------


def pattern(w: int, h: int, seed: int = 1) -> Image.Image:
    """A distinctive picture, so a pixel comparison proves which image was sent."""
    rnd = random.Random(seed)
    im = Image.new("RGB", (w, h))
    cells = [(rnd.randrange(256), rnd.randrange(256), rnd.randrange(256)) for _ in range(64)]
    im.putdata([cells[(x * 8 // w) + 8 * (y * 8 // h)] for y in range(h) for x in range(w)])
    return im


def encode(im: Image.Image, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt)
    return buf.getvalue()


def decode(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


def same_pixels(a: bytes, b: bytes) -> bool:
    ia, ib = decode(a).convert("RGB"), decode(b).convert("RGB")
    return ia.size == ib.size and ia.tobytes() == ib.tobytes()


def bomb_png(w: int, h: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", w, h, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 256)) + chunk(b"IEND", b"")
    )


# --- helpers over the fakes ----------------------------------------------------------------------------


def answer_to(fd: FakeDiscord, message: dict[str, Any]) -> dict[str, Any] | None:
    """The bot's (latest state of its) reply to ``message``."""
    for m in fd.bot_messages():
        if (m.get("message_reference") or {}).get("message_id") == message["id"]:
            return m
    return None


async def wait_answer(fd: FakeDiscord, message: dict[str, Any], done: Any, timeout: float = 15) -> dict[str, Any]:  # noqa: ASYNC109
    def check() -> dict[str, Any] | None:
        m = answer_to(fd, message)
        return m if m is not None and done(m) else None

    return await fd.wait_for(check, timeout=timeout)


def finished(m: dict[str, Any]) -> bool:
    return bool(results_of(m)) and bool(m.get("components"))


def edit_requests(rig: Rig) -> list[Any]:
    return [r for r in rig.images.requests if r.path.endswith("/images/edits")]


def parts(req: Any, field: str) -> list[Any]:
    return [f for f in req.files if f.field == field]


def modal_fields(h: InteractionHandle) -> tuple[str, str]:
    """(modal custom_id, text input custom_id) of the modal the bot opened."""
    assert h.modal is not None, h
    text_input = h.modal["components"][0]["components"][0]
    return h.modal["custom_id"], text_input["custom_id"]


# --- replies --------------------------------------------------------------------------------------------


async def test_reply_edits_the_image_and_a_reply_to_the_result_edits_the_result(rig: Rig) -> None:
    rig.images.delay_between_events = 0.15  # so partial frames show up as previews
    await rig.start_bot()
    fd = rig.discord
    assert not (fd.intents or 0) & MESSAGE_CONTENT_INTENT  # the bot asks for no privileged intent

    photo_png = encode(pattern(96, 64))
    att = fd.add_attachment(photo_png, "beach.png", "image/png")
    photo = fd.create_user_message("bob", "sunset at the beach", [att])
    # Alice mentions the bot explicitly in her reply.
    ask = fd.reply("alice", f"<@{fd.bot_id}>  make it night time", photo, mention_bot=True)
    await fd.inject_message(ask)
    answer = await wait_answer(fd, ask, finished)

    # One multipart edit: the replied image (same pixels), the reply's text without the mention.
    (req,) = edit_requests(rig)
    assert req.form["prompt"] == "make it night time"
    assert req.form["model"] == "gpt-image-2" and req.form["stream"] == "true"
    (image,) = parts(req, "image")
    assert image.content_type == "image/png" and image.filename.endswith(".png")
    assert same_pixels(image.data, photo_png)
    assert not parts(req, "mask")

    # The answer replies to Alice's message without pinging anyone; frames first, then the result.
    assert answer["message_reference"]["message_id"] == ask["id"]
    history = fd.message_history[int(answer["id"])]
    previews = [m for m in history if any(a["filename"].startswith("preview") for a in files_of(m))]
    assert previews and "frame" in previews[0]["content"]
    (result,) = results_of(answer)
    assert fd.cdn_bytes(result) == rig.images.results[-1]
    assert set(buttons(answer)) == {"Reroll", "Edit", "Delete"}
    assert answer["embeds"][0]["title"] == "Edited image"
    await poll(lambda: job_rows(rig) and job_rows(rig)[0]["message_id"] == int(answer["id"]))
    first = job_rows(rig)[0]
    assert first["kind"] == "edit" and first["parent_job_id"] is None
    assert first["source_image_url"] == att["url"]

    # Iterate: a reply to the result (reply ping only, no @mention in the text) edits the result.
    again = fd.reply("alice", "now add falling snow", answer, mention_bot=True)
    assert f"<@{fd.bot_id}>" not in again["content"]
    await fd.inject_message(again)
    answer2 = await wait_answer(fd, again, finished)
    req2 = edit_requests(rig)[-1]
    assert req2.form["prompt"] == "now add falling snow"
    assert same_pixels(parts(req2, "image")[0].data, fd.cdn_bytes(result))
    await poll(lambda: len(job_rows(rig)) == 2 and job_rows(rig)[1]["message_id"] == int(answer2["id"]))
    second = job_rows(rig)[1]
    assert second["parent_job_id"] == first["id"]
    assert second["source_image_url"] == result["url"]

    # Several images in the replied-to message go out as image[], in order (the first is the masked one).
    pics = [encode(pattern(64, 64, seed)) for seed in (11, 12, 13)]
    atts = [fd.add_attachment(p, f"p{i}.png", "image/png") for i, p in enumerate(pics)]
    notes = fd.add_attachment(b"shopping list", "notes.txt", "text/plain")
    album = fd.create_user_message("bob", "", [atts[0], notes, atts[1], atts[2]])
    ask3 = fd.reply("alice", f"<@{fd.bot_id}> combine them into one poster", album, mention_bot=True)
    await fd.inject_message(ask3)
    await wait_answer(fd, ask3, finished)
    req3 = edit_requests(rig)[-1]
    sent = parts(req3, "image[]")
    assert len(sent) == 3 and not parts(req3, "image")
    assert all(same_pixels(s.data, p) for s, p in zip(sent, pics, strict=True))

    # A posted link: Discord's link preview (served by its media proxy) is the image.
    linked_png = encode(pattern(48, 48, seed=21))
    cdn = fd.add_attachment(linked_png, "linked.png", "image/png")  # stands in for the media proxy's copy
    preview = {"url": "https://example.com/linked.png", "proxy_url": cdn["proxy_url"], "width": 48, "height": 48}
    link = fd.create_user_message(
        "bob", "https://example.com/linked.png", embeds=[{"type": "image", "url": preview["url"], "thumbnail": preview}]
    )
    ask4 = fd.reply("alice", f"<@{fd.bot_id}> make it a watercolour", link, mention_bot=True)
    await fd.inject_message(ask4)
    await wait_answer(fd, ask4, finished)
    assert same_pixels(parts(edit_requests(rig)[-1], "image")[0].data, linked_png)


async def test_replies_that_cannot_be_edits_get_an_explanation_and_no_api_call(rig: Rig) -> None:
    await rig.start_bot(MAX_INPUT_MB="1", DEFAULT_DAILY_LIMIT="0")
    fd = rig.discord
    mention = f"<@{fd.bot_id}>"
    outside = {"url": "https://example.com/a.png", "proxy_url": "https://example.com/a.png", "width": 9, "height": 9}

    def photo_msg(data: bytes, name: str, ctype: str | None = "image/png") -> dict[str, Any]:
        return fd.create_user_message("bob", "", [fd.add_attachment(data, name, ctype)])

    good = photo_msg(encode(pattern(32, 32)), "ok.png")
    png = encode(pattern(200, 200))
    noise = Image.frombytes("RGB", (700, 700), random.Random(5).randbytes(700 * 700 * 3))
    # Refused from what Discord declares, before anything is reserved or downloaded.
    cases: list[tuple[dict[str, Any], str, str]] = [
        (good, mention, "What should I change"),  # no text
        (fd.create_user_message("bob", "just words"), f"{mention} make it blue", "no image"),
        (photo_msg(b"hello there", "notes.txt", "text/plain"), f"{mention} make it blue", "no image"),
        (photo_msg(b"", "empty.png"), f"{mention} make it blue", "empty"),
        (photo_msg(encode(noise), "huge.png"), f"{mention} make it blue", "the limit is 1 MB"),
        # a link preview not served by Discord is never fetched
        (
            fd.create_user_message("bob", "", embeds=[{"type": "image", "thumbnail": outside}]),
            f"{mention} x",
            "no image",
        ),
        # a good request from someone with no quota left: the answer explains instead of editing
        (good, f"{mention} make it blue", "turned off for you"),
    ]
    # Found out only by reading the file: downloaded after the reservation, so without quota they are
    # refused for the quota and never downloaded.
    late: list[tuple[dict[str, Any], str]] = [
        (photo_msg(b"this is not really a png", "fake.png"), "isn't an image"),
        (photo_msg(png[: len(png) // 2], "cut.png"), "damaged"),
        (photo_msg(bomb_png(30_000, 30_000), "bomb.png"), "too large"),
    ]
    asks = []
    for target, text, _ in cases:
        asks.append(await fd.inject_message(fd.reply("alice", text, target, mention_bot=True)))
    # A mention that is not a reply gets a hint; a reply that doesn't mention the bot gets nothing.
    hint = await fd.inject_message(fd.create_user_message("alice", f"{mention} hello", mention_bot=True))
    silent = await fd.inject_message(fd.reply("alice", "nice picture!", good, mention_bot=False))

    for ask, (_, _, expected) in zip(asks, cases, strict=True):
        answer = await wait_answer(fd, ask, lambda m, e=expected: e in m["content"])
        assert not answer["attachments"] and not answer["components"]
    for target, _ in late:  # one at a time: each is a job of its own (at most 3 at a time per member)
        ask = await fd.inject_message(fd.reply("alice", f"{mention} make it blue", target, mention_bot=True))
        answer = await wait_answer(fd, ask, lambda m: "turned off for you" in m["content"])
        assert not answer["attachments"] and not answer["components"]
    await wait_answer(fd, hint, lambda m: "reply to the message" in m["content"])
    # Barrier: a mention answered after the silent reply was read (messages are handled in order).
    barrier = await fd.inject_message(fd.create_user_message("alice", f"{mention} hello again", mention_bot=True))
    await wait_answer(fd, barrier, lambda m: "reply to the message" in m["content"])
    assert answer_to(fd, silent) is None
    assert not [r for r in fd.requests if r.path.startswith("/cdn/")]  # nothing was downloaded
    assert rig.images.requests == []
    assert job_rows(rig) == []  # nothing reserved, nothing charged

    # With quota, those files are downloaded after the reservation, refused, and the reservation given back.
    await rig.restart_bot(DEFAULT_DAILY_LIMIT=None)
    for target, expected in late:
        ask = await fd.inject_message(fd.reply("alice", f"{mention} make it blue", target, mention_bot=True))
        answer = await wait_answer(fd, ask, lambda m, e=expected: e in m["content"])
        assert answer["content"].startswith("❌") and not results_of(answer) and not answer["components"]
    await poll(lambda: len(job_rows(rig)) == 3 and all(r["status"] == "failed" for r in job_rows(rig)))
    assert [r["images_done"] for r in job_rows(rig)] == [0, 0, 0]
    assert rig.images.requests == []
    me = await fd.inject_interaction(fd.slash("quota", {}, subcommand="me"))
    await me.wait_for(lambda h: h.original is not None)
    assert "**Today**: 0 used" in me.msg["content"]


# --- /edit -------------------------------------------------------------------------------------------------


async def test_slash_edit_with_mask_and_its_refusals(rig: Rig) -> None:
    await rig.start_bot(MAX_INPUT_SIDE="256", MAX_INPUT_MB="1")
    fd = rig.discord
    edit = next(c for c in fd.global_commands if c["name"] == "edit")
    options = {o["name"]: o for o in edit["options"]}
    assert list(options) == ["image", "prompt", "mask", "size", "quality", "background", "format", "count"]
    assert options["image"]["type"] == 11 and options["image"]["required"] is True
    assert options["mask"]["type"] == 11 and not options["mask"].get("required")
    assert any(c["name"] == "Edit image" and c["type"] == 3 for c in fd.global_commands)

    # A 512×256 photo (downscaled to 256×128) and a black/white mask of another size (white = edit).
    photo = pattern(512, 256, seed=3)
    mask = Image.new("L", (100, 50), 0)
    mask.paste(255, (50, 0, 100, 50))
    image_att = fd.add_attachment(encode(photo, "JPEG"), "photo.jpg", "image/jpeg")
    mask_att = fd.add_attachment(encode(mask), "mask.png", "image/png")
    h = await fd.inject_interaction(
        fd.slash("edit", {"prompt": "a red balloon in the sky", "quality": "low", "format": "webp"},
                 attachments={"image": image_att, "mask": mask_att})
    )  # fmt: skip
    await h.wait_for(has_result, timeout=15)
    assert h.callback_types == [5]
    req = edit_requests(rig)[-1]
    assert req.form["prompt"] == "a red balloon in the sky"
    assert req.form["quality"] == "low" and req.form["output_format"] == "webp"
    (image,) = parts(req, "image")
    (mask_part,) = parts(req, "mask")
    sent = decode(image.data)
    assert image.content_type == "image/jpeg" and sent.size == (256, 128)
    m = decode(mask_part.data)
    assert mask_part.content_type == "image/png" and m.format == "PNG" and m.mode == "RGBA"
    assert m.size == sent.size
    assert m.getchannel("A").getpixel((200, 64)) == 0 and m.getchannel("A").getpixel((50, 64)) == 255
    assert results_of(h.original)[0]["filename"].endswith(".webp")

    # Refusals: all private, none reaches the Images API.
    before = len(rig.images.requests)
    text_att = fd.add_attachment(b"hello", "notes.txt", "text/plain")
    big = Image.frombytes("RGB", (700, 700), random.Random(7).randbytes(700 * 700 * 3))
    bad: list[tuple[dict[str, Any], dict[str, Any], str]] = [
        ({"prompt": "x"}, {"image": text_att}, "isn't an image"),
        ({"prompt": "x"}, {"image": fd.add_attachment(b"", "e.png", "image/png")}, "empty"),
        ({"prompt": "x"}, {"image": fd.add_attachment(encode(big), "big.png", "image/png")}, "limit is 1 MB"),
        ({"prompt": "x"}, {"image": image_att, "mask": text_att}, "The mask `notes.txt` isn't an image"),
        ({"prompt": "x", "background": "transparent", "format": "jpeg"}, {"image": image_att}, "JPEG"),
        ({"prompt": "   "}, {"image": image_att}, "what to change"),
    ]
    handles = [await fd.inject_interaction(fd.slash("edit", o, attachments=a)) for o, a, _ in bad]
    for hb, (_, _, expected) in zip(handles, bad, strict=True):
        await hb.wait_for(lambda x: x.callbacks, timeout=5)
        assert hb.callback_types == [4]  # answered before deferring
        data = hb.callbacks[0]["data"]
        assert data["flags"] & EPHEMERAL and expected in data["content"], data
    # These are only found out after downloading, which happens after the reservation: still one private
    # answer (the download is quick, so before the interaction had to be acknowledged), and refunded.
    late = [
        ({"image": fd.add_attachment(b"not an image at all", "x.png", "image/png")}, "isn't an image"),
        ({"image": fd.add_attachment(encode(pattern(100, 100))[:300], "cut.png", "image/png")}, "damaged"),
        ({"image": fd.add_attachment(bomb_png(30_000, 30_000), "bomb.png", "image/png")}, "too large"),
        ({"image": image_att, "mask": fd.add_attachment(b"nope", "m.png", "image/png")}, "The mask"),
    ]
    for a, expected in late:  # one at a time: each is a job of its own (at most 3 at a time per member)
        hb = await fd.inject_interaction(fd.slash("edit", {"prompt": "x"}, attachments=a))
        await hb.wait_for(lambda x: x.callbacks, timeout=5)
        assert hb.callback_types == [4] and hb.followups == []  # no public "thinking…" ever appeared
        data = hb.callbacks[0]["data"]
        assert data["flags"] & EPHEMERAL and expected in data["content"], data
    assert len(rig.images.requests) == before
    await poll(lambda: len(job_rows(rig)) == 1 + len(late) and job_rows(rig)[-1]["status"] != "reserved")
    assert [r["status"] for r in job_rows(rig)[1:]] == ["failed"] * len(late)


# --- the message menu, the Edit button, Reroll --------------------------------------------------------------


async def test_menu_and_edit_button_open_a_modal_and_reroll_reuses_the_input(rig: Rig) -> None:
    await rig.start_bot()
    fd = rig.discord
    photo_png = encode(pattern(80, 80, seed=9))
    photo = fd.create_user_message("bob", "", [fd.add_attachment(photo_png, "cat.png", "image/png")])

    # Right-click → Apps → Edit image: a modal; its submission runs the edit in the modal's response.
    menu = await fd.inject_interaction(fd.message_command("Edit image", photo))
    await menu.wait_for(lambda x: x.modal is not None, timeout=5)
    assert menu.callback_types == [9]
    modal_id, field_id = modal_fields(menu)
    sub = await fd.inject_interaction(fd.modal_submit(modal_id, {field_id: "give the cat a tiny hat"}))
    await sub.wait_for(has_result, timeout=15)
    req = edit_requests(rig)[-1]
    assert req.form["prompt"] == "give the cat a tiny hat"
    assert same_pixels(parts(req, "image")[0].data, photo_png)
    result_msg = sub.msg
    assert result_msg is not None
    (result,) = results_of(result_msg)

    # The Edit button on that result opens the same modal; submitting edits the result.
    edit_btn = await fd.inject_interaction(fd.button(buttons(result_msg)["Edit"], result_msg))
    await edit_btn.wait_for(lambda x: x.modal is not None, timeout=5)
    modal_id, field_id = modal_fields(edit_btn)
    sub2 = await fd.inject_interaction(fd.modal_submit(modal_id, {field_id: "make the hat blue"}, message=result_msg))
    await sub2.wait_for(has_result, timeout=15)
    req2 = edit_requests(rig)[-1]
    assert req2.form["prompt"] == "make the hat blue"
    assert same_pixels(parts(req2, "image")[0].data, fd.cdn_bytes(result))
    await poll(lambda: len(job_rows(rig)) == 2 and job_rows(rig)[1]["message_id"] is not None)
    rows = job_rows(rig)
    assert rows[1]["parent_job_id"] == rows[0]["id"]

    # Reroll of the second edit: the same input image again, the same parent.
    result2_msg = sub2.msg
    assert result2_msg is not None
    reroll = await fd.inject_interaction(fd.button(buttons(result2_msg)["Reroll"], result2_msg))
    await reroll.wait_for(has_result, timeout=15)
    req3 = edit_requests(rig)[-1]
    assert req3.form["prompt"] == "make the hat blue"
    assert same_pixels(parts(req3, "image")[0].data, fd.cdn_bytes(result))
    await poll(lambda: len(job_rows(rig)) == 3)
    assert job_rows(rig)[2]["parent_job_id"] == rows[0]["id"]

    # After a restart the inputs are fetched again from the parent result message.
    await rig.restart_bot()
    reroll2 = await fd.inject_interaction(fd.button(buttons(result2_msg)["Reroll"], result2_msg))
    await reroll2.wait_for(has_result, timeout=15)
    assert same_pixels(parts(edit_requests(rig)[-1], "image")[0].data, fd.cdn_bytes(result))

    # The first edit's source was a member's photo: after a restart it is fetched from its recorded URL...
    rerolls_before = len(edit_requests(rig))
    reroll3 = await fd.inject_interaction(fd.button(buttons(result_msg)["Reroll"], result_msg))
    await reroll3.wait_for(has_result, timeout=15)
    assert len(edit_requests(rig)) == rerolls_before + 1
    assert same_pixels(parts(edit_requests(rig)[-1], "image")[0].data, photo_png)
    # ...and once that file is gone from Discord, Reroll says so privately, with no API call.
    await rig.restart_bot()
    fd.cdn_files.clear()
    reroll4 = await fd.inject_interaction(fd.button(buttons(result_msg)["Reroll"], result_msg))
    await reroll4.wait_for(lambda x: x.callbacks, timeout=5)
    assert reroll4.callback_types == [4] and reroll4.callbacks[0]["data"]["flags"] & EPHEMERAL
    assert "deleted" in reroll4.callbacks[0]["data"]["content"]
    assert len(edit_requests(rig)) == rerolls_before + 1

    # Menu on a message without an image: a private note, no modal.
    words = fd.create_user_message("bob", "no pictures here")
    none = await fd.inject_interaction(fd.message_command("Edit image", words))
    await none.wait_for(lambda x: x.callbacks, timeout=5)
    assert none.callback_types == [4] and none.callbacks[0]["data"]["flags"] & EPHEMERAL
    assert "no image" in none.callbacks[0]["data"]["content"]


# --- small pure parts of the cog --------------------------------------------------------------------------


def test_media_hosts_and_input_cache() -> None:
    from bot.images_api.types import InputImage
    from bot.imaging.input_cache import EditInputs, InputCache
    from cogs.edit.sources import allowed_media_host

    assert allowed_media_host("https://cdn.discordapp.com/attachments/1/2/a.png?ex=1")
    assert allowed_media_host("https://images-ext-1.discordapp.net/external/x/https/example.com/a.png")
    assert allowed_media_host("https://media.discordapp.net/attachments/1/2/a.png")
    assert not allowed_media_host("https://example.com/a.png")
    assert not allowed_media_host("https://discordapp.net.evil.example/a.png")
    assert not allowed_media_host("file:///etc/passwd")
    assert allowed_media_host("http://127.0.0.1:5000/cdn/a.png", ("127.0.0.1",))

    cache = InputCache(max_bytes=2500, max_items=3)  # each entry costs its 100 bytes + ENTRY_OVERHEAD
    item = EditInputs((InputImage("a.png", b"x" * 100, "image/png"),))
    for job in (1, 2, 3):
        cache.put(job, item)
    assert cache.get(1) is None and cache.get(2) is item and cache.get(3) is item  # bytes bound: 2 fit
    cache.put(4, EditInputs((InputImage("b.png", b"x" * 3000, "image/png"),)))  # too big to keep at all
    assert cache.get(4) is None and cache.get(3) is item
