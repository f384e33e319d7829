"""Run plain discord.py clients inside the test process against a ``FakeDiscord`` (for tests of the fake).

``async with dpy_client(fd, shard_id=1, shard_count=2) as c:`` logs in, connects and waits until the
client has received every guild its shard serves; ``c.seen`` collects the gateway events it handled
(``("interaction", Interaction)``, ``("message", Message)``, ``("raw_delete", RawMessageDeleteEvent)``,
``("channel_update", GuildChannel)``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import discord
import yarl

from bot.demo.discord import FakeDiscord


class RecordingClient(discord.Client):
    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.seen: list[tuple[str, Any]] = []

    async def on_interaction(self, interaction: discord.Interaction) -> None:
        self.seen.append(("interaction", interaction))

    async def on_message(self, message: discord.Message) -> None:
        self.seen.append(("message", message))

    async def on_raw_message_delete(self, event: discord.RawMessageDeleteEvent) -> None:
        self.seen.append(("raw_delete", event))

    async def on_guild_channel_update(self, before: Any, after: Any) -> None:
        self.seen.append(("channel_update", after))

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        return None  # no 5 s pause between the shards of an AutoShardedClient


class RecordingShardedClient(discord.AutoShardedClient, RecordingClient):
    pass


def point_discordpy_at(fd: FakeDiscord) -> None:
    """The two endpoint overrides the bot uses too (``cogs/bot.py`` ``apply_endpoint_overrides``)."""
    discord.http.Route.BASE = fd.api_base
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(fd.gateway_url)


@contextlib.asynccontextmanager
async def dpy_client(
    fd: FakeDiscord,
    *,
    sharded: bool = False,
    timeout: float = 15,  # noqa: ASYNC109
    **options: Any,
) -> AsyncIterator[RecordingClient]:
    """A connected client (``sharded``: an ``AutoShardedClient``); options go to the client, e.g.
    ``shard_id``/``shard_count``. Waits until every guild of its shard(s) has arrived."""
    point_discordpy_at(fd)
    options.setdefault("intents", discord.Intents.default())
    options.setdefault("guild_ready_timeout", 0.05)
    options.setdefault("allowed_mentions", discord.AllowedMentions.none())
    cls = RecordingShardedClient if sharded else RecordingClient
    client = cls(**options)
    task = asyncio.create_task(client.start(fd.token))
    try:
        async with asyncio.timeout(timeout):
            while not client.is_ready():
                if task.done():
                    task.result()
                    raise AssertionError("client stopped before it was ready")
                await asyncio.sleep(0.02)
        yield client
    finally:
        await client.close()
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await asyncio.wait_for(task, 5)


async def until(predicate: Any, timeout: float = 10, what: str = "condition") -> Any:  # noqa: ASYNC109
    """Poll ``predicate()`` (a client-side condition the fake is not notified of) until truthy."""
    async with asyncio.timeout(timeout):
        while not (result := predicate()):  # noqa: ASYNC110 - discord.py state has no event to wait on
            await asyncio.sleep(0.01)
    return result


def seen(client: RecordingClient, kind: str) -> list[Any]:
    return [e for k, e in client.seen if k == kind]
