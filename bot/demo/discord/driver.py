"""The test-facing side: build what users do (slash commands, buttons, modals, message commands, messages,
replies, deletions) as Discord would send it, and deliver it to the bot's gateway session."""

from __future__ import annotations

import secrets
from typing import Any

from bot.demo.discord.gateway import Gateway
from bot.demo.discord.payloads import MESSAGE_DEFAULT, MESSAGE_REPLY, FakeGuild, FakeUser, infer_option
from bot.demo.discord.records import InteractionHandle


class Driver(Gateway):
    # ----------------------------------------------------------------------------------- messages
    def create_user_message(
        self,
        author: str | int | FakeUser,
        content: str = "",
        attachments: list[dict[str, Any]] | None = None,
        reference: dict[str, Any] | None = None,
        *,
        mention_bot: bool = False,
        channel_id: int | None = None,
        embeds: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """Store (without dispatching) a message written by a user; returns its payload."""
        channel_id = channel_id or self.channel_id
        msg = self.world.message_payload(
            message_id=self.snowflakes.next(),
            channel_id=channel_id,
            author=author,
            content=content,
            attachments=attachments,
            embeds=embeds,
            mentions=["bot"] if mention_bot else None,
            message_type=MESSAGE_REPLY if reference is not None else MESSAGE_DEFAULT,
            reference=reference,
        )
        return self._store(msg)

    def reply(
        self,
        author: str | int | FakeUser,
        content: str,
        to_message: dict[str, Any],
        mention_bot: bool = True,
        *,
        attachments: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """Build (and store) a reply to ``to_message``; ``mention_bot`` pings the bot (reply ping)."""
        current = self.messages.get(int(to_message["id"]), to_message)
        return self.create_user_message(
            author, content, attachments, reference=current, mention_bot=mention_bot,
            channel_id=int(current["channel_id"]),
        )  # fmt: skip

    async def inject_message(self, message_payload: dict[str, Any]) -> dict[str, Any]:
        """Dispatch MESSAGE_CREATE (storing the message if needed). Returns the stored payload."""
        if int(message_payload["id"]) not in self.messages:
            self._store(message_payload)
        gid = message_payload.get("guild_id")
        for s in self.sessions_for(int(gid) if gid is not None else None):
            await self._dispatch(s, "MESSAGE_CREATE", self.visible_to_bot(message_payload, s.intents))
        return message_payload

    async def delete_message(self, message: dict[str, Any] | int) -> dict[str, Any]:
        """Delete a message as a user (or moderator) would in the client: it leaves the store (the bot's
        next edit of it gets 404 10008 Unknown Message, on channel and webhook routes alike) and the bot
        gets MESSAGE_DELETE. Returns the message's last state."""
        mid = message if isinstance(message, int) else int(message["id"])
        msg = self.messages.pop(mid)
        self.deleted_messages[mid] = msg
        event: dict[str, Any] = {"id": str(mid), "channel_id": msg["channel_id"]}
        if msg.get("guild_id") is not None:
            event["guild_id"] = msg["guild_id"]
        await self._dispatch_to_guild(self.world.guild_of_channel(int(msg["channel_id"])), "MESSAGE_DELETE", event)
        return msg

    # ---------------------------------------------------------------------------- interactions
    def _new_interaction(
        self,
        interaction_type: int,
        data: dict[str, Any] | None,
        user: str | int | FakeUser,
        *,
        channel_id: int | None = None,
        message: dict[str, Any] | None = None,
        locale: str = "en-US",
    ) -> dict[str, Any]:
        payload = self.world.interaction_base(
            interaction_id=self.snowflakes.next(),
            token="aW50ZXJhY3Rpb24" + secrets.token_urlsafe(60),
            interaction_type=interaction_type,
            data=data,
            user=user,
            channel_id=channel_id,
            message=message,
            locale=locale,
        )
        payload["attachment_size_limit"] = self.upload_limit  # what this server allows (boosts raise it)
        return payload

    def _command_id(self, name: str, ctype: int = 1, guild_id: int | None = None) -> int:
        for scope in (guild_id or self.guild_id, None):
            for c in self.commands.get(scope, []):
                if c["name"] == name and c.get("type", 1) == ctype:
                    return int(c["id"])
        return self._command_ids.setdefault((None, name, ctype), self.snowflakes.next())

    def slash(
        self,
        name: str,
        options: dict[str, Any] | list[dict[str, Any]] | None = None,
        *,
        user: str | int | FakeUser = "alice",
        subcommand: str | None = None,
        group: str | None = None,
        attachments: dict[str, dict[str, Any]] | None = None,
        channel_id: int | None = None,
        locale: str = "en-US",
    ) -> dict[str, Any]:
        """Build a CHAT_INPUT interaction. Option types are inferred from Python values: str 3, int 4,
        bool 5, FakeUser 6, FakeRole 8, float 10, attachment dict (from add_attachment) 11."""
        resolved: dict[str, dict[str, Any]] = {}
        opts: list[dict[str, Any]] = []
        if isinstance(options, list):
            opts = list(options)
        else:
            for k, v in (options or {}).items():
                opts.append(infer_option(k, v, self.world, resolved))
        for k, att in (attachments or {}).items():
            opts.append(infer_option(k, att, self.world, resolved))
        if subcommand is not None:
            opts = [{"type": 1, "name": subcommand, "options": opts}]
        if group is not None:
            opts = [{"type": 2, "name": group, "options": opts}]
        gid = self.world.guild_of_channel(channel_id or self.channel_id) or self.guild_id
        data: dict[str, Any] = {
            "id": str(self._command_id(name, 1, gid)),
            "name": name,
            "type": 1,
            "options": opts,
            "guild_id": str(gid),
        }
        if resolved:
            data["resolved"] = resolved
        return self._new_interaction(2, data, user, channel_id=channel_id, locale=locale)

    def _message_arg(self, message: dict[str, Any] | int) -> dict[str, Any]:
        mid = message if isinstance(message, int) else int(message["id"])
        if mid in self.messages:
            return self.messages[mid]
        if isinstance(message, dict):
            return message
        raise KeyError(f"unknown message {mid}")

    def button(
        self,
        custom_id: str,
        message: dict[str, Any] | int,
        user: str | int | FakeUser = "alice",
        *,
        component_type: int = 2,
        values: list[str] | None = None,
    ) -> dict[str, Any]:
        """Build a MESSAGE_COMPONENT interaction (button by default; pass component_type/values for
        selects) on the latest state of ``message``."""
        msg = self._message_arg(message)
        data: dict[str, Any] = {"custom_id": custom_id, "component_type": component_type}
        if values is not None:
            data["values"] = values
        return self._new_interaction(3, data, user, channel_id=int(msg["channel_id"]), message=msg)

    def modal_submit(
        self,
        custom_id: str,
        fields: dict[str, str],
        user: str | int | FakeUser = "alice",
        message: dict[str, Any] | int | None = None,
        *,
        channel_id: int | None = None,
    ) -> dict[str, Any]:
        rows = [{"type": 1, "components": [{"type": 4, "custom_id": k, "value": v}]} for k, v in fields.items()]
        data = {"custom_id": custom_id, "components": rows}
        msg = self._message_arg(message) if message is not None else None
        return self._new_interaction(
            5, data, user, message=msg, channel_id=channel_id or (int(msg["channel_id"]) if msg is not None else None)
        )

    def message_command(
        self, name: str, target_message: dict[str, Any] | int, user: str | int | FakeUser = "alice"
    ) -> dict[str, Any]:
        msg = self._message_arg(target_message)
        gid = self.world.guild_of_channel(int(msg["channel_id"])) or self.guild_id
        data = {
            "id": str(self._command_id(name, 3, gid)),
            "name": name,
            "type": 3,
            "target_id": msg["id"],
            "resolved": {"messages": {msg["id"]: msg}},
            "guild_id": str(gid),
        }
        return self._new_interaction(2, data, user, channel_id=int(msg["channel_id"]))

    def register_interaction(self, payload: dict[str, Any]) -> InteractionHandle:
        """Make the interaction known to REST (callback, webhooks) without dispatching it."""
        handle = InteractionHandle(self, payload)
        self.interactions[handle.token] = handle
        self._interactions_by_id[handle.id] = handle
        return handle

    async def inject_interaction(self, payload: dict[str, Any]) -> InteractionHandle:
        """Dispatch INTERACTION_CREATE to the connected bot; returns a handle on its token."""
        handle = self.register_interaction(payload)
        gid = payload.get("guild_id")
        sessions = self.sessions_for(int(gid) if gid is not None else None)
        assert sessions, f"no identified gateway session serving guild {gid}: is the bot (that shard) connected?"
        for s in sessions:
            await self._dispatch(s, "INTERACTION_CREATE", payload)
        return handle

    def handle_for(self, token: str) -> InteractionHandle:
        return self.interactions[token]

    # ------------------------------------------------------------------------------------ guilds
    def add_guild(
        self,
        name: str | None = None,
        *,
        guild_id: int | None = None,
        shard: tuple[int, int] | None = None,
        channels: tuple[str, ...] = ("general",),
    ) -> FakeGuild:
        """Add a guild to the world (see ``World.add_guild``; ``shard=(id, count)`` picks an id on that
        shard). Call it before the bot connects, or use ``join_guild`` to announce it."""
        return self.world.add_guild(name, guild_id=guild_id, shard=shard, channels=channels)

    async def join_guild(
        self,
        name: str | None = None,
        *,
        guild_id: int | None = None,
        shard: tuple[int, int] | None = None,
        channels: tuple[str, ...] = ("general",),
    ) -> FakeGuild:
        """``add_guild``, then GUILD_CREATE to the sessions serving it (the bot was added to a server)."""
        guild = self.add_guild(name, guild_id=guild_id, shard=shard, channels=channels)
        await self._dispatch_to_guild(guild.id, "GUILD_CREATE", self.world.guild_payload(guild.id))
        return guild
