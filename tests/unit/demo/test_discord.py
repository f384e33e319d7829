"""Tests of the fake Discord itself, driven by a tiny unmodified discord.py bot (tests/helpers/minimal_bot.py)."""

from __future__ import annotations

import hashlib
import sys

import aiohttp
import pytest

from bot.demo.discord import FakeDiscord, validate_discord_body
from bot.demo.discord.payloads import MANAGE_GUILD, MANAGE_MESSAGES
from tests.helpers.minimal_bot import PNG
from tests.plugins.rig import Rig


@pytest.fixture
async def mini(rig: Rig) -> Rig:
    """The rig running the minimal bot instead of the product."""
    rig.bot_command = [sys.executable, "-m", "tests.helpers.minimal_bot"]
    await rig.start_bot(MINIMAL_GUILD_ID=str(rig.discord.guild_id))
    return rig


# ------------------------------------------------------------------------------------------- unit


def test_validator_accepts_discordpy_shapes() -> None:
    assert validate_discord_body("interaction_callback", {"type": 5}) == []
    assert validate_discord_body("interaction_callback", {"type": 4, "data": {"content": "hi"}}) == []
    body = {
        "content": "x",
        "allowed_mentions": {"parse": [], "users": [1500000000000000001]},
        "attachments": [{"id": 0, "filename": "a.png"}],
        "message_reference": {"message_id": 1500000000000000001, "fail_if_not_exists": False},
    }
    assert validate_discord_body("channel_message_create", body) == []


def test_validator_catches_bad_bodies() -> None:
    assert validate_discord_body("webhook_message_edit", {"content": "x" * 2001})
    assert validate_discord_body("interaction_callback", {"type": 42})
    assert validate_discord_body("webhook_message_edit", {"embeds": [{"description": "d" * 4097}]})
    assert validate_discord_body("channel_message_create", {"attachments": "nope"})
    assert validate_discord_body("global_commands_put", [{"description": "no name"}])


def test_world_permissions(fd: FakeDiscord) -> None:
    w = fd.world
    assert not w.permissions_of("alice") & (MANAGE_GUILD | MANAGE_MESSAGES)
    assert w.permissions_of("mod") & MANAGE_GUILD and w.permissions_of("mod") & MANAGE_MESSAGES
    p = fd.slash("imagine", {"prompt": "cat", "n": 2, "hd": True, "who": fd.users["bob"]}, user="mod")
    assert p["member"]["permissions"] == str(w.permissions_of("mod"))
    assert [o["type"] for o in p["data"]["options"]] == [3, 4, 5, 6]
    assert str(fd.users["bob"].id) in p["data"]["resolved"]["members"]
    sub = fd.slash("quota", {"user": fd.users["alice"]}, subcommand="set", group="admin")
    assert sub["data"]["options"][0]["type"] == 2 and sub["data"]["options"][0]["options"][0]["type"] == 1


# ---------------------------------------------------------------------------------- raw HTTP


async def test_rest_basics_without_a_bot(fd: FakeDiscord) -> None:
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{fd.api_base}/users/@me", headers={"Authorization": "Bot wrong"}) as r:
            assert r.status == 401
            assert r.headers["Content-Type"] == "application/json"
        async with s.get(f"{fd.api_base}/users/@me", headers={"Authorization": f"Bot {fd.token}"}) as r:
            assert r.status == 200 and (await r.json())["id"] == str(fd.bot_id)
        async with s.get(f"{fd.api_base}/nope/123") as r:
            assert r.status == 404 and r.headers["Content-Type"] == "application/json"
    assert [r.path for r in fd.unknown_routes] == ["/nope/123"]
    att = fd.add_attachment(PNG, "in.png", "image/png")
    assert (att["width"], att["height"]) == (2, 2)
    async with aiohttp.ClientSession() as s, s.get(att["url"]) as r:
        assert r.status == 200 and await r.read() == PNG


async def test_invalid_body_is_recorded_and_rejected(fd: FakeDiscord) -> None:
    h = fd.register_interaction(fd.slash("ping"))
    url = f"{fd.api_base}/interactions/{h.id}/{h.token}/callback"
    async with aiohttp.ClientSession() as s:
        async with s.post(url, json={"type": 4, "data": {"content": "x" * 2500}}) as r:
            assert r.status == 400 and (await r.json())["code"] == 50035
        assert fd.validation_errors and "interaction_callback" in fd.validation_errors[0]
        assert len(fd.mention_violations) == 0  # rejected before the mention check
        async with s.post(url, json={"type": 4, "data": {"content": "@everyone hi"}}) as r:
            assert r.status == 200
    assert fd.mention_violations and fd.mention_violations[0]["content"] == "@everyone hi"
    assert h.original is not None and h.original["content"] == "@everyone hi"
    fd.validation_errors.clear()  # provoked on purpose
    fd.mention_violations.clear()


async def test_webhook_bucket_and_token_expiry(fd: FakeDiscord) -> None:
    fd.enforce_webhook_limits(limit=2, per=5.0)
    h = fd.register_interaction(fd.slash("ping"))
    base = f"{fd.api_base}/webhooks/{fd.application_id}/{h.token}/messages/@original"
    body = {"content": "x", "allowed_mentions": {"parse": []}}
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{fd.api_base}/interactions/{h.id}/{h.token}/callback", json={"type": 5}) as r:
            assert (await r.json())["interaction"]["response_message_loading"] is True
        statuses = []
        for _ in range(3):
            async with s.patch(base, json=body) as r:
                statuses.append((r.status, r.headers.get("X-RateLimit-Remaining"), r.headers.get("Via")))
        assert statuses == [(200, "1", None), (200, "0", None), (429, "0", "1.1 google")]
        fd.enforce_webhook_limits(None)
        h.expire()
        async with s.patch(base, json=body) as r:
            assert r.status == 401 and (await r.json())["code"] == 50027
    assert fd.rate_limited_count == 1


# ----------------------------------------------------------------------------- minimal bot e2e


async def test_login_identify_and_sync(mini: Rig) -> None:
    fd = mini.discord
    assert fd.identify_payload is not None and fd.identify_payload["token"] == fd.token
    assert isinstance(fd.intents, int) and fd.intents & 1  # GUILDS
    paths = [r.path for r in fd.requests if r.status == 200]
    assert "/users/@me" in paths and "/oauth2/applications/@me" in paths
    names = {"ping", "echo", "ask", "Count attachments"}
    assert {c["name"] for c in fd.global_commands} == names
    assert {c["name"] for c in fd.guild_commands} == names
    assert fd.validation_errors == []


async def test_slash_defer_edit_with_file_and_button(mini: Rig) -> None:
    fd = mini.discord
    h = await fd.inject_interaction(fd.slash("ping"))
    await h.wait_for(lambda h: h.original is not None and h.original["attachments"])
    assert h.callback_types == [5]
    patch = fd.edits_of(h.token)[-1]
    assert patch.path.endswith("/messages/@original")
    assert [(f.filename, f.data) for f in patch.files] == [("pong.png", PNG)]
    assert patch.json["allowed_mentions"]["parse"] == []
    msg = h.msg
    assert msg["content"] == "pong" and not msg["flags"] & 128
    att = msg["attachments"][0]
    assert att["url"].startswith(fd.base_url) and att["size"] == len(PNG) and att["width"] == 2
    assert att["content_type"] == "image/png"  # sniffed, discord.py uploads as octet-stream
    async with aiohttp.ClientSession() as s:
        for url in (att["url"], att["proxy_url"]):
            async with s.get(url) as r:
                assert r.status == 200 and await r.read() == PNG
    assert msg["interaction_metadata"]["user"]["id"] == str(fd.users["alice"].id)
    # the persistent button on that message
    click = await fd.inject_interaction(fd.button("minimal:again", msg, user="bob"))
    await click.wait_for(lambda c: c.callbacks)
    assert click.callback_types == [7]
    assert fd.messages[int(msg["id"])]["content"] == "clicked by bob"


async def test_429_is_retried_after_retry_after(mini: Rig) -> None:
    fd = mini.discord
    fd.rate_limit_next("PATCH", r"/messages/@original$", retry_after=0.3)
    h = await fd.inject_interaction(fd.slash("ping"))
    await h.wait_for(lambda h: h.original is not None and h.original["attachments"])
    patches = [r for r in h.requests if r.method == "PATCH"]
    assert [p.status for p in patches] == [429, 200]
    assert patches[1].time - patches[0].time >= 0.3
    assert patches[1].files[0].data == PNG  # the file is re-sent
    assert fd.rate_limited_count == 1


async def test_attachment_option_and_reply(mini: Rig) -> None:
    fd = mini.discord
    data = b"hello attachment" * 100
    att = fd.add_attachment(data, "blob.bin", "application/octet-stream")
    h = await fd.inject_interaction(fd.slash("echo", {"file": att}))
    await h.wait_for(lambda h: h.original is not None)
    digest = hashlib.sha256(data).hexdigest()[:12]
    assert h.msg["content"] == f"blob.bin: {len(data)} bytes sha256:{digest}"
    assert h.callback_types == [4]

    image = fd.create_user_message("alice", "look", attachments=[fd.add_attachment(PNG, "x.png", "image/png")])
    reply = fd.reply("bob", "make it blue", image)
    await fd.inject_message(reply)
    req = await fd.wait_for_request(lambda r: r.method == "POST" and r.path.endswith("/messages"))
    assert req.json["message_reference"]["message_id"] in (reply["id"], int(reply["id"]))
    answer = fd.messages[int(req.response["id"])]
    assert answer["content"] == f"echo: make it blue ({len(PNG)} bytes)"
    assert answer["referenced_message"]["id"] == reply["id"]


async def test_modal_roundtrip(mini: Rig) -> None:
    fd = mini.discord
    h = await fd.inject_interaction(fd.slash("ask"))
    await h.wait_for(lambda h: h.modal is not None)
    assert h.callback_types == [9] and h.modal is not None and h.modal["custom_id"] == "minimal:ask"
    sub = await fd.inject_interaction(fd.modal_submit("minimal:ask", {"question": "why?"}))
    await sub.wait_for(lambda s: s.original is not None)
    assert sub.msg["content"] == "you asked: why?"


async def test_gateway_resume_after_disconnect(mini: Rig) -> None:
    fd = mini.discord
    await fd.drop_gateway(code=4000)
    await fd.wait_for(lambda: fd.resumes and fd._live_sessions(), timeout=15)
    h = await fd.inject_interaction(fd.slash("ping"))
    await h.wait_for(lambda h: h.original is not None and h.original["attachments"])
    assert len(fd.identifies) == 1


async def test_restart_reidentifies(mini: Rig) -> None:
    fd = mini.discord
    await mini.restart_bot()
    assert len(fd.identifies) == 2
    assert mini.returncodes and mini.returncodes[0] in (0, -15)


async def test_message_command(mini: Rig) -> None:
    fd = mini.discord
    target = fd.create_user_message("bob", "two files", attachments=[
        fd.add_attachment(PNG, "a.png"), fd.add_attachment(b"x", "b.txt", "text/plain"),
    ])  # fmt: skip
    h = await fd.inject_interaction(fd.message_command("Count attachments", target))
    await h.wait_for(lambda h: h.original is not None)
    assert h.msg["content"] == "2 attachment(s)" and h.msg["flags"] & 64


def test_message_content_intent_blanking(fd: FakeDiscord) -> None:
    plain = fd.create_user_message("alice", "secret", attachments=[fd.add_attachment(PNG, "p.png")])
    assert fd.visible_to_bot(plain, intents=0)["content"] == ""
    assert fd.visible_to_bot(plain, intents=1 << 15)["content"] == "secret"
    pinged = fd.reply("alice", "hey", plain, mention_bot=True)
    assert fd.visible_to_bot(pinged, intents=0)["content"] == "hey"
