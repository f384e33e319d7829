"""End to end: what members send cannot make the bot work for nothing, render Markdown under its name, or
break on a name. A blocked member's flood downloads nothing, a member's own flood is bounded, a Markdown
prompt shows as text, a display name ending in a backslash survives an edit reply."""

from __future__ import annotations

import asyncio
import io
from typing import Any

from PIL import Image

from bot.demo.discord import FakeDiscord
from bot.demo.discord.payloads import MESSAGE_REPLY
from bot.demo.discord.world import FakeUser
from tests.conftest import Rig
from tests.helpers.e2e import has_result, job_rows, poll


def png(seed: int = 1) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (seed * 40 % 256, 90, 200)).save(buf, "PNG")
    return buf.getvalue()


def cdn_gets(fd: FakeDiscord) -> list[Any]:
    return [r for r in fd.requests if r.path.startswith("/cdn/")]


def bot_replies_to(fd: FakeDiscord, message: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for m in fd.bot_messages() if (m.get("message_reference") or {}).get("message_id") == str(message["id"])]


async def test_a_flood_of_edits_from_a_blocked_member_downloads_nothing(rig: Rig) -> None:
    await rig.start_bot()
    fd = rig.discord
    block = await fd.inject_interaction(
        fd.slash("quota", {"user": fd.users["bob"], "daily": 0}, subcommand="set", user="mod")
    )
    await block.wait_for(lambda h: h.callbacks, timeout=10)
    photo = fd.create_user_message("alice", "a photo", [fd.add_attachment(png(), "photo.png", "image/png")])
    before = len(cdn_gets(fd))
    asks = [fd.reply("bob", f"<@{fd.bot_id}> make it night {i}", photo, mention_bot=True) for i in range(12)]
    slashes = [
        await fd.inject_interaction(
            fd.slash(
                "edit",
                {"prompt": f"make it day {i}"},
                attachments={"image": fd.add_attachment(png(i), f"p{i}.png", "image/png")},
                user="bob",
            )
        )
        for i in range(6)
    ]
    await asyncio.gather(*(fd.inject_message(a) for a in asks))

    # Each is refused before any download: blocked, or (while three refusals are in flight) one too many.
    words = ("turned off for you", "images in progress")

    def refused(ask: dict[str, Any]) -> bool:
        return any(w in (m.get("content") or "") for m in bot_replies_to(fd, ask) for w in words)

    await fd.wait_for(lambda: all(refused(a) for a in asks), timeout=20)
    for h in slashes:
        await h.wait_for(lambda h: any(w in str([h.original, h.callbacks, h.followups]) for w in words), timeout=15)
    assert cdn_gets(fd)[before:] == []  # not one of their files was fetched
    assert job_rows(rig) == [] and rig.images.requests == []


async def test_one_members_flood_is_prepared_a_few_at_a_time(rig: Rig) -> None:
    await rig.start_bot(MAX_QUEUE_PER_USER="2")
    fd = rig.discord
    photo = fd.create_user_message("alice", "a photo", [fd.add_attachment(png(), "photo.png", "image/png")])
    fd.cdn_hold = asyncio.Event()  # downloads wait: the preparations overlap
    asks = [fd.reply("bob", f"<@{fd.bot_id}> make it night {i}", photo, mention_bot=True) for i in range(8)]
    await asyncio.gather(*(fd.inject_message(a) for a in asks))
    busy = ("still preparing your other images", "images in progress")  # the input bound, or the job limit
    # bob's job limit (MAX_QUEUE_PER_USER=2 here) is also how many of his inputs are prepared at once.
    await fd.wait_for(
        lambda: sum(any(b in (m.get("content") or "") for m in bot_replies_to(fd, a) for b in busy) for a in asks) == 6
    )
    await fd.wait_for(lambda: fd.cdn_open == 2)  # bob's two places, held by downloads in progress
    assert fd.cdn_open_max == 2
    fd.cdn_hold.set()
    await poll(lambda: len([j for j in job_rows(rig) if j["status"] == "done"]) == 2, timeout=30)
    assert len(job_rows(rig)) == 2 and fd.cdn_open_max == 2


async def test_a_markdown_prompt_shows_as_text_in_the_result(rig: Rig) -> None:
    await rig.start_bot(PARTIAL_IMAGES="0")
    fd = rig.discord
    prompt = "# Free Nitro [claim](https://nitro.example/claim)\n  ## ||click|| **now** > `here`"
    h = await fd.inject_interaction(fd.slash("imagine", {"prompt": prompt}))
    await h.wait_for(has_result, timeout=25)
    description = h.original["embeds"][0]["description"]  # type: ignore[index]
    assert description == (
        "\\# Free Nitro \\[claim](https://nitro.example/claim)\n\\## \\|\\|click\\|\\| \\*\\*now\\*\\* > \\`here\\`"
    )
    assert rig.images.requests[0].json["prompt"] == prompt  # the service gets the prompt as written


async def test_a_display_name_ending_in_a_backslash_survives_an_edit_reply(rig: Rig) -> None:
    fd = rig.discord
    carol = FakeUser(id=5_000_000_000_000_000_42, username="carol", global_name="Carol \\1 \\")
    fd.users["carol"] = carol
    await rig.start_bot()
    photo = fd.create_user_message("alice", "a photo", [fd.add_attachment(png(), "photo.png", "image/png")])
    ask = fd.world.message_payload(
        message_id=fd.snowflakes.next(),
        channel_id=int(photo["channel_id"]),
        author="bob",
        content=f"<@{fd.bot_id}> give <@{carol.id}> a party hat",
        mentions=["bot", carol],
        message_type=MESSAGE_REPLY,
        reference=fd.messages[int(photo["id"])],
    )
    await fd.inject_message(ask)
    await fd.wait_for(lambda: any(m.get("attachments") for m in bot_replies_to(fd, ask)), timeout=25)
    [req] = [r for r in rig.images.requests if r.path.endswith("/edits")]
    assert req.form["prompt"] == "give @Carol \\1 \\ a party hat"
    assert "Traceback" not in rig.log_text()


async def test_a_link_preview_over_the_size_limit_is_refused(rig: Rig) -> None:
    await rig.start_bot(MAX_INPUT_MB="1")
    fd = rig.discord
    big = Image.effect_noise((1200, 1200), 100).convert("RGB")
    buf = io.BytesIO()
    big.save(buf, "PNG")
    assert len(buf.getvalue()) > 1024 * 1024
    cdn = fd.add_attachment(buf.getvalue(), "big.png", "image/png")  # the media proxy's copy of a linked image
    preview = {"url": "https://example.com/big.png", "proxy_url": cdn["proxy_url"], "width": 1200, "height": 1200}
    link = fd.create_user_message(
        "bob", "https://example.com/big.png", embeds=[{"type": "image", "url": preview["url"], "thumbnail": preview}]
    )
    ask = fd.reply("alice", f"<@{fd.bot_id}> make it a watercolour", link, mention_bot=True)
    await fd.inject_message(ask)
    await fd.wait_for(lambda: any("1 MB limit" in (m.get("content") or "") for m in bot_replies_to(fd, ask)))
    assert rig.images.requests == []
    await poll(lambda: [(j["status"], j["images_done"]) for j in job_rows(rig)] == [("failed", 0)])  # refunded
