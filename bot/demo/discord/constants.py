"""Ids, permission bits, message flags and snowflakes of the fake Discord's world (pure data)."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime

# ---------------------------------------------------------------------------------------------- world ids
APPLICATION_ID = 1100000000000000001  # == bot user id, as for every modern Discord app
BOT_ID = APPLICATION_ID
GUILD_ID = 1200000000000000001
GUILD_NAME = "Pixel Pals"
CHANNEL_ID = 1300000000000000001  # #general
OTHER_CHANNEL_ID = 1300000000000000002  # #art
MODERATOR_ROLE_ID = 1400000000000000001
ARTIST_ROLE_ID = 1400000000000000002
BOT_ROLE_ID = 1400000000000000003  # the bot's managed role
ALICE_ID = 1500000000000000001
BOB_ID = 1500000000000000002
MOD_ID = 1500000000000000003
OWNER_ID = 1500000000000000009  # application owner (not a guild member)
TEAM_ID = 1600000000000000001  # the team of a team-owned application (World.team)

DEFAULT_TOKEN = "fake-bot-token.NzY1.discord"
ATTACHMENT_SIZE_LIMIT = 10 * 1024 * 1024  # 10 MiB, an unboosted guild

# ---------------------------------------------------------------------------------------- permissions
CREATE_INSTANT_INVITE = 1 << 0
KICK_MEMBERS = 1 << 1
ADMINISTRATOR = 1 << 3
MANAGE_CHANNELS = 1 << 4
MANAGE_GUILD = 1 << 5
ADD_REACTIONS = 1 << 6
VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
SEND_TTS_MESSAGES = 1 << 12
MANAGE_MESSAGES = 1 << 13
EMBED_LINKS = 1 << 14
ATTACH_FILES = 1 << 15
READ_MESSAGE_HISTORY = 1 << 16
MENTION_EVERYONE = 1 << 17
USE_EXTERNAL_EMOJIS = 1 << 18
CHANGE_NICKNAME = 1 << 26
USE_APPLICATION_COMMANDS = 1 << 31
SEND_MESSAGES_IN_THREADS = 1 << 38
USE_EXTERNAL_APPS = 1 << 50

EVERYONE_PERMISSIONS = (
    CREATE_INSTANT_INVITE
    | ADD_REACTIONS
    | VIEW_CHANNEL
    | SEND_MESSAGES
    | EMBED_LINKS
    | ATTACH_FILES
    | READ_MESSAGE_HISTORY
    | USE_EXTERNAL_EMOJIS
    | CHANGE_NICKNAME
    | USE_APPLICATION_COMMANDS
    | SEND_MESSAGES_IN_THREADS
    | USE_EXTERNAL_APPS
)
MODERATOR_PERMISSIONS = MANAGE_GUILD | MANAGE_MESSAGES | KICK_MEMBERS
ARTIST_PERMISSIONS = 0
BOT_ROLE_PERMISSIONS = EVERYONE_PERMISSIONS | MANAGE_MESSAGES
ALL_PERMISSIONS = (1 << 53) - 1

PERMISSION_BITS: dict[str, int] = {
    "CREATE_INSTANT_INVITE": CREATE_INSTANT_INVITE,
    "KICK_MEMBERS": KICK_MEMBERS,
    "ADMINISTRATOR": ADMINISTRATOR,
    "MANAGE_CHANNELS": MANAGE_CHANNELS,
    "MANAGE_GUILD": MANAGE_GUILD,
    "ADD_REACTIONS": ADD_REACTIONS,
    "VIEW_CHANNEL": VIEW_CHANNEL,
    "SEND_MESSAGES": SEND_MESSAGES,
    "SEND_TTS_MESSAGES": SEND_TTS_MESSAGES,
    "MANAGE_MESSAGES": MANAGE_MESSAGES,
    "EMBED_LINKS": EMBED_LINKS,
    "ATTACH_FILES": ATTACH_FILES,
    "READ_MESSAGE_HISTORY": READ_MESSAGE_HISTORY,
    "MENTION_EVERYONE": MENTION_EVERYONE,
    "USE_EXTERNAL_EMOJIS": USE_EXTERNAL_EMOJIS,
    "CHANGE_NICKNAME": CHANGE_NICKNAME,
    "USE_APPLICATION_COMMANDS": USE_APPLICATION_COMMANDS,
    "SEND_MESSAGES_IN_THREADS": SEND_MESSAGES_IN_THREADS,
    "USE_EXTERNAL_APPS": USE_EXTERNAL_APPS,
}


def permission_bits(perms: int | str | Iterable[str | int]) -> int:
    """Bit flags from an int, one name (``"ATTACH_FILES"``, case and spaces free) or an iterable of either."""
    if isinstance(perms, int):
        return perms
    if isinstance(perms, str):
        perms = [perms]
    out = 0
    for p in perms:
        if isinstance(p, int):
            out |= p
            continue
        key = p.strip().upper().replace(" ", "_")
        if key not in PERMISSION_BITS:
            raise KeyError(f"unknown permission {p!r}; known: {sorted(PERMISSION_BITS)}")
        out |= PERMISSION_BITS[key]
    return out


# Message flags / types
FLAG_EPHEMERAL = 1 << 6
FLAG_LOADING = 1 << 7
MESSAGE_DEFAULT = 0
MESSAGE_REPLY = 19
MESSAGE_CHAT_INPUT_COMMAND = 20
MESSAGE_CONTEXT_MENU_COMMAND = 23

DISCORD_EPOCH_MS = 1420070400000


def shard_of(guild_id: int, shard_count: int) -> int:
    """The shard that serves a guild, as Discord routes it: ``(guild_id >> 22) % shard_count``."""
    return (guild_id >> 22) % shard_count


class Snowflakes:
    """Generator of increasing, realistic snowflakes (timestamp << 22 | counter)."""

    def __init__(self) -> None:
        self._counter = itertools.count(1)
        self._lock = threading.Lock()
        self._last = 0

    def next(self) -> int:
        with self._lock:
            ms = int(time.time() * 1000) - DISCORD_EPOCH_MS
            value = (ms << 22) | (next(self._counter) & 0x3FFFFF)
            if value <= self._last:
                value = self._last + 1
            self._last = value
            return value

    def next_on_shard(self, shard_id: int, shard_count: int) -> int:
        """A fresh snowflake that ``shard_of(..., shard_count)`` puts on ``shard_id`` (a guild id)."""
        if not 0 <= shard_id < shard_count:
            raise ValueError(f"shard {shard_id} out of range for {shard_count} shards")
        with self._lock:
            ms = max(int(time.time() * 1000) - DISCORD_EPOCH_MS, (self._last >> 22) + 1)
            ms += (shard_id - ms) % shard_count
            value = ms << 22
            self._last = value
            return value


def iso_now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")
