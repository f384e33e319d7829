"""A fake Discord (REST + gateway + CDN) on 127.0.0.1 that an unmodified discord.py bot can run against.

Point an unmodified bot at ``fd.api_base`` (→
``discord.http.Route.BASE``) and ``fd.gateway_url`` (→ ``DiscordWebSocket.DEFAULT_GATEWAY``).

Tests drive it with ``inject_interaction(fd.slash(...))`` / ``inject_message(fd.reply(...))`` and inspect
``fd.requests``, the message store (``fd.messages``) and ``InteractionHandle`` objects. Every JSON body the
bot sends is validated against ``bot/demo/discord/discord_subset.json``; problems land in
``fd.validation_errors`` (and, like Discord, the request is answered 400) and in ``fd.mention_violations``.

Misbehaving on purpose, to test how the bot copes: ``fd.fail(method, path_regex, status, code=..., with_files=...,
times=...)`` answers matching requests with an error; ``await fd.delete_message(msg)`` deletes as a user
would; ``handle.expire()`` ends a token; ``await fd.set_bot_permissions(channel_id, deny={...})`` takes
channel permissions from the bot. Shards, for several bot processes: ``fd.add_guild(shard=(id, count))``,
``fd.recommended_shards``, ``fd.shards_connected``, ``fd.sessions_for(guild_id)``.

``FakeDiscord`` is one object built from one layer per concern, each module building on the one before:
``core`` (state, waiting, inspection) → ``store`` (messages, attachments) → ``gateway`` (sessions, shards,
dispatch) → ``driver`` (what users do) → ``permissions`` (channel overwrites, 403s) → ``rest_interactions``
→ ``rest_channels`` → ``server`` (HTTP, injected faults, rate limits, routes, CDN). Records and value
types are in ``records``, body validation in ``validation``.
"""

from __future__ import annotations

from bot.demo.discord.gateway import MESSAGE_CONTENT_INTENT
from bot.demo.discord.records import (
    JSON_CT,
    FaultRule,
    GatewaySession,
    InteractionHandle,
    RateLimitRule,
    RecordedFile,
    RecordedRequest,
)
from bot.demo.discord.server import Server
from bot.demo.discord.validation import SCHEMA_PATH, validate_discord_body

__all__ = [
    "JSON_CT",
    "MESSAGE_CONTENT_INTENT",
    "SCHEMA_PATH",
    "FakeDiscord",
    "FaultRule",
    "GatewaySession",
    "InteractionHandle",
    "RateLimitRule",
    "RecordedFile",
    "RecordedRequest",
    "validate_discord_body",
]


class FakeDiscord(Server):
    """A fake Discord on 127.0.0.1 (random free port): REST under /api/v10, gateway at /gateway, CDN."""
