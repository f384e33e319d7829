"""The fixed world of the fake Discord and builders of Discord-shaped payloads.

Everything here is pure data: ids, users, roles, permission arithmetic, and functions that build the JSON
objects Discord sends (users, members, messages, READY, GUILD_CREATE, interactions). ``FakeDiscord`` in
``tests/fakes/discord/`` uses them and exposes convenience wrappers.

The world has one primary guild (``GUILD_ID``, channels #general and #art) and may gain more with
``World.add_guild`` (each a copy of the primary's roles under fresh ids, every user a member), e.g. one per
gateway shard for the multi-process tests (``shard_of``, ``add_guild(shard=(id, count))``).
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

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


@dataclass(frozen=True)
class FakeRole:
    id: int
    name: str
    permissions: int
    position: int
    managed: bool = False

    @property
    def mention(self) -> str:
        return f"<@&{self.id}>"

    def payload(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": str(self.id),
            "name": self.name,
            "color": 0,
            "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
            "hoist": False,
            "icon": None,
            "unicode_emoji": None,
            "position": self.position,
            "permissions": str(self.permissions),
            "managed": self.managed,
            "mentionable": False,
            "flags": 0,
        }
        if self.managed:
            data["tags"] = {"bot_id": str(BOT_ID)}
        return data


@dataclass(frozen=True)
class FakeUser:
    id: int
    username: str
    global_name: str | None = None
    bot: bool = False
    roles: tuple[int, ...] = ()
    joined_at: str = "2024-01-01T00:00:00.000000+00:00"

    @property
    def mention(self) -> str:
        return f"<@{self.id}>"

    def payload(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": str(self.id),
            "username": self.username,
            "discriminator": "0",
            "global_name": self.global_name,
            "avatar": None,
            "public_flags": 0,
            "flags": 0,
            "banner": None,
            "accent_color": None,
            "avatar_decoration_data": None,
            "primary_guild": None,
        }
        if self.bot:
            data["bot"] = True
        return data


@dataclass
class FakeGuild:
    """One guild of the world: its roles (keyed like ``World.roles``) and its channels' ids."""

    id: int
    name: str
    roles: dict[str, FakeRole]
    channel_ids: list[int] = field(default_factory=list)


@dataclass
class World:
    """The fixed guild every test uses (plus any added with ``add_guild``)."""

    application_id: int = APPLICATION_ID
    guild_id: int = GUILD_ID
    guild_name: str = GUILD_NAME
    channel_id: int = CHANNEL_ID
    other_channel_id: int = OTHER_CHANNEL_ID
    owner_id: int = OWNER_ID
    roles: dict[str, FakeRole] = field(default_factory=dict)
    users: dict[str, FakeUser] = field(default_factory=dict)
    channels: dict[int, dict[str, Any]] = field(default_factory=dict)  # of every guild
    guilds: dict[int, FakeGuild] = field(default_factory=dict)
    snowflakes: Snowflakes = field(default_factory=Snowflakes, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.roles:
            self.roles = {
                "everyone": FakeRole(self.guild_id, "@everyone", EVERYONE_PERMISSIONS, 0),
                "moderator": FakeRole(MODERATOR_ROLE_ID, "Moderator", MODERATOR_PERMISSIONS, 3),
                "artist": FakeRole(ARTIST_ROLE_ID, "Artist", ARTIST_PERMISSIONS, 2),
                "bot": FakeRole(BOT_ROLE_ID, "imagebot", BOT_ROLE_PERMISSIONS, 1, managed=True),
            }
        if not self.users:
            self.users = {
                "bot": FakeUser(BOT_ID, "imagebot", None, bot=True, roles=(BOT_ROLE_ID,)),
                "alice": FakeUser(ALICE_ID, "alice", "Alice", roles=(ARTIST_ROLE_ID,)),
                "bob": FakeUser(BOB_ID, "bob", "Bob"),
                "mod": FakeUser(MOD_ID, "mod", "Mod", roles=(MODERATOR_ROLE_ID,)),
            }
        if not self.channels:
            self.channels = {
                self.channel_id: self._text_channel(self.channel_id, "general", 0),
                self.other_channel_id: self._text_channel(self.other_channel_id, "art", 1),
            }
        if self.guild_id not in self.guilds:
            self.guilds[self.guild_id] = FakeGuild(
                self.guild_id, self.guild_name, self.roles,
                [c for c in self.channels if self.channels[c]["guild_id"] == str(self.guild_id)],
            )  # fmt: skip

    def add_guild(
        self,
        name: str | None = None,
        *,
        guild_id: int | None = None,
        shard: tuple[int, int] | None = None,
        channels: Iterable[str] = ("general",),
    ) -> FakeGuild:
        """Add a guild with the primary guild's roles (fresh ids) and text channels; ``shard=(id, count)``
        picks a guild id that gateway shard ``id`` of ``count`` serves. Every user is a member."""
        if guild_id is None:
            guild_id = self.snowflakes.next_on_shard(*shard) if shard else self.snowflakes.next()
        elif shard is not None and shard_of(guild_id, shard[1]) != shard[0]:
            raise ValueError(f"guild {guild_id} is on shard {shard_of(guild_id, shard[1])}, not {shard[0]}")
        if guild_id in self.guilds:
            raise ValueError(f"guild {guild_id} exists")
        roles = {}
        for key, r in self.roles.items():
            rid = guild_id if key == "everyone" else self.snowflakes.next()
            roles[key] = FakeRole(rid, r.name, r.permissions, r.position, r.managed)
        guild = FakeGuild(guild_id, name or f"Guild {len(self.guilds) + 1}", roles)
        for pos, cname in enumerate(channels):
            cid = self.snowflakes.next()
            self.channels[cid] = self._text_channel(cid, cname, pos, guild_id=guild_id)
            guild.channel_ids.append(cid)
        self.guilds[guild_id] = guild
        return guild

    def guilds_on_shard(self, shard_id: int, shard_count: int) -> list[FakeGuild]:
        return [g for g in self.guilds.values() if shard_of(g.id, shard_count) == shard_id]

    def _text_channel(
        self, channel_id: int, name: str, position: int, *, guild_id: int | None = None
    ) -> dict[str, Any]:
        return {
            "id": str(channel_id),
            "type": 0,
            "guild_id": str(guild_id or self.guild_id),
            "name": name,
            "position": position,
            "parent_id": None,
            "topic": None,
            "nsfw": False,
            "rate_limit_per_user": 0,
            "last_message_id": None,
            "permission_overwrites": [],
            "flags": 0,
        }

    # ----------------------------------------------------------------------------------- lookups
    @property
    def bot_user(self) -> FakeUser:
        return self.users["bot"]

    def user(self, who: str | int | FakeUser) -> FakeUser:
        if isinstance(who, FakeUser):
            return who
        if isinstance(who, str):
            return self.users[who]
        for u in self.users.values():
            if u.id == who:
                return u
        raise KeyError(who)

    def role(self, which: str | int | FakeRole) -> FakeRole:
        if isinstance(which, FakeRole):
            return which
        if isinstance(which, str):
            return self.roles[which]
        for r in self.roles.values():
            if r.id == which:
                return r
        raise KeyError(which)

    def guild_of_channel(self, channel_id: int) -> int | None:
        """The guild a channel belongs to (None for DMs and unknown channels)."""
        ch = self.channels.get(channel_id)
        return int(ch["guild_id"]) if ch is not None else None

    def member_role_ids(self, who: str | int | FakeUser, guild_id: int | None = None) -> list[int]:
        """The user's roles in a guild: ``FakeUser.roles`` name the primary guild's roles, mapped by key."""
        user = self.user(who)
        if guild_id is None or guild_id == self.guild_id:
            return list(user.roles)
        guild_roles = self.guilds[guild_id].roles
        keys = [k for rid in user.roles for k, r in self.roles.items() if r.id == rid]
        return [guild_roles[k].id for k in keys if k in guild_roles]

    def permissions_of(self, who: str | int | FakeUser, guild_id: int | None = None) -> int:
        """Guild-level permissions computed from @everyone and the member's roles (no overwrites)."""
        guild = self.guilds[guild_id or self.guild_id]
        perms = guild.roles["everyone"].permissions
        by_id = {r.id: r for r in guild.roles.values()}
        for role_id in self.member_role_ids(who, guild.id):
            if role_id in by_id:
                perms |= by_id[role_id].permissions
        if perms & ADMINISTRATOR:
            return ALL_PERMISSIONS
        return perms

    def permissions_in(self, who: str | int | FakeUser, channel_id: int) -> int:
        """Permissions in a channel, as Discord (and discord.py's ``permissions_for``) compute them: the
        guild permissions, then the channel's overwrites (@everyone, roles, member), then the implicit
        rules (no Send Messages: no embeds/files/mention everyone; no View Channel: nothing)."""
        gid = self.guild_of_channel(channel_id)
        if gid is None:
            return self.permissions_of(who)
        perms = self.permissions_of(who, gid)
        if perms & ADMINISTRATOR:
            return perms
        user = self.user(who)
        overwrites = self.channels[channel_id].get("permission_overwrites") or []
        by_id = {int(o["id"]): o for o in overwrites}
        if (ow := by_id.get(gid)) is not None:
            perms = (perms & ~int(ow["deny"])) | int(ow["allow"])
        allow = deny = 0
        for rid in self.member_role_ids(user, gid):
            if (ow := by_id.get(rid)) is not None and int(ow["type"]) == 0:
                allow |= int(ow["allow"])
                deny |= int(ow["deny"])
        perms = (perms & ~deny) | allow
        if (ow := by_id.get(user.id)) is not None and int(ow["type"]) == 1:
            perms = (perms & ~int(ow["deny"])) | int(ow["allow"])
        if not perms & SEND_MESSAGES:
            perms &= ~(SEND_TTS_MESSAGES | MENTION_EVERYONE | EMBED_LINKS | ATTACH_FILES)
        if not perms & VIEW_CHANNEL:
            return 0
        return perms

    # ---------------------------------------------------------------------------------- payloads
    def member_payload(
        self, who: str | int | FakeUser, *, with_user: bool = True, guild_id: int | None = None
    ) -> dict[str, Any]:
        user = self.user(who)
        data: dict[str, Any] = {
            "roles": [str(r) for r in self.member_role_ids(user, guild_id)],
            "nick": None,
            "avatar": None,
            "banner": None,
            "premium_since": None,
            "joined_at": user.joined_at,
            "deaf": False,
            "mute": False,
            "pending": False,
            "flags": 0,
            "communication_disabled_until": None,
        }
        if with_user:
            data["user"] = user.payload()
        return data

    def interaction_member(
        self, who: str | int | FakeUser, guild_id: int | None = None, channel_id: int | None = None
    ) -> dict[str, Any]:
        """The interaction's ``member``: its ``permissions`` are those in the channel, overwrites included."""
        data = self.member_payload(who, guild_id=guild_id)
        perms = self.permissions_in(who, channel_id) if channel_id is not None else self.permissions_of(who, guild_id)
        data["permissions"] = str(perms)
        return data

    def guild_payload(self, guild_id: int | None = None) -> dict[str, Any]:
        guild = self.guilds[guild_id or self.guild_id]
        members = [self.member_payload(u, guild_id=guild.id) for u in self.users.values()]
        return {
            "id": str(guild.id),
            "name": guild.name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": str(self.users["mod"].id),
            "region": None,
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 1,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "preferred_locale": "en-US",
            "system_channel_id": None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "safety_alerts_channel_id": None,
            "max_members": 500000,
            "max_video_channel_users": 25,
            "vanity_url_code": None,
            "features": [],
            "application_id": None,
            "premium_progress_bar_enabled": False,
            "roles": [r.payload() for r in guild.roles.values()],
            "emojis": [],
            "stickers": [],
            "channels": [self.channels[c] for c in guild.channel_ids if c in self.channels],
            "threads": [],
            "members": members,
            "member_count": len(members),
            "large": False,
            "unavailable": False,
            "joined_at": self.bot_user.joined_at,
            "voice_states": [],
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
            "lazy": True,
        }

    def ready_payload(
        self, session_id: str, resume_url: str, *, guild_ids: Iterable[int] | None = None,
        shard: tuple[int, int] = (0, 1),
    ) -> dict[str, Any]:  # fmt: skip
        user = self.bot_user.payload()
        user.update({"verified": True, "mfa_enabled": False, "email": None})
        ids = list(self.guilds) if guild_ids is None else list(guild_ids)
        return {
            "v": 10,
            "user": user,
            "guilds": [{"id": str(g), "unavailable": True} for g in ids],
            "session_id": session_id,
            "session_type": "normal",
            "resume_gateway_url": resume_url,
            "shard": list(shard),
            "application": {"id": str(self.application_id), "flags": 0},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "user_settings": {},
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": [],
            "_trace": ["fake-discord"],
        }

    def application_payload(self) -> dict[str, Any]:
        owner = FakeUser(self.owner_id, "owner", "Owner").payload()
        return {
            "id": str(self.application_id),
            "name": "imagebot",
            "icon": None,
            "description": "",
            "summary": "",
            "type": None,
            "hook": True,
            "bot_public": True,
            "bot_require_code_grant": False,
            "verify_key": "0" * 64,
            "owner": owner,
            "team": None,
            "flags": 0,
            "tags": [],
            "approximate_guild_count": len(self.guilds),
            "approximate_user_install_count": 0,
            "redirect_uris": [],
            "interactions_endpoint_url": None,
            "role_connections_verification_url": None,
            "integration_types_config": {"0": {}},
            "bot": self.bot_user.payload(),
        }

    def message_payload(
        self,
        *,
        message_id: int,
        channel_id: int,
        author: str | int | FakeUser,
        content: str = "",
        attachments: list[dict[str, Any]] | None = None,
        embeds: list[dict[str, Any]] | None = None,
        components: list[dict[str, Any]] | None = None,
        mentions: list[str | int | FakeUser] | None = None,
        flags: int = 0,
        message_type: int = MESSAGE_DEFAULT,
        reference: dict[str, Any] | None = None,
        webhook: bool = False,
        with_member: bool = True,
    ) -> dict[str, Any]:
        user = self.user(author)
        data: dict[str, Any] = {
            "id": str(message_id),
            "type": message_type,
            "channel_id": str(channel_id),
            "author": user.payload(),
            "content": content,
            "timestamp": iso_now(),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": list(attachments or []),
            "embeds": list(embeds or []),
            "components": list(components or []),
            "pinned": False,
            "flags": flags,
            "nonce": None,
        }
        gid = self.guild_of_channel(channel_id)
        if gid is not None:
            data["guild_id"] = str(gid)
            if with_member and not webhook:
                data["member"] = self.member_payload(user, with_user=False, guild_id=gid)
        for m in mentions or []:
            mu = self.user(m)
            entry = mu.payload()
            if gid is not None:
                entry["member"] = self.member_payload(mu, with_user=False, guild_id=gid)
            data["mentions"].append(entry)
        if webhook:
            data["webhook_id"] = str(self.application_id)
            data["application_id"] = str(self.application_id)
        if reference is not None:
            ref_id = int(reference["id"])
            data["message_reference"] = {
                "type": 0,
                "message_id": str(ref_id),
                "channel_id": reference["channel_id"],
                "guild_id": reference.get("guild_id", str(gid or self.guild_id)),
            }
            ref = dict(reference)
            ref.pop("referenced_message", None)
            data["referenced_message"] = ref
        return data

    def interaction_base(
        self,
        *,
        interaction_id: int,
        token: str,
        interaction_type: int,
        data: dict[str, Any] | None,
        user: str | int | FakeUser,
        channel_id: int | None = None,
        locale: str = "en-US",
        message: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        channel_id = channel_id or self.channel_id
        channel = dict(self.channels[channel_id])
        gid = int(channel["guild_id"])
        payload: dict[str, Any] = {
            "id": str(interaction_id),
            "application_id": str(self.application_id),
            "type": interaction_type,
            "token": token,
            "version": 1,
            "guild_id": str(gid),
            "guild": {"id": str(gid), "locale": "en-US", "features": []},
            "guild_locale": "en-US",
            "channel_id": str(channel_id),
            "channel": channel,
            "member": self.interaction_member(user, gid, channel_id),
            "app_permissions": str(self.permissions_in("bot", channel_id)),
            "locale": locale,
            "entitlements": [],
            "entitlement_sku_ids": [],
            "authorizing_integration_owners": {"0": str(gid)},
            "context": 0,
            "attachment_size_limit": ATTACHMENT_SIZE_LIMIT,
        }
        if data is not None:
            payload["data"] = data
        if message is not None:
            payload["message"] = message
        return payload


def infer_option(name: str, value: Any, world: World, resolved: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Turn a Python value into a typed slash-command option, filling ``resolved`` as Discord does."""
    if isinstance(value, dict) and value.get("type") is not None and value.get("name") is not None:
        return value  # already an option dict
    if isinstance(value, bool):
        return {"name": name, "type": 5, "value": value}
    if isinstance(value, int):
        return {"name": name, "type": 4, "value": value}
    if isinstance(value, float):
        return {"name": name, "type": 10, "value": value}
    if isinstance(value, str):
        return {"name": name, "type": 3, "value": value}
    if isinstance(value, FakeUser):
        resolved.setdefault("users", {})[str(value.id)] = value.payload()
        member = world.member_payload(value, with_user=False)
        member["permissions"] = str(world.permissions_of(value))
        resolved.setdefault("members", {})[str(value.id)] = member
        return {"name": name, "type": 6, "value": str(value.id)}
    if isinstance(value, FakeRole):
        resolved.setdefault("roles", {})[str(value.id)] = value.payload()
        return {"name": name, "type": 8, "value": str(value.id)}
    if isinstance(value, dict) and "filename" in value and "url" in value:
        resolved.setdefault("attachments", {})[str(value["id"])] = value
        return {"name": name, "type": 11, "value": str(value["id"])}
    raise TypeError(f"cannot infer a slash option type for {name}={value!r}")
