"""The fixed world of the fake Discord and builders of Discord-shaped payloads.

Everything here is pure data: ids, users, roles, permission arithmetic, and functions that build the JSON
objects Discord sends (users, members, messages, READY, GUILD_CREATE, interactions). ``FakeDiscord`` in
``bot/demo/discord/`` uses them and exposes convenience wrappers.

The world has one primary guild (``GUILD_ID``, channels #general and #art) and may gain more with
``World.add_guild`` (each a copy of the primary's roles under fresh ids, every user a member), e.g. one per
gateway shard for the multi-process tests (``shard_of``, ``add_guild(shard=(id, count))``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

# Tests import every name of the world from here: the ids, bits and flags, and the model's classes.
from bot.demo.discord.constants import *  # noqa: F403
from bot.demo.discord.constants import ATTACHMENT_SIZE_LIMIT, MESSAGE_DEFAULT, TEAM_ID, iso_now
from bot.demo.discord.world import *  # noqa: F403
from bot.demo.discord.world import FakeRole, FakeUser, WorldModel


@dataclass
class World(WorldModel):
    """The fixed guild every test uses (plus any added with ``add_guild``), and the payloads Discord
    would send about it."""

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
            "preferred_locale": guild.locale,
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

    def _team_user(self, uid: int) -> FakeUser:
        try:
            return self.user(uid)
        except KeyError:  # a team member who shares no server with the bot
            return FakeUser(uid, f"member{uid}", None)

    def application_payload(self) -> dict[str, Any]:
        owner = FakeUser(self.owner_id, "owner", "Owner").payload()
        team: dict[str, Any] | None = None
        if self.team:
            team_id = TEAM_ID
            # Discord shows a team-owned application's owner as a pseudo-user named after the team.
            owner = FakeUser(team_id, f"team{team_id}", None).payload()
            team = {
                "id": str(team_id),
                "icon": None,
                "name": "imagebot team",
                "owner_user_id": str(self.owner_id),
                "members": [
                    {
                        "user": self._team_user(uid).payload(),
                        "team_id": str(team_id),
                        "membership_state": 2,  # accepted
                        "role": role,
                        "permissions": ["*"],
                    }
                    for uid, role in self.team.items()
                ],
            }
        return {
            "id": str(self.application_id),
            "name": "imagebot",
            "icon": None,
            "description": "",
            "summary": "",
            "type": None,
            "hook": True,
            "bot_public": self.bot_public,
            "bot_require_code_grant": False,
            "verify_key": "0" * 64,
            "owner": owner,
            "team": team,
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
            "guild": {"id": str(gid), "locale": self.guilds[gid].locale, "features": []},
            "guild_locale": self.guilds[gid].locale,
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
