"""REST routes of the application side: login, gateway discovery, commands, interaction callbacks and the
interaction webhooks (``@original`` and follow-ups)."""

from __future__ import annotations

import re
import time
from typing import Any

from bot.demo.discord.payloads import (
    ATTACH_FILES,
    FLAG_EPHEMERAL,
    FLAG_LOADING,
    MESSAGE_CHAT_INPUT_COMMAND,
    MESSAGE_CONTEXT_MENU_COMMAND,
    MESSAGE_DEFAULT,
)
from bot.demo.discord.permissions import Permissions
from bot.demo.discord.records import Fail, InteractionHandle, RecordedRequest, error


class InteractionRoutes(Permissions):
    def _authorized(self, rec: RecordedRequest) -> bool:
        return rec.headers.get("Authorization") == f"Bot {self.token}"

    def _ok_interaction(self, token: str) -> InteractionHandle | tuple[int, Any]:
        handle = self.interactions.get(token)
        if handle is None:
            return error(401, 50027, "Invalid Webhook Token")
        if handle.expired and handle.expired_as_unknown_webhook:
            return error(404, 10015, "Unknown Webhook")
        if handle.expired or time.monotonic() - handle.created > self.token_lifetime:
            return error(401, 50027, "Invalid Webhook Token")
        return handle

    async def _no_content(self, rec: RecordedRequest, m: re.Match[str]) -> tuple[int, Any]:
        return 204, None

    async def _get_me(self, rec: RecordedRequest, m: re.Match[str]) -> tuple[int, Any]:
        if not self._authorized(rec):
            return error(401, 0, "401: Unauthorized")
        data = self.bot_user.payload()
        data.update({"verified": True, "mfa_enabled": False, "email": None, "locale": "en-US"})
        return 200, data

    async def _get_my_guilds(self, rec: RecordedRequest, m: re.Match[str]) -> tuple[int, Any]:
        """The bot's servers as partial guilds (``./imagebot doctor`` lists them)."""
        if not self._authorized(rec):
            return error(401, 0, "401: Unauthorized")
        perms = str(self.world.permissions_of("bot"))
        out = []
        for guild in self.world.guilds.values():
            g: dict[str, Any] = {"id": str(guild.id), "name": guild.name, "icon": None, "banner": None}
            g.update({"owner": False, "permissions": perms, "features": []})
            out.append(g)
        return 200, out

    async def _get_app(self, rec: RecordedRequest, m: re.Match[str]) -> tuple[int, Any]:
        if not self._authorized(rec):
            return error(401, 0, "401: Unauthorized")
        return 200, self.world.application_payload()

    async def _get_gateway(self, rec: RecordedRequest, m: re.Match[str]) -> tuple[int, Any]:
        return 200, {
            "url": self.gateway_url,
            "shards": self.recommended_shards,
            "session_start_limit": {"total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1},
        }

    def _scope(self, m: re.Match[str]) -> int | tuple[int, Any] | None:
        if int(m.group("app")) != self.application_id:
            return error(403, 50001, "Missing Access")
        guild = m.groupdict().get("guild")
        if guild is not None and int(guild) not in self.world.guilds:
            return error(403, 50001, "Missing Access")
        return int(guild) if guild else None

    def _command_out(self, scope: int | None, cmd: dict[str, Any]) -> dict[str, Any]:
        key = (scope, cmd["name"], int(cmd.get("type") or 1))
        cid = self._command_ids.setdefault(key, self.snowflakes.next())
        out = {
            "type": 1,
            "options": [],
            "default_member_permissions": None,
            "nsfw": False,
            "contexts": None,
            "integration_types": [0],
            **cmd,
            "id": str(cid),
            "application_id": str(self.application_id),
            "version": str(self.snowflakes.next()),
        }
        if scope is not None:
            out["guild_id"] = str(scope)
        out.setdefault("description", "")
        return out

    async def _put_commands(self, rec: RecordedRequest, m: re.Match[str]) -> tuple[int, Any]:
        if not self._authorized(rec):
            return error(401, 0, "401: Unauthorized")
        scope = self._scope(m)
        if isinstance(scope, tuple):
            return scope
        key = "global_commands_put" if scope is None else "guild_commands_put"
        if not self._validate(rec, key, rec.json) and self.reject_invalid:
            return self._invalid_body(rec)
        self.commands[scope] = [self._command_out(scope, c) for c in rec.json or []]
        return 200, self.commands[scope]

    async def _post_command(self, rec: RecordedRequest, m: re.Match[str]) -> tuple[int, Any]:
        if not self._authorized(rec):
            return error(401, 0, "401: Unauthorized")
        scope = self._scope(m)
        if isinstance(scope, tuple):
            return scope
        cmd = self._command_out(scope, rec.json)
        cmds = [c for c in self.commands.get(scope, []) if c["id"] != cmd["id"]]
        self.commands[scope] = [*cmds, cmd]
        return 201, cmd

    async def _get_commands(self, rec: RecordedRequest, m: re.Match[str]) -> tuple[int, Any]:
        if not self._authorized(rec):
            return error(401, 0, "401: Unauthorized")
        scope = self._scope(m)
        if isinstance(scope, tuple):
            return scope
        return 200, self.commands.get(scope, [])

    async def _callback(self, rec: RecordedRequest, m: re.Match[str]) -> tuple[int, Any]:
        handle = self._interactions_by_id.get(int(m.group("iid")))
        if (refused := self._unusable(handle, m.group("token"))) is not None:
            return refused
        assert handle is not None
        body = rec.json
        if not self._validate(rec, "interaction_callback", body) and self.reject_invalid:
            return self._invalid_body(rec)
        if (bad := self._check_uploads(rec)) is not None:
            return bad
        ctype = int(body["type"])
        data = body.get("data") or {}
        if rec.files:
            self._require_for_interaction(int(handle.payload["channel_id"]), ATTACH_FILES)
        if ctype in (4, 7):
            self._check_mentions(rec, data)
        resource = self._callback_resource(rec, handle, ctype, data)
        if isinstance(resource, tuple):
            return resource
        info: dict[str, Any] = {
            "id": str(handle.id),
            "type": handle.payload["type"],
            "response_message_loading": ctype == 5,
            "response_message_ephemeral": bool(int(data.get("flags") or 0) & FLAG_EPHEMERAL),
        }
        if "message" in resource:
            info["response_message_id"] = resource["message"]["id"]
        handle.callbacks.append(body)
        return 200, {"interaction": info, "resource": resource}

    def _unusable(self, handle: InteractionHandle | None, token: str) -> tuple[int, Any] | None:
        """Discord's answer to a callback for an unknown, expired, late or already acknowledged interaction."""
        if handle is None or handle.token != token or handle.expired:
            return error(404, 10062, "Unknown interaction")
        timeout = self.interaction_ack_timeout
        if timeout is not None and time.monotonic() - handle.created > timeout:
            return error(404, 10062, "Unknown interaction")
        if handle.callbacks:
            return error(400, 40060, "Interaction has already been acknowledged.")
        return None

    def _callback_resource(
        self, rec: RecordedRequest, handle: InteractionHandle, ctype: int, data: dict[str, Any]
    ) -> dict[str, Any] | tuple[int, Any]:
        """What the callback of type ``ctype`` does (the ``resource`` of Discord's answer), or an error."""
        resource: dict[str, Any] = {"type": ctype}
        if ctype in (4, 5):
            resource["message"] = self._response_message(rec, handle, ctype, data)
        elif ctype in (6, 7):
            target = handle.payload.get("message")
            if target is None:
                return error(400, 50035, "Invalid Form Body", errors={"type": "no message to update"})
            handle.original_id = int(target["id"])
            if ctype == 7:
                current = self.messages.get(int(target["id"]), target)
                resource["message"] = self._apply_edit(current, rec, data)
        elif ctype == 9:
            handle.modal = data
        return resource

    def _response_message(
        self, rec: RecordedRequest, handle: InteractionHandle, ctype: int, data: dict[str, Any]
    ) -> dict[str, Any]:
        """The interaction's @original message, created by a reply (4) or a deferral (5: "thinking…")."""
        p = handle.payload
        mtype = MESSAGE_CHAT_INPUT_COMMAND if p["type"] == 2 else MESSAGE_DEFAULT
        if p["type"] == 2 and (p.get("data") or {}).get("type") == 3:
            mtype = MESSAGE_CONTEXT_MENU_COMMAND
        msg = self._new_bot_message(
            rec, data, int(p["channel_id"]), message_type=mtype, webhook=True,
            extra_flags=FLAG_LOADING if ctype == 5 else 0, interaction=handle,
        )  # fmt: skip
        handle.original_id = int(msg["id"])
        return msg

    def _webhook_target(self, m: re.Match[str]) -> tuple[InteractionHandle, int | None]:
        """The interaction behind a webhook URL and the message id it names (raises _Fail)."""
        if int(m.group("app")) != self.application_id:
            raise Fail(*error(404, 10015, "Unknown Webhook"))
        h = self._ok_interaction(m.group("token"))
        if isinstance(h, tuple):
            raise Fail(*h)
        mid_s = m.groupdict().get("mid")
        if mid_s is None:
            return h, None
        mid = h.original_id if mid_s == "@original" else int(mid_s)
        if mid is None or mid not in self.messages or (mid != h.original_id and mid not in h.followup_ids):
            raise Fail(*error(404, 10008, "Unknown Message"))
        return h, mid

    async def _wh_get(self, rec: RecordedRequest, m: re.Match[str]) -> tuple[int, Any]:
        _, mid = self._webhook_target(m)
        assert mid is not None
        return 200, self.messages[mid]

    async def _wh_patch(self, rec: RecordedRequest, m: re.Match[str]) -> tuple[int, Any]:
        h, mid = self._webhook_target(m)
        assert mid is not None
        if rec.files:
            self._require_for_interaction(int(h.payload["channel_id"]), ATTACH_FILES)
        key = "webhook_message_edit" if m.group("mid") == "@original" else "webhook_message_edit_by_id"
        if not self._validate(rec, key, rec.json) and self.reject_invalid:
            return self._invalid_body(rec)
        if (bad := self._check_uploads(rec)) is not None:
            return bad
        self._check_mentions(rec, rec.json)
        return 200, self._apply_edit(self.messages[mid], rec, rec.json or {})

    async def _wh_delete(self, rec: RecordedRequest, m: re.Match[str]) -> tuple[int, Any]:
        _, mid = self._webhook_target(m)
        assert mid is not None
        self.deleted_messages[mid] = self.messages.pop(mid)
        return 204, None

    async def _wh_execute(self, rec: RecordedRequest, m: re.Match[str]) -> tuple[int, Any]:
        h, _ = self._webhook_target(m)
        if not h.acknowledged:
            return error(404, 10015, "Unknown Webhook")
        if rec.files:
            self._require_for_interaction(int(h.payload["channel_id"]), ATTACH_FILES)
        if not self._validate(rec, "webhook_execute", rec.json) and self.reject_invalid:
            return self._invalid_body(rec)
        if (bad := self._check_uploads(rec)) is not None:
            return bad
        body = rec.json or {}
        self._check_mentions(rec, body)
        ch = int(h.payload["channel_id"])
        original = h.original
        if h.callback_types[0] == 5 and original is not None and original["flags"] & FLAG_LOADING:
            # Discord: the first follow-up after a deferred "thinking" response edits the original.
            msg = self._apply_edit(original, rec, body)
        else:
            msg = self._new_bot_message(rec, body, ch, webhook=True, interaction=h)
            h.followup_ids.append(int(msg["id"]))
        if rec.query.get("wait", "").lower() in ("1", "true"):
            return 200, msg
        return 204, None
