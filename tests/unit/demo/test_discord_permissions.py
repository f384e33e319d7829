"""The bot's channel permissions in the fake Discord: one overwrite seen alike by the interaction's
``app_permissions``, discord.py's ``permissions_for(guild.me)`` (GUILD_CREATE and CHANNEL_UPDATE) and REST."""

from __future__ import annotations

import io
import json

import aiohttp
import discord
import pytest

from bot.demo.discord import FakeDiscord
from bot.demo.discord.payloads import (
    ATTACH_FILES,
    EMBED_LINKS,
    READ_MESSAGE_HISTORY,
    SEND_MESSAGES,
    VIEW_CHANNEL,
    permission_bits,
)
from tests.helpers.dpy import RecordingClient, dpy_client, seen, until
from tests.helpers.minimal_bot import PNG
from tests.unit.demo.test_discord_faults import BODY, deferred, multipart, original_url

MEMBERS = discord.Intents.default()
MEMBERS.members = True


def me_in(client: RecordingClient, channel_id: int) -> discord.Permissions:
    channel = client.get_channel(channel_id)
    assert isinstance(channel, discord.TextChannel)
    return channel.permissions_for(channel.guild.me)


async def app_permissions(fd: FakeDiscord, client: RecordingClient, channel_id: int) -> discord.Permissions:
    before = len(seen(client, "interaction"))
    await fd.inject_interaction(fd.slash("ping", channel_id=channel_id))
    interactions = await until(lambda: seen(client, "interaction")[before:])
    return interactions[0].app_permissions


def test_permission_arithmetic(fd: FakeDiscord) -> None:
    assert permission_bits({"ATTACH_FILES", "embed links"}) == ATTACH_FILES | EMBED_LINKS
    assert permission_bits(SEND_MESSAGES) == SEND_MESSAGES
    with pytest.raises(KeyError):
        permission_bits("FLY")
    w = fd.world
    everything = fd.bot_permissions(fd.channel_id)
    assert everything == w.permissions_of("bot")
    ch = w.channels[fd.channel_id]
    ch["permission_overwrites"] = [{"id": str(fd.bot_id), "type": 1, "allow": "0", "deny": str(SEND_MESSAGES)}]
    # no Send Messages also takes embeds and files away, as discord.py's permissions_for does
    assert not fd.bot_permissions(fd.channel_id) & (SEND_MESSAGES | EMBED_LINKS | ATTACH_FILES)
    ch["permission_overwrites"] = [{"id": str(fd.guild_id), "type": 0, "allow": "0", "deny": str(VIEW_CHANNEL)}]
    assert fd.bot_permissions(fd.channel_id) == 0 and w.permissions_in("alice", fd.channel_id) == 0
    assert fd.bot_permissions(fd.other_channel_id) == everything


async def test_overwrite_before_connect_reaches_gateway_and_interactions(fd: FakeDiscord) -> None:
    await fd.set_bot_permissions(fd.other_channel_id, deny={"ATTACH_FILES"})
    async with dpy_client(fd) as client:
        perms = me_in(client, fd.other_channel_id)
        assert perms.send_messages and perms.view_channel and not perms.attach_files
        assert me_in(client, fd.channel_id).attach_files
        app = await app_permissions(fd, client, fd.other_channel_id)
        assert app == perms
        assert (await app_permissions(fd, client, fd.channel_id)) == me_in(client, fd.channel_id)


async def test_change_after_start_sends_channel_update(fd: FakeDiscord) -> None:
    async with dpy_client(fd) as client:
        assert me_in(client, fd.channel_id).attach_files
        await fd.set_bot_permissions(fd.channel_id, deny={"ATTACH_FILES", "EMBED_LINKS"})
        await until(lambda: seen(client, "channel_update"))
        perms = me_in(client, fd.channel_id)
        assert not perms.attach_files and not perms.embed_links and perms.send_messages
        assert (await app_permissions(fd, client, fd.channel_id)) == perms
        await fd.set_bot_permissions(fd.channel_id)  # back to the default
        await until(lambda: len(seen(client, "channel_update")) == 2)
        assert me_in(client, fd.channel_id).attach_files
        assert fd.world.channels[fd.channel_id]["permission_overwrites"] == []


async def test_rest_enforces_channel_permissions(fd: FakeDiscord) -> None:
    async with dpy_client(fd) as client:
        channel = client.get_channel(fd.channel_id)
        assert isinstance(channel, discord.TextChannel)
        earlier = await channel.send("earlier")

        await fd.set_bot_permissions(fd.channel_id, deny={"ATTACH_FILES"})
        with pytest.raises(discord.Forbidden) as no_files:
            await channel.send("img", file=discord.File(io.BytesIO(PNG), "a.png"))
        assert no_files.value.code == 50013
        with pytest.raises(discord.Forbidden):
            await earlier.edit(attachments=[discord.File(io.BytesIO(PNG), "a.png")])
        await channel.send("text is fine")
        await earlier.edit(content="edit without files is fine")

        await fd.set_bot_permissions(fd.channel_id, deny=SEND_MESSAGES)
        with pytest.raises(discord.Forbidden) as no_send:
            await channel.send("hi")
        assert no_send.value.code == 50013
        await earlier.edit(content="editing needs no Send Messages")

        await fd.set_bot_permissions(fd.channel_id, deny={"READ_MESSAGE_HISTORY"})
        with pytest.raises(discord.Forbidden) as no_history:
            await channel.fetch_message(earlier.id)
        assert no_history.value.code == 50013
        assert [m async for m in channel.history(limit=5)] == []  # Discord returns no messages
        with pytest.raises(discord.Forbidden):
            await channel.send("a reply", reference=earlier)  # replying needs Read Message History

        await fd.set_bot_permissions(fd.channel_id, deny={"VIEW_CHANNEL"})
        with pytest.raises(discord.Forbidden) as no_view:
            await channel.send("hi")
        assert no_view.value.code == 50001  # Missing Access
        with pytest.raises(discord.Forbidden):
            await earlier.delete()

        await fd.set_bot_permissions(fd.channel_id)
        assert (await channel.fetch_message(earlier.id)).content == "editing needs no Send Messages"
        await channel.send("all back", file=discord.File(io.BytesIO(PNG), "a.png"))


async def test_interaction_responses_need_attach_files_only_for_files(fd: FakeDiscord) -> None:
    await fd.set_bot_permissions(fd.channel_id, deny={"ATTACH_FILES", "SEND_MESSAGES", "READ_MESSAGE_HISTORY"})
    assert not fd.bot_permissions(fd.channel_id) & (ATTACH_FILES | READ_MESSAGE_HISTORY)
    async with aiohttp.ClientSession() as s:
        h = await deferred(fd, s)  # the callback itself needs no permission
        assert int(h.payload["app_permissions"]) == fd.bot_permissions(fd.channel_id)
        async with s.patch(original_url(fd, h), json=BODY) as r:
            assert r.status == 200  # "the bot may edit the message ..."
        async with s.patch(original_url(fd, h), data=multipart(BODY)) as r:
            assert r.status == 403 and (await r.json())["code"] == 50013  # "... but not attach files"
        async with s.post(f"{fd.api_base}/webhooks/{fd.application_id}/{h.token}?wait=1", data=multipart(BODY)) as r:
            assert r.status == 403 and (await r.json())["code"] == 50013
        async with s.post(f"{fd.api_base}/webhooks/{fd.application_id}/{h.token}?wait=1", json=BODY) as r:
            assert r.status == 200
        other = fd.register_interaction(fd.slash("ping"))
        url = f"{fd.api_base}/interactions/{other.id}/{other.token}/callback"
        form = aiohttp.FormData()
        data = {**BODY, "attachments": [{"id": 0, "filename": "a.png"}]}
        form.add_field("payload_json", json.dumps({"type": 4, "data": data}), content_type="application/json")
        form.add_field("files[0]", PNG, filename="a.png", content_type="application/octet-stream")
        async with s.post(url, data=form) as r:
            assert r.status == 403 and (await r.json())["code"] == 50013
    assert h.original is not None and not h.original["attachments"]


async def test_member_permissions_follow_overwrites(fd: FakeDiscord) -> None:
    await fd.set_permission_overwrite(fd.channel_id, fd.roles["artist"], allow={"MANAGE_MESSAGES"})
    await fd.set_permission_overwrite(fd.channel_id, fd.users["bob"], deny={"ATTACH_FILES"})
    async with dpy_client(fd, intents=MEMBERS) as client:
        await fd.inject_interaction(fd.slash("ping", user="alice"))
        await fd.inject_interaction(fd.slash("ping", user="alice", channel_id=fd.other_channel_id))
        await fd.inject_interaction(fd.slash("ping", user="bob"))
        here, there, bob = await until(lambda: len(seen(client, "interaction")) == 3 and seen(client, "interaction"))
        assert here.permissions.manage_messages and not there.permissions.manage_messages
        assert not bob.permissions.attach_files and bob.permissions.send_messages
        # discord.py computes the same from the gateway's data
        channel = client.get_channel(fd.channel_id)
        assert isinstance(channel, discord.TextChannel)
        for who, interaction in (("alice", here), ("bob", bob)):
            member = channel.guild.get_member(fd.users[who].id)
            assert member is not None and channel.permissions_for(member) == interaction.permissions


async def test_embeds_without_embed_links(fd: FakeDiscord) -> None:
    await fd.set_bot_permissions(fd.channel_id, deny={"EMBED_LINKS"})
    async with dpy_client(fd) as client:
        channel = client.get_channel(fd.channel_id)
        assert isinstance(channel, discord.TextChannel)
        embed = discord.Embed(description="a result")
        with pytest.raises(discord.Forbidden) as refused:
            await channel.send(embed=embed)  # nothing left to send
        assert refused.value.code == 50013
        sent = await channel.send("text", embed=embed)
        assert sent.embeds == [] and fd.messages[sent.id]["embeds"] == []
        edited = await sent.edit(content="edited", embed=embed)
        assert edited.embeds == []
        other = client.get_channel(fd.other_channel_id)
        assert isinstance(other, discord.TextChannel)
        assert (await other.send("text", embed=embed)).embeds  # allowed elsewhere
    async with aiohttp.ClientSession() as s:  # interaction responses keep their embeds
        h = await deferred(fd, s)
        async with s.patch(original_url(fd, h), json={**BODY, "embeds": [{"description": "d"}]}) as r:
            assert r.status == 200 and (await r.json())["embeds"]
