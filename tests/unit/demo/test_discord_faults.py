"""Fault injection in the fake Discord (``fd.fail``), user deletions and expired tokens, over real HTTP and
with a real discord.py client."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import discord
import pytest

from bot.demo.discord import FakeDiscord, InteractionHandle
from tests.helpers.dpy import dpy_client, seen, until
from tests.helpers.minimal_bot import PNG

BODY = {"content": "x", "allowed_mentions": {"parse": []}}


def multipart(body: dict[str, Any], filename: str = "a.png") -> aiohttp.FormData:
    form = aiohttp.FormData()
    payload = {**body, "attachments": [{"id": 0, "filename": filename}]}
    form.add_field("payload_json", json.dumps(payload), content_type="application/json")
    form.add_field("files[0]", PNG, filename=filename, content_type="application/octet-stream")
    return form


async def deferred(fd: FakeDiscord, s: aiohttp.ClientSession, channel_id: int | None = None) -> InteractionHandle:
    h = fd.register_interaction(fd.slash("ping", channel_id=channel_id))
    async with s.post(f"{fd.api_base}/interactions/{h.id}/{h.token}/callback", json={"type": 5}) as r:
        assert r.status == 200
    return h


def original_url(fd: FakeDiscord, h: InteractionHandle) -> str:
    return f"{fd.api_base}/webhooks/{fd.application_id}/{h.token}/messages/@original"


async def test_fail_with_files_only_forever_then_removed(fd: FakeDiscord) -> None:
    rule = fd.fail("PATCH", r"/messages/@original$", 403, code=50013, message="Missing Permissions",
                   with_files=True, times=None)  # fmt: skip
    async with aiohttp.ClientSession() as s:
        h = await deferred(fd, s)
        url = original_url(fd, h)
        async with s.patch(url, json=BODY) as r:
            assert r.status == 200  # no files: not matched
        for _ in range(2):
            async with s.patch(url, data=multipart(BODY)) as r:
                assert r.status == 403 and r.headers["Content-Type"] == "application/json"
                assert await r.json() == {"code": 50013, "message": "Missing Permissions"}
        rule.remove()
        async with s.patch(url, data=multipart(BODY)) as r:
            assert r.status == 200
    assert rule.hits == 2 and not rule.active and rule.remaining is None
    patches = [r for r in h.requests if r.method == "PATCH"]
    assert [(p.status, bool(p.files)) for p in patches] == [(200, False), (403, True), (403, True), (200, True)]
    assert patches[1].fault is rule and patches[1].files[0].data == PNG  # recorded, files included
    assert h.original is not None and h.original["attachments"]  # only the last edit changed the message


async def test_fail_without_files_and_times(fd: FakeDiscord) -> None:
    rule = fd.fail("*", r"/messages/@original$", 404, code=10008, message="Unknown Message", with_files=False,
                   times=2)  # fmt: skip
    async with aiohttp.ClientSession() as s:
        h = await deferred(fd, s)
        url = original_url(fd, h)
        async with s.patch(url, data=multipart(BODY)) as r:
            assert r.status == 200  # files: not matched
        statuses = []
        for _ in range(3):
            async with s.patch(url, json=BODY) as r:
                statuses.append((r.status, (await r.json()).get("code")))
    assert statuses == [(404, 10008), (404, 10008), (200, None)]
    assert rule.hits == 2 and rule.remaining == 0 and not rule.active


async def test_fail_5xx_without_json_and_default_bodies(fd: FakeDiscord) -> None:
    fd.fail("POST", r"^/channels/\d+/messages$", 503)
    fd.fail("GET", r"^/channels/\d+$", 500, code=0, message="Internal Server Error")
    fd.fail("GET", r"^/users/@me$", 404)
    auth = {"Authorization": f"Bot {fd.token}"}
    async with aiohttp.ClientSession(headers=auth) as s:
        async with s.post(f"{fd.api_base}/channels/{fd.channel_id}/messages", json=BODY) as r:
            assert r.status == 503 and r.headers["Content-Type"].startswith("text/html")
            assert "503 Service Unavailable" in await r.text()
        async with s.post(f"{fd.api_base}/channels/{fd.channel_id}/messages", json=BODY) as r:
            assert r.status == 200  # times=1 by default
        async with s.get(f"{fd.api_base}/channels/{fd.channel_id}") as r:
            assert r.status == 500 and await r.json() == {"code": 0, "message": "Internal Server Error"}
        async with s.get(f"{fd.api_base}/users/@me") as r:
            assert r.status == 404 and await r.json() == {"code": 0, "message": "404: Not Found"}
    assert [r.status for r in fd.requests] == [503, 200, 500, 404]


async def test_fail_cdn_download(fd: FakeDiscord) -> None:
    att = fd.add_attachment(PNG, "in.png", "image/png")
    rule = fd.fail("GET", r"^/cdn/attachments/", 503)
    async with aiohttp.ClientSession() as s:
        async with s.get(att["url"]) as r:
            assert r.status == 503
        async with s.get(att["url"]) as r:
            assert r.status == 200 and await r.read() == PNG
    assert rule.hits == 1


async def test_discordpy_sees_discord_shaped_errors(fd: FakeDiscord) -> None:
    async with dpy_client(fd) as client:
        channel = client.get_channel(fd.channel_id)
        assert isinstance(channel, discord.TextChannel)
        fd.fail("POST", r"/messages$", 403, code=50013, message="Missing Permissions")
        with pytest.raises(discord.Forbidden) as forbidden:
            await channel.send("hi")
        assert forbidden.value.code == 50013 and forbidden.value.status == 403
        msg = await channel.send("hi")
        fd.fail("PATCH", rf"/messages/{msg.id}$", 404, code=10008, message="Unknown Message")
        with pytest.raises(discord.NotFound) as not_found:
            await msg.edit(content="edited")
        assert not_found.value.code == 10008
        # discord.py raises at once on a 503 (HTML body: no code) but retries a 502 after 1 s
        fd.fail("POST", r"/messages$", 503)
        with pytest.raises(discord.DiscordServerError) as unavailable:
            await channel.send("hi")
        assert unavailable.value.status == 503 and unavailable.value.code == 0
        rule = fd.fail("POST", r"/messages$", 502)
        await channel.send("after a 502")
        assert rule.hits == 1
        posts = fd.requests_to("POST", r"/messages$")
        assert [p.status for p in posts[-3:]] == [503, 502, 200]


async def test_user_deletes_messages(fd: FakeDiscord) -> None:
    async with dpy_client(fd) as client:
        channel = client.get_channel(fd.channel_id)
        assert isinstance(channel, discord.TextChannel)
        msg = await channel.send("progress")
        gone = await fd.delete_message(int(msg.id))
        assert gone["content"] == "progress" and int(msg.id) in fd.deleted_messages
        [event] = await until(lambda: seen(client, "raw_delete"))
        assert (event.message_id, event.channel_id, event.guild_id) == (msg.id, fd.channel_id, fd.guild_id)
        with pytest.raises(discord.NotFound) as not_found:
            await msg.edit(content="next frame")
        assert not_found.value.code == 10008

    async with aiohttp.ClientSession() as s:
        h = await deferred(fd, s)
        async with s.patch(original_url(fd, h), json=BODY) as r:
            assert r.status == 200
        assert h.original is not None
        await fd.delete_message(h.original)
        for send in (s.patch(original_url(fd, h), json=BODY), s.patch(original_url(fd, h), data=multipart(BODY))):
            async with send as r:
                assert r.status == 404 and (await r.json())["code"] == 10008  # not a token problem
        async with s.get(original_url(fd, h)) as r:
            assert r.status == 404 and (await r.json())["code"] == 10008
        # a follow-up still works: the token is fine
        async with s.post(f"{fd.api_base}/webhooks/{fd.application_id}/{h.token}?wait=true", json=BODY) as r:
            assert r.status == 200


async def test_expired_token_answers(fd: FakeDiscord) -> None:
    async with aiohttp.ClientSession() as s:
        h = await deferred(fd, s)
        h.expire()
        async with s.patch(original_url(fd, h), json=BODY) as r:
            assert r.status == 401 and (await r.json()) == {"message": "Invalid Webhook Token", "code": 50027}
        async with s.post(f"{fd.api_base}/webhooks/{fd.application_id}/{h.token}", json=BODY) as r:
            assert r.status == 401 and (await r.json())["code"] == 50027
        h.expire(unknown_webhook=True)
        async with s.patch(original_url(fd, h), json=BODY) as r:
            assert r.status == 404 and (await r.json()) == {"message": "Unknown Webhook", "code": 10015}
        fresh = fd.register_interaction(fd.slash("ping"))
        fresh.expire()
        async with s.post(f"{fd.api_base}/interactions/{fresh.id}/{fresh.token}/callback", json={"type": 5}) as r:
            assert r.status == 404 and (await r.json())["code"] == 10062
