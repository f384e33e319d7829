"""Shards in the fake Discord: IDENTIFY's ``shard`` honoured, guilds and their events routed by
``(guild_id >> 22) % shard_count``, several sessions at once, ``GET /gateway/bot``'s recommended count."""

from __future__ import annotations

import asyncio
import sys

import aiohttp
import discord
import pytest

from bot.demo.discord import FakeDiscord
from bot.demo.discord.payloads import World, shard_of
from tests.helpers.dpy import dpy_client, seen, until
from tests.plugins.rig import Rig

MEMBERS = discord.Intents.default()
MEMBERS.members = True  # discord.py caches the members of GUILD_CREATE only with it


def interaction_frames(fd: FakeDiscord) -> list[dict[str, object]]:
    return [f for f in fd.gateway_events_sent if f["t"] == "INTERACTION_CREATE"]


def test_guilds_on_chosen_shards() -> None:
    w = World()
    made = [w.add_guild(f"g{i}", shard=(i % 4, 4)) for i in range(8)]
    assert [shard_of(g.id, 4) for g in made] == [0, 1, 2, 3, 0, 1, 2, 3]
    assert len({g.id for g in made}) == 8 and len(w.guilds) == 9
    assert {g.id for g in w.guilds_on_shard(2, 4)} >= {made[2].id, made[6].id}
    g = made[0]
    assert w.guild_of_channel(g.channel_ids[0]) == g.id
    assert g.roles["everyone"].id == g.id and g.roles["moderator"].id != w.roles["moderator"].id
    assert w.member_role_ids("mod", g.id) == [g.roles["moderator"].id]
    assert w.permissions_of("mod", g.id) == w.permissions_of("mod")
    with pytest.raises(ValueError):
        w.add_guild(guild_id=made[1].id)  # exists
    with pytest.raises(ValueError):
        w.add_guild(guild_id=made[0].id + (1 << 22), shard=(0, 4))  # next millisecond: shard 1


async def test_raw_identify_with_shard(fd: FakeDiscord) -> None:
    g1 = fd.add_guild("One", shard=(1, 2))
    on1 = {g.id for g in fd.world.guilds_on_shard(1, 2)}
    async with aiohttp.ClientSession() as s:
        async with s.ws_connect(fd.gateway_url) as ws:
            assert (await ws.receive_json())["op"] == 10
            await ws.send_json({"op": 2, "d": {"token": fd.token, "intents": 1, "properties": {}, "shard": [1, 2]}})
            ready = await ws.receive_json()
            assert ready["t"] == "READY" and ready["d"]["shard"] == [1, 2]
            assert {int(g["id"]) for g in ready["d"]["guilds"]} == on1
            creates = [await ws.receive_json() for _ in on1]
            assert {int(c["d"]["id"]) for c in creates} == on1 and all(c["t"] == "GUILD_CREATE" for c in creates)
            assert fd.shards_connected == [(1, 2)]
            assert [s.shard for s in fd.sessions_for(g1.id)] == [(1, 2)]
            assert fd.sessions_for(None) == []  # DMs go to shard 0, not connected
        for bad in ([2, 2], [0, 0], "x"):
            async with s.ws_connect(fd.gateway_url) as ws:
                await ws.receive_json()
                await ws.send_json({"op": 2, "d": {"token": fd.token, "intents": 1, "properties": {}, "shard": bad}})
                msg = await ws.receive()
                assert msg.type == aiohttp.WSMsgType.CLOSE and ws.close_code == 4010  # Invalid shard
        fd.recommended_shards = 4
        async with s.get(f"{fd.api_base}/gateway/bot", headers={"Authorization": f"Bot {fd.token}"}) as r:
            body = await r.json()
            assert body["shards"] == 4 and body["url"] == fd.gateway_url


async def test_two_clients_on_two_shards(fd: FakeDiscord) -> None:
    g0 = fd.add_guild("Zero", shard=(0, 2), channels=("general", "art"))
    g1 = fd.add_guild("One", shard=(1, 2))
    on0 = {g.id for g in fd.world.guilds_on_shard(0, 2)}
    on1 = {g.id for g in fd.world.guilds_on_shard(1, 2)}
    assert g0.id in on0 and g1.id in on1 and on0 | on1 == set(fd.world.guilds)
    async with (
        dpy_client(fd, shard_id=0, shard_count=2) as c0,
        dpy_client(fd, shard_id=1, shard_count=2, intents=MEMBERS) as c1,
    ):
        assert {g.id for g in c0.guilds} == on0 and {g.id for g in c1.guilds} == on1
        assert sorted(fd.shards_connected) == [(0, 2), (1, 2)]
        assert sorted(tuple(i["shard"]) for i in fd.identifies) == [(0, 2), (1, 2)]
        guild1 = c1.get_guild(g1.id)
        assert guild1 is not None and guild1.name == "One" and guild1.get_member(fd.users["alice"].id)
        mod = guild1.get_member(fd.users["mod"].id)
        assert mod is not None and [r.name for r in mod.roles if not r.is_default()] == ["Moderator"]

        # an interaction in a shard-1 guild reaches only the shard-1 session
        await fd.inject_interaction(fd.slash("ping", channel_id=g1.channel_ids[0], user="bob"))
        [got] = await until(lambda: seen(c1, "interaction"))
        assert got.guild_id == g1.id and got.channel_id == g1.channel_ids[0] and got.user.id == fd.users["bob"].id
        assert seen(c0, "interaction") == [] and len(interaction_frames(fd)) == 1

        # a message in a shard-0 guild reaches only the shard-0 session
        msg = fd.create_user_message("alice", "hi", channel_id=g0.channel_ids[1], mention_bot=True)
        assert msg["guild_id"] == str(g0.id)
        await fd.inject_message(msg)
        [m] = await until(lambda: seen(c0, "message"))
        assert m.guild is not None and m.guild.id == g0.id and m.content == "hi"
        assert seen(c1, "message") == []

        # the bot answers through REST in its own guild's channel
        channel = c1.get_channel(g1.channel_ids[0])
        assert isinstance(channel, discord.TextChannel)
        sent = await channel.send("from shard 1")
        assert fd.messages[sent.id]["guild_id"] == str(g1.id)

        # RESUME keeps the shard
        await fd.drop_gateway(shard_id=1)
        await fd.wait_for(lambda: fd.resumes and len(fd.shards_connected) == 2, timeout=15)
        assert sorted(fd.shards_connected) == [(0, 2), (1, 2)] and len(fd.identifies) == 2
        await fd.inject_interaction(fd.slash("ping", channel_id=g1.channel_ids[0]))
        await until(lambda: len(seen(c1, "interaction")) == 2)
        assert seen(c0, "interaction") == []

        # a guild the bot joins later arrives on its shard only
        late = await fd.join_guild("Late", shard=(0, 2))
        await until(lambda: c0.get_guild(late.id))
        assert c1.get_guild(late.id) is None


async def test_autosharded_client_uses_recommended_count(fd: FakeDiscord) -> None:
    fd.recommended_shards = 3
    made = [fd.add_guild(f"g{i}", shard=(i, 3)) for i in range(3)]
    async with dpy_client(fd, sharded=True) as client:
        assert isinstance(client, discord.AutoShardedClient) and client.shard_count == 3
        assert sorted(fd.shards_connected) == [(0, 3), (1, 3), (2, 3)]
        assert fd.requests_to("GET", r"^/gateway/bot$")
        assert {g.id for g in client.guilds} == set(fd.world.guilds)
        assert all(g.shard_id == shard_of(g.id, 3) for g in client.guilds)
        await fd.inject_interaction(fd.slash("ping", channel_id=made[2].channel_ids[0]))
        [got] = await until(lambda: seen(client, "interaction"))
        assert got.guild_id == made[2].id
        assert len(interaction_frames(fd)) == 1  # one session got it, not three


async def test_two_bot_processes_on_one_fake(rig: Rig) -> None:
    """Two real bot processes (the minimal bot), one shard each, against one fake Discord."""
    fd = rig.discord
    guilds = {0: fd.add_guild("Zero", shard=(0, 2)), 1: fd.add_guild("One", shard=(1, 2))}
    rig.bot_command = [sys.executable, "-m", "tests.helpers.minimal_bot"]
    await rig.start_bot(MINIMAL_SHARD_ID="0", MINIMAL_SHARD_COUNT="2")
    env = {**rig.base_env(), "MINIMAL_SHARD_ID": "1", "MINIMAL_SHARD_COUNT": "2"}
    log_path = rig.tmp_path / "shard1.log"
    with log_path.open("wb") as log:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.helpers.minimal_bot", cwd=rig.workdir, env=env,
            stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        try:
            await fd.wait_for(lambda: sorted(fd.shards_connected) == [(0, 2), (1, 2)], timeout=20)
            for shard in (1, 0, 1):
                h = await fd.inject_interaction(fd.slash("ping", channel_id=guilds[shard].channel_ids[0]))
                await h.wait_for(lambda h: h.original is not None and h.original["attachments"])
                assert h.original is not None and h.original["content"] == f"pong from shard {shard}"
            # the primary guild is served by whichever shard Discord's formula names
            h = await fd.inject_interaction(fd.slash("ping"))
            await h.wait_for(lambda h: h.original is not None and h.original["attachments"])
            assert h.original is not None
            assert h.original["content"] == f"pong from shard {shard_of(fd.guild_id, 2)}"
            # a button on shard 1's message is handled by the shard-1 process
            msg = next(m for m in fd.bot_messages(guilds[1].channel_ids[0]) if m["components"])
            click = await fd.inject_interaction(fd.button("minimal:again", msg, user="bob"))
            await click.wait_for(lambda c: c.callbacks)
            assert fd.messages[int(msg["id"])]["content"] == "clicked by bob"
            assert len(interaction_frames(fd)) == 5  # each went to one session only
        finally:
            if proc.returncode is None:
                proc.terminate()
            await asyncio.wait_for(proc.wait(), 10)
    assert "Traceback" not in log_path.read_text(errors="replace")
