"""End to end: two real bot processes on shards 0 and 1 of 2, one PostgreSQL database, one fake Discord.

Each process is ``python -m bot`` as in production (``SHARD_COUNT=2``, ``SHARD_IDS=0`` or ``1``,
``DATABASE_URL=postgresql://...``), with a short ``INSTANCE_LEASE_SECONDS`` so that a killed process's
jobs and slots come back within seconds. The fake Discord routes each server's events to the session of
its shard (``(guild_id >> 22) % 2``); the database is read directly to prove what changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from bot.demo.discord import FakeDiscord, InteractionHandle
from bot.demo.discord.world import FakeGuild
from tests.helpers import pgserver
from tests.helpers.e2e import buttons, has_result, poll
from tests.plugins.rig import REPO_ROOT, Rig

LEASE = "1.5"  # seconds: renewed every 0.5 s, a dead process's work comes back 1.5-2 s after


@dataclass
class Cluster:
    rig: Rig  # process 0 (shard 0) is the rig's own bot; process 1 is ``other``
    other: Rig
    url: str
    guilds: dict[int, FakeGuild]  # shard -> a server on it

    @property
    def fd(self) -> FakeDiscord:
        return self.rig.discord

    def env(self, shard: int, **extra: str) -> dict[str, Any]:
        return {
            "DATABASE_URL": self.url,
            "SHARD_COUNT": "2",
            "SHARD_IDS": str(shard),
            "INSTANCE_LEASE_SECONDS": LEASE,
            **extra,
        }

    async def start(self, **extra: str) -> None:
        """Process 0 syncs the commands; process 1, although told SYNC_COMMANDS=always, never does."""
        await self.rig.start_bot(**self.env(0, **extra))
        puts = len(self.fd.requests_to("PUT", r"/commands$"))
        await self.other.start_bot(wait=False, **self.env(1, **extra))
        await self.fd.wait_for(lambda: sorted(self.fd.shards_connected) == [(0, 2), (1, 2)], timeout=30)
        await self.other.wait_for_log("not syncing commands: the process serving shard 0 does", timeout=20)
        await self.other.wait_for_log("ready as", timeout=20)
        assert len(self.fd.requests_to("PUT", r"/commands$")) == puts

    async def rows(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(self.url)
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()

    async def jobs(self) -> list[asyncpg.Record]:
        return await self.rows("SELECT * FROM jobs ORDER BY id")

    async def imagine(self, shard: int, prompt: str, user: str = "alice", **options: Any) -> InteractionHandle:
        channel = self.guilds[shard].channel_ids[0]
        return await self.fd.inject_interaction(
            self.fd.slash("imagine", {"prompt": prompt, **options}, user=user, channel_id=channel)
        )

    async def quota_me(self, shard: int, user: str = "alice") -> str:
        channel = self.guilds[shard].channel_ids[0]
        h = await self.fd.inject_interaction(self.fd.slash("quota", subcommand="me", user=user, channel_id=channel))
        await h.wait_for(lambda x: x.callbacks, timeout=10)
        data = h.callbacks[0]["data"]
        parts = [data.get("content") or ""]
        for embed in data.get("embeds") or []:
            parts += [embed.get("description") or ""] + [
                f"{f['name']}: {f['value']}" for f in embed.get("fields") or []
            ]
        return "\n".join(parts)


@pytest.fixture
async def cluster(rig: Rig, tmp_path: Path) -> AsyncIterator[Cluster]:
    url = await pgserver.server().new_database()
    (tmp_path / "p1").mkdir()
    other = Rig(rig.discord, rig.images, rig.images_base, tmp_path / "p1")
    guilds = {0: rig.discord.add_guild("Zero", shard=(0, 2)), 1: rig.discord.add_guild("One", shard=(1, 2))}
    c = Cluster(rig, other, url, guilds)
    try:
        yield c
    finally:
        with contextlib.suppress(Exception):
            await other.stop_bot()
        other.close()
    log = other.log_text()
    if "Traceback" in log and not rig.allow_tracebacks:
        pytest.fail("Traceback in process 1's log\n" + other.log_tail(80), pytrace=False)


def today(text: str) -> str:
    [found] = [ln for ln in text.splitlines() if ln.startswith("**Today**")]
    return found


async def test_each_server_is_served_by_its_shard_and_the_usage_lives_in_the_shared_database(cluster: Cluster) -> None:
    c = cluster
    await c.start(DEFAULT_DAILY_LIMIT="4")
    # Results in a server of each shard, each made by the process serving that shard.
    h0 = await c.imagine(0, "a red fox", count=2)
    h1 = await c.imagine(1, "a blue whale")
    await h0.wait_for(has_result, timeout=30)
    await h1.wait_for(has_result, timeout=30)
    owners = {(r["guild_id"], r["owner"]) for r in await c.jobs()}
    assert owners == {(c.guilds[0].id, "shards-0"), (c.guilds[1].id, "shards-1")}

    # Reroll on each result: handled by the process that owns that server (through the shared database).
    for h in (h1, h0):
        msg = h.original or {}
        reroll = await c.fd.inject_interaction(c.fd.button(buttons(msg)["Reroll"], msg, user="alice"))
        await reroll.wait_for(has_result, timeout=30)
    await poll(lambda: all_settled(c), timeout=15)
    jobs = await c.jobs()
    assert [(r["guild_id"], r["owner"], r["prompt"], r["images_done"]) for r in jobs[2:]] == [
        (c.guilds[1].id, "shards-1", "a blue whale", 1),
        (c.guilds[0].id, "shards-0", "a red fox", 2),
    ]
    # A reply to the result in server One asks for an edit: process 1 receives it and makes it.
    ask = c.fd.reply("alice", f"<@{c.fd.bot_id}> make it night time", h1.original or {})
    await c.fd.inject_message(ask)

    def answer() -> dict[str, Any] | None:
        for m in c.fd.bot_messages(c.guilds[1].channel_ids[0]):
            if (m.get("message_reference") or {}).get("message_id") == ask["id"] and m.get("components"):
                return m
        return None

    await c.fd.wait_for(answer, timeout=30)
    await poll(lambda: all_settled(c), timeout=15)
    edit = (await c.jobs())[4]
    assert (edit["kind"], edit["guild_id"], edit["owner"]) == ("edit", c.guilds[1].id, "shards-1")
    whale = min(r["id"] for r in jobs if r["prompt"] == "a blue whale")  # h1's job (the two first ran at once)
    assert edit["parent_job_id"] == whale and edit["status"] == "done"
    assert "4 used" in today(await c.quota_me(0)) and "3 used" in today(await c.quota_me(1))

    # Process 0 stops; process 1 takes over both shards (as when a machine goes away): it sees the usage
    # process 0 recorded, and the limit holds (4 of 4 used in server Zero: one more is refused).
    await c.rig.stop_bot()
    await c.other.stop_bot()
    await c.other.start_bot(wait=False, **c.env(0, SHARD_IDS="0-1", DEFAULT_DAILY_LIMIT="4"))
    await c.other.wait_for_log("shards [0, 1] of 2", timeout=40)
    assert "4 used" in today(await c.quota_me(0)) and "**0** remaining" in today(await c.quota_me(0))
    refused = await c.imagine(0, "one more fox")
    await refused.wait_for(lambda x: x.callbacks, timeout=10)
    assert refused.callbacks[0]["type"] == 4 and "limit" in (refused.callbacks[0]["data"]["content"] or "").lower()
    assert len(await c.jobs()) == 5


async def test_a_persons_quota_used_in_a_shard_0_server_is_seen_in_a_shard_1_server(cluster: Cluster) -> None:
    # Servers' own limits are per server; the bot-wide cap (BOT_USER_DAILY_LIMIT) counts a person's images
    # in every server, whichever process serves it, through the shared database.
    c = cluster
    await c.start(BOT_USER_DAILY_LIMIT="2")
    h0 = await c.imagine(0, "a red fox", count=2)
    await h0.wait_for(has_result, timeout=30)
    await poll(lambda: all_settled(c), timeout=15)
    seen_by_1 = await c.quota_me(1)
    assert "0 used" in today(seen_by_1)  # server One's own count
    [everywhere] = [ln for ln in seen_by_1.splitlines() if ln.startswith("**Today in all servers**")]
    assert "2 used" in everywhere and "**0** remaining" in everywhere
    refused = await c.imagine(1, "a blue whale")
    await refused.wait_for(lambda x: x.callbacks, timeout=10)
    [cb] = refused.callbacks
    assert cb["type"] == 4 and cb["data"]["flags"] & 64  # private, and nothing public appeared
    assert "all the servers" in cb["data"]["content"]
    assert len(await c.jobs()) == 1 and len(c.rig.images.requests) == 2  # the fox pair only: no new call
    other = await c.imagine(1, "a blue whale", user="bob")  # someone else is not affected
    await other.wait_for(has_result, timeout=30)


async def all_settled(c: Cluster) -> bool:
    return all(r["status"] not in ("reserved", "running") for r in await c.jobs())


async def test_a_killed_process_job_is_refunded_by_its_sibling_whose_own_job_completes(cluster: Cluster) -> None:
    c = cluster
    await c.start()
    c.rig.images.hang_next(after_partials=1)  # process 0's stream shows one frame, then stalls
    h0 = await c.imagine(0, "a stalled sunrise")
    await h0.wait_for(lambda x: "frame 1/2" in ((x.original or {}).get("content") or ""), timeout=20)
    c.rig.images.delay_between_events = 1.0
    h1 = await c.imagine(1, "a slow sunset")
    await h1.wait_for(lambda x: "frame 1/2" in ((x.original or {}).get("content") or ""), timeout=20)
    [j0, j1] = await c.jobs()
    assert (j0["owner"], j0["status"], j1["owner"], j1["status"]) == ("shards-0", "running", "shards-1", "running")

    assert await c.rig.kill_bot() == -9  # SIGKILL: process 0 refunds nothing on its way out
    await h1.wait_for(has_result, timeout=30)
    await poll(lambda: all_settled(c), timeout=15)
    [j0, j1] = await c.jobs()
    assert j0["status"] == "crashed" and j0["error"] == "interrupted: its process stopped renewing its lease"
    assert j0["images_done"] == 0 and j0["cost_actual"] in (0, None)
    assert j1["status"] == "done" and j1["images_done"] == 1 and j1["cost_actual"] > 0
    await c.other.wait_for_log(f"refunded 1 job(s) of instances whose lease expired: [{j0['id']}]")
    assert await c.rows("SELECT * FROM image_slots") == []  # the dead process's slot is gone too
    assert "1 used" in today(await c.quota_me(1))


async def test_one_cap_for_the_whole_bot(cluster: Cluster) -> None:
    c = cluster
    c.rig.images.delay_between_events = 0.4
    await c.start(MAX_CONCURRENT_IMAGES="4")
    handles = [
        await c.imagine(shard, f"cap test {shard} {who}", user=who, count=2)
        for shard in (0, 1)
        for who in ("alice", "bob", "mod")
    ]  # 12 streams wanted at once, 6 in each process: each alone would allow 4
    for h in handles:
        await h.wait_for(has_result, timeout=60)
    assert c.rig.images.max_open_streams == 4  # reached, never exceeded
    await poll(lambda: all_settled(c), timeout=15)
    assert {r["status"] for r in await c.jobs()} == {"done"}
    await poll(lambda: no_slots(c), timeout=10)


async def no_slots(c: Cluster) -> bool:
    return not await c.rows("SELECT * FROM image_slots")


async def test_a_database_that_refuses_is_one_line_and_exit_status_2(tmp_path: Path) -> None:
    url = await pgserver.server().new_database()
    missing = url.rsplit("/", 1)[0] + "/no_such_db"
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(REPO_ROOT),
        "DISCORD_TOKEN": "t",
        "DEMO_MODE": "true",
        "DATABASE_URL": missing.replace("@", ":hunter2hunter2@", 1),  # a password (trust auth ignores it)
        "IMAGEBOT_ENV_FILE": str(tmp_path / "none"),
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", cwd=tmp_path, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 2, err.decode()
    assert err.decode().strip().splitlines()[-1].startswith("imagebot: the PostgreSQL database refused: ")
    assert b"Traceback" not in err and b"hunter2" not in out + err
