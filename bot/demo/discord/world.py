"""The world of the fake Discord: users, roles, guilds (one primary, more with ``add_guild``), channels and
permission arithmetic (guild permissions, channel overwrites, Discord's implicit rules)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from bot.demo.discord.constants import (
    ADMINISTRATOR,
    ALICE_ID,
    ALL_PERMISSIONS,
    APPLICATION_ID,
    ARTIST_PERMISSIONS,
    ARTIST_ROLE_ID,
    ATTACH_FILES,
    BOB_ID,
    BOT_ID,
    BOT_ROLE_ID,
    BOT_ROLE_PERMISSIONS,
    CHANNEL_ID,
    EMBED_LINKS,
    EVERYONE_PERMISSIONS,
    GUILD_ID,
    GUILD_NAME,
    MENTION_EVERYONE,
    MOD_ID,
    MODERATOR_PERMISSIONS,
    MODERATOR_ROLE_ID,
    OTHER_CHANNEL_ID,
    OWNER_ID,
    SEND_MESSAGES,
    SEND_TTS_MESSAGES,
    VIEW_CHANNEL,
    Snowflakes,
    shard_of,
)


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
    locale: str = "en-US"  # the server's preferred_locale (interactions carry it as guild_locale)


@dataclass
class WorldModel:
    """Who and what exists: guilds, channels, roles, users, and the permissions that follow from them.
    ``World`` in ``bot/demo/discord/payloads.py`` adds the builders of Discord-shaped payloads."""

    application_id: int = APPLICATION_ID
    guild_id: int = GUILD_ID
    guild_name: str = GUILD_NAME
    channel_id: int = CHANNEL_ID
    other_channel_id: int = OTHER_CHANNEL_ID
    owner_id: int = OWNER_ID
    # The Developer Portal's Bot → Public Bot switch. Off here: the fake plays an operator's own private
    # application, where every server the bot is in is the operator's (tests of a public bot turn it on).
    bot_public: bool = False
    # A team-owned application: member user id -> team role ("admin", "developer", "read_only"). Empty: the
    # application belongs to ``owner_id`` alone.
    team: dict[int, str] = field(default_factory=dict)
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
