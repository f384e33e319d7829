"""REST routes of channels, messages, DMs, users and guilds, with the bot's channel permissions enforced."""

from __future__ import annotations

import re
from typing import Any

from bot.demo.discord.payloads import (
    ADD_REACTIONS,
    ATTACH_FILES,
    EMBED_LINKS,
    MANAGE_MESSAGES,
    MESSAGE_DEFAULT,
    MESSAGE_REPLY,
    READ_MESSAGE_HISTORY,
    SEND_MESSAGES,
)
from bot.demo.discord.records import Fail, RecordedRequest, error
from bot.demo.discord.rest_interactions import InteractionRoutes


class ChannelRoutes(InteractionRoutes):
    def _channel(self, ch: int) -> dict[str, Any] | None:
        return self.world.channels.get(ch) or self._dm_channels.get(ch)

    async def _ch_create(self, rec: RecordedRequest, m: re.Match[str]) -> tuple[int, Any]:
        if not self._authorized(rec):
            return error(401, 0, "401: Unauthorized")
        ch = int(m.group("ch"))
        if self._channel(ch) is None:
            return error(404, 10003, "Unknown Channel")
        body = rec.json or {}
        needed = [SEND_MESSAGES]
        if rec.files:
            needed.append(ATTACH_FILES)
        if isinstance(body, dict) and body.get("message_reference"):
            needed.append(READ_MESSAGE_HISTORY)  # replying needs it
        self._require(ch, *needed)
        if not self._validate(rec, "channel_message_create", rec.json) and self.reject_invalid:
            return self._invalid_body(rec)
        if (bad := self._check_uploads(rec)) is not None:
            return bad
        self._check_mentions(rec, body)
        body = self._without_embeds_unless_allowed(rec, ch, body, creating=True)
        ref_msg = None
        if body.get("message_reference"):
            ref = body["message_reference"]
            ref_msg = self.messages.get(int(ref["message_id"]))
            if ref_msg is None and ref.get("fail_if_not_exists", True):
                return error(
                    400, 50035, "Invalid Form Body",
                    errors={"message_reference": {"_errors": [{"code": "REPLIES_UNKNOWN_MESSAGE"}]}},
                )  # fmt: skip
        msg = self._new_bot_message(
            rec, body, ch, message_type=MESSAGE_REPLY if ref_msg else MESSAGE_DEFAULT, reference=ref_msg
        )
        return 200, msg

    async def _ch_get(self, rec: RecordedRequest, m: re.Match[str]) -> tuple[int, Any]:
        if not self._authorized(rec):
            return error(401, 0, "401: Unauthorized")
        self._require(int(m.group("ch")), READ_MESSAGE_HISTORY)
        msg = self.messages.get(int(m.group("mid")))
        if msg is None or int(msg["channel_id"]) != int(m.group("ch")):
            return error(404, 10008, "Unknown Message")
        return 200, msg

    async def _ch_history(self, rec: RecordedRequest, m: re.Match[str]) -> tuple[int, Any]:
        if not self._authorized(rec):
            return error(401, 0, "401: Unauthorized")
        ch = int(m.group("ch"))
        self._require(ch)
        if self.world.guild_of_channel(ch) is not None and not self.bot_permissions(ch) & READ_MESSAGE_HISTORY:
            return 200, []  # Discord: without Read Message History no messages are returned
        msgs = sorted((x for x in self.messages.values() if int(x["channel_id"]) == ch), key=lambda x: -int(x["id"]))
        limit = int(rec.query.get("limit", "50"))
        return 200, msgs[:limit]

    async def _ch_patch(self, rec: RecordedRequest, m: re.Match[str]) -> tuple[int, Any]:
        if not self._authorized(rec):
            return error(401, 0, "401: Unauthorized")
        self._require(int(m.group("ch")), *([ATTACH_FILES] if rec.files else []))
        msg = self.messages.get(int(m.group("mid")))
        if msg is None or int(msg["channel_id"]) != int(m.group("ch")):
            return error(404, 10008, "Unknown Message")
        if int(msg["author"]["id"]) != self.bot_id:
            return error(403, 50005, "Cannot edit a message authored by another user")
        if not self._validate(rec, "channel_message_edit", rec.json) and self.reject_invalid:
            return self._invalid_body(rec)
        if (bad := self._check_uploads(rec)) is not None:
            return bad
        self._check_mentions(rec, rec.json)
        body = self._without_embeds_unless_allowed(rec, int(m.group("ch")), rec.json or {}, creating=False)
        return 200, self._apply_edit(msg, rec, body)

    def _without_embeds_unless_allowed(
        self, rec: RecordedRequest, channel_id: int, body: dict[str, Any], *, creating: bool
    ) -> dict[str, Any]:
        """Without Embed Links Discord drops a bot's embeds from channel messages; a new message left
        with nothing else is refused (403 50013). Interaction responses are not affected."""
        if not body.get("embeds") or self.world.guild_of_channel(channel_id) is None:
            return body
        if self.bot_permissions(channel_id) & EMBED_LINKS:
            return body
        if creating and not (body.get("content") or rec.files or body.get("components") or body.get("sticker_ids")):
            raise Fail(*error(403, 50013, "Missing Permissions"))
        return {**body, "embeds": []}

    async def _ch_delete(self, rec: RecordedRequest, m: re.Match[str]) -> tuple[int, Any]:
        if not self._authorized(rec):
            return error(401, 0, "401: Unauthorized")
        mid = int(m.group("mid"))
        self._require(int(m.group("ch")))
        msg = self.messages.get(mid)
        if msg is None or int(msg["channel_id"]) != int(m.group("ch")):
            return error(404, 10008, "Unknown Message")
        if int(msg["author"]["id"]) != self.bot_id:
            self._require(int(m.group("ch")), MANAGE_MESSAGES)
        self.deleted_messages[mid] = self.messages.pop(mid)
        return 204, None

    async def _ch_info(self, rec: RecordedRequest, m: re.Match[str]) -> tuple[int, Any]:
        ch = self._channel(int(m.group("ch")))
        if ch is None:
            return error(404, 10003, "Unknown Channel")
        self._require(int(m.group("ch")))
        return 200, ch

    async def _typing(self, rec: RecordedRequest, m: re.Match[str]) -> tuple[int, Any]:
        self._require(int(m.group("ch")), SEND_MESSAGES)
        return 204, None

    async def _reaction(self, rec: RecordedRequest, m: re.Match[str]) -> tuple[int, Any]:
        self._require(int(m.group("ch")), READ_MESSAGE_HISTORY, *([ADD_REACTIONS] if rec.method == "PUT" else []))
        if int(m.group("mid")) not in self.messages:
            return error(404, 10008, "Unknown Message")
        return 204, None

    async def _create_dm(self, rec: RecordedRequest, m: re.Match[str]) -> tuple[int, Any]:
        rid = int((rec.json or {}).get("recipient_id", 0))
        try:
            user = self.world.user(rid)
        except KeyError:
            return error(400, 50007, "Cannot send messages to this user")
        for ch in self._dm_channels.values():
            if ch["recipients"][0]["id"] == str(rid):
                return 200, ch
        cid = self.snowflakes.next()
        ch = {"id": str(cid), "type": 1, "last_message_id": None, "recipients": [user.payload()], "flags": 0}
        self._dm_channels[cid] = ch
        return 200, ch

    async def _get_user(self, rec: RecordedRequest, m: re.Match[str]) -> tuple[int, Any]:
        try:
            return 200, self.world.user(int(m.group("uid"))).payload()
        except KeyError:
            return error(404, 10013, "Unknown User")

    async def _get_guild(self, rec: RecordedRequest, m: re.Match[str]) -> tuple[int, Any]:
        if int(m.group("guild")) not in self.world.guilds:
            return error(404, 10004, "Unknown Guild")
        g = self.world.guild_payload(int(m.group("guild")))
        for k in ("channels", "members", "threads", "voice_states", "presences"):
            g.pop(k, None)
        return 200, g

    async def _get_member(self, rec: RecordedRequest, m: re.Match[str]) -> tuple[int, Any]:
        try:
            return 200, self.world.member_payload(int(m.group("uid")), guild_id=int(m.group("guild")))
        except KeyError:
            return error(404, 10007, "Unknown Member")

    async def _get_channels(self, rec: RecordedRequest, m: re.Match[str]) -> tuple[int, Any]:
        gid = int(m.group("guild"))
        if gid not in self.world.guilds:
            return error(404, 10004, "Unknown Guild")
        return 200, [self.world.channels[c] for c in self.world.guilds[gid].channel_ids]

    async def _get_roles(self, rec: RecordedRequest, m: re.Match[str]) -> tuple[int, Any]:
        gid = int(m.group("guild"))
        if gid not in self.world.guilds:
            return error(404, 10004, "Unknown Guild")
        return 200, [r.payload() for r in self.world.guilds[gid].roles.values()]
