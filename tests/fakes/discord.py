"""A fake Discord (REST + gateway + CDN) on 127.0.0.1 that an unmodified discord.py bot can run against.

See /work/shared/docs/discord-offline.md for the contract. Point the bot at ``fd.api_base`` (→
``discord.http.Route.BASE``) and ``fd.gateway_url`` (→ ``DiscordWebSocket.DEFAULT_GATEWAY``).

Tests drive it with ``inject_interaction(fd.slash(...))`` / ``inject_message(fd.reply(...))`` and inspect
``fd.requests``, the message store (``fd.messages``) and ``InteractionHandle`` objects. Every JSON body the
bot sends is validated against ``tests/schemas/discord_subset.json``; problems land in
``fd.validation_errors`` (and, like Discord, the request is answered 400) and in ``fd.mention_violations``.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import mimetypes
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aiohttp import WSMsgType, web

from tests.fakes.payloads import (
    ATTACHMENT_SIZE_LIMIT,
    DEFAULT_TOKEN,
    FLAG_EPHEMERAL,
    FLAG_LOADING,
    MESSAGE_CHAT_INPUT_COMMAND,
    MESSAGE_CONTEXT_MENU_COMMAND,
    MESSAGE_DEFAULT,
    MESSAGE_REPLY,
    FakeRole,
    FakeUser,
    Snowflakes,
    World,
    infer_option,
    iso_now,
)

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "schemas" / "discord_subset.json"
JSON_CT = "application/json"
MESSAGE_CONTENT_INTENT = 1 << 15

# ------------------------------------------------------------------------------------------- validation


@cache
def _schema_doc() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text())


@cache
def _validator(route_key: str) -> Any:
    from jsonschema import Draft202012Validator

    doc = _schema_doc()
    schema = dict(doc["routes"][route_key]["schema"])
    if doc.get("$defs"):
        schema["$defs"] = doc["$defs"]
    return Draft202012Validator(schema)


def validate_discord_body(route_key: str, body: Any) -> list[str]:
    """Validate a request body against the extracted Discord schema; returns readable error strings."""
    errors = []
    for err in _validator(route_key).iter_errors(body):
        # anyOf/oneOf errors are vague at the top; show the best sub-error as well
        from jsonschema.exceptions import best_match

        detail = best_match([err]) if err.context else err
        where = "/".join(str(p) for p in detail.absolute_path) or "<root>"
        errors.append(f"{route_key}: at {where}: {detail.message[:300]}")
    return errors


# -------------------------------------------------------------------------------------------- records


@dataclass
class RecordedFile:
    field: str
    filename: str
    content_type: str
    data: bytes


@dataclass
class RecordedRequest:
    time: float  # time.monotonic() when received
    method: str
    path: str  # without the /api/v10 prefix, e.g. "/users/@me"; CDN requests keep "/cdn/..."
    query: dict[str, str]
    headers: dict[str, str]
    json: Any = None
    files: list[RecordedFile] = field(default_factory=list)
    status: int | None = None
    response: Any = None
    token: str | None = None  # interaction token for /interactions and /webhooks routes

    def __repr__(self) -> str:
        files = f" files={[f.filename for f in self.files]}" if self.files else ""
        return f"<{self.method} {self.path} -> {self.status}{files}>"


@dataclass
class RateLimitRule:
    method: str
    path_regex: re.Pattern[str]
    retry_after: float
    count: int
    is_global: bool


class InteractionHandle:
    """Everything the bot did with one interaction token."""

    def __init__(self, fd: FakeDiscord, payload: dict[str, Any]) -> None:
        self.fd = fd
        self.payload = payload
        self.id = int(payload["id"])
        self.token: str = payload["token"]
        self.created = time.monotonic()
        self.callbacks: list[dict[str, Any]] = []
        self.original_id: int | None = None
        self.followup_ids: list[int] = []
        self.modal: dict[str, Any] | None = None
        self.expired = False

    def __repr__(self) -> str:
        return f"<InteractionHandle id={self.id} callbacks={[c.get('type') for c in self.callbacks]}>"

    @property
    def acknowledged(self) -> bool:
        return bool(self.callbacks)

    @property
    def callback_types(self) -> list[int]:
        return [c["type"] for c in self.callbacks]

    @property
    def original(self) -> dict[str, Any] | None:
        """Latest state of the @original message (None if none yet or deleted)."""
        if self.original_id is None:
            return None
        return self.fd.messages.get(self.original_id)

    @property
    def original_history(self) -> list[dict[str, Any]]:
        """Every state of the @original message, oldest first."""
        if self.original_id is None:
            return []
        return list(self.fd.message_history.get(self.original_id, []))

    @property
    def followups(self) -> list[dict[str, Any]]:
        return [self.fd.messages[i] for i in self.followup_ids if i in self.fd.messages]

    @property
    def requests(self) -> list[RecordedRequest]:
        return [r for r in self.fd.requests if r.token == self.token]

    @property
    def edits(self) -> list[RecordedRequest]:
        """Successful PATCHes of this token's messages (the @original and follow-ups)."""
        return [r for r in self.requests if r.method == "PATCH" and r.status == 200]

    def expire(self) -> None:
        """Make the token invalid: later webhook calls get 401 (50027), as after 15 minutes."""
        self.expired = True

    async def wait_for(self, predicate: Callable[[InteractionHandle], Any], timeout: float = 10) -> None:  # noqa: ASYNC109
        await self.fd._wait(lambda: predicate(self), timeout, f"{self!r}")


@dataclass
class GatewaySession:
    ws: web.WebSocketResponse
    session_id: str | None = None
    seq: int = 0
    identified: bool = False
    intents: int = 0
    send_lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class _Fail(Exception):
    """Raised by REST helpers to answer with an error."""

    def __init__(self, status: int, body: Any) -> None:
        super().__init__(status, body)
        self.status = status
        self.body = body


def _json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    hdrs = {"Content-Type": JSON_CT}
    if headers:
        hdrs.update(headers)
    return web.Response(body=json.dumps(body).encode(), status=status, headers=hdrs)


def _error(status: int, code: int, message: str, **extra: Any) -> tuple[int, Any]:
    return status, {"message": message, "code": code, **extra}


Handler = Callable[[RecordedRequest, "re.Match[str]"], Awaitable[tuple[int, Any]]]


class FakeDiscord:
    """A fake Discord on 127.0.0.1 (random free port): REST under /api/v10, gateway at /gateway, CDN."""

    def __init__(self, token: str = DEFAULT_TOKEN, *, world: World | None = None) -> None:
        self.token = token
        self.world = world or World()
        self.snowflakes = Snowflakes()
        # world shortcuts
        self.application_id = self.world.application_id
        self.bot_id = self.world.bot_user.id
        self.guild_id = self.world.guild_id
        self.guild_name = self.world.guild_name
        self.channel_id = self.world.channel_id
        self.other_channel_id = self.world.other_channel_id
        self.users: dict[str, FakeUser] = self.world.users
        self.roles: dict[str, FakeRole] = self.world.roles
        # knobs
        self.latency = 0.0
        self.reject_invalid = True  # answer 400 50035 to bodies failing the schema, as Discord would
        self.interaction_ack_timeout: float | None = 3.0  # Discord: 3 s to acknowledge
        self.token_lifetime = 15 * 60.0
        self.upload_limit = ATTACHMENT_SIZE_LIMIT
        self.enforce_message_content_intent = True
        # records
        self.requests: list[RecordedRequest] = []
        self.unknown_routes: list[RecordedRequest] = []
        self.validation_errors: list[str] = []
        self.mention_violations: list[dict[str, Any]] = []
        self.rate_limited_count = 0
        self.identifies: list[dict[str, Any]] = []
        self.resumes: list[dict[str, Any]] = []
        self.gateway_events_sent: list[dict[str, Any]] = []
        self.commands: dict[int | None, list[dict[str, Any]]] = {}
        self._command_ids: dict[tuple[int | None, str, int], int] = {}
        # message store
        self.messages: dict[int, dict[str, Any]] = {}
        self.message_history: dict[int, list[dict[str, Any]]] = {}
        self.deleted_messages: dict[int, dict[str, Any]] = {}
        self.cdn_files: dict[tuple[str, str], tuple[bytes, str]] = {}  # (att id, filename) -> bytes, type
        self.interactions: dict[str, InteractionHandle] = {}  # by token
        self._interactions_by_id: dict[int, InteractionHandle] = {}
        self._dm_channels: dict[int, dict[str, Any]] = {}
        # machinery
        self._rules: list[RateLimitRule] = []
        self._webhook_limit: tuple[int, float] | None = None
        self._webhook_windows: dict[str, tuple[float, int]] = {}
        self._sessions: list[GatewaySession] = []
        self._known_sessions: dict[str, int] = {}
        self._changed: asyncio.Condition | None = None
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = self._build_routes()

    # ------------------------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        self._changed = asyncio.Condition()
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/gateway", self._gateway)
        app.router.add_route("*", "/{tail:.*}", self._http)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self._port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]

    async def stop(self) -> None:
        for s in list(self._sessions):
            with contextlib.suppress(Exception):
                await s.ws.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def port(self) -> int:
        assert self._port is not None, "FakeDiscord not started"
        return self._port

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_base(self) -> str:
        return f"{self.base_url}/api/v10"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway"

    @property
    def bot_user(self) -> FakeUser:
        return self.world.bot_user

    # ------------------------------------------------------------------------------------ waiting
    async def _notify(self) -> None:
        if self._changed is None:
            return
        async with self._changed:
            self._changed.notify_all()

    async def _wait(self, predicate: Callable[[], Any], timeout: float, what: str) -> Any:  # noqa: ASYNC109
        assert self._changed is not None, "FakeDiscord not started"
        result: Any = None

        def check() -> bool:
            nonlocal result
            result = predicate()
            return bool(result)

        try:
            async with asyncio.timeout(timeout):
                async with self._changed:
                    await self._changed.wait_for(check)
        except TimeoutError:
            tail = "\n  ".join(repr(r) for r in self.requests[-15:])
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last requests:\n  {tail}") from None
        return result

    async def wait_for_request(
        self,
        predicate: Callable[[RecordedRequest], Any],
        timeout: float = 10,  # noqa: ASYNC109
        *,
        since: int = 0,
    ) -> RecordedRequest:
        """First recorded request (index >= since) that satisfies predicate and has been answered."""

        def find() -> RecordedRequest | None:
            for r in self.requests[since:]:
                if r.status is not None and predicate(r):
                    return r
            return None

        return await self._wait(find, timeout, "a matching request")

    async def wait_until_identified(self, timeout: float = 10, *, count: int = 1) -> dict[str, Any]:  # noqa: ASYNC109
        """Wait until the gateway has seen ``count`` IDENTIFYs (and sent READY); returns the last one."""
        await self._wait(lambda: len(self.identifies) >= count, timeout, f"IDENTIFY #{count}")
        return self.identifies[-1]

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 10) -> Any:  # noqa: ASYNC109
        """Wait until predicate() (re-checked after every request/gateway frame) is truthy."""
        return await self._wait(predicate, timeout, "predicate")

    # ---------------------------------------------------------------------------------- test knobs
    def rate_limit_next(
        self,
        method: str,
        path_regex: str,
        retry_after: float = 0.2,
        count: int = 1,
        is_global: bool = False,
    ) -> None:
        """Answer the next ``count`` requests matching (method, regex searched in the path) with a 429."""
        self._rules.append(RateLimitRule(method.upper(), re.compile(path_regex), retry_after, count, is_global))

    def enforce_webhook_limits(self, limit: int | None = 5, per: float = 2.0) -> None:
        """Emulate a per-token bucket for webhook message edits/creates, with X-RateLimit-* headers
        (``limit=None`` switches it off again)."""
        self._webhook_limit = None if limit is None else (limit, per)
        self._webhook_windows.clear()

    @property
    def identify_payload(self) -> dict[str, Any] | None:
        return self.identifies[-1] if self.identifies else None

    @property
    def intents(self) -> int | None:
        return self.identifies[-1]["intents"] if self.identifies else None

    @property
    def global_commands(self) -> list[dict[str, Any]]:
        return self.commands.get(None, [])

    @property
    def guild_commands(self) -> list[dict[str, Any]]:
        return self.commands.get(self.guild_id, [])

    def edits_of(self, token: str) -> list[RecordedRequest]:
        """Successful PATCH requests against the messages of an interaction token, in order."""
        return [r for r in self.requests if r.token == token and r.method == "PATCH" and r.status == 200]

    def requests_to(self, method: str, path_regex: str) -> list[RecordedRequest]:
        rx = re.compile(path_regex)
        return [r for r in self.requests if r.method == method.upper() and rx.search(r.path)]

    def bot_messages(self, channel_id: int | None = None) -> list[dict[str, Any]]:
        """Live messages authored by the bot (interaction responses included), oldest first."""
        out = [m for m in self.messages.values() if int(m["author"]["id"]) == self.bot_id]
        if channel_id is not None:
            out = [m for m in out if int(m["channel_id"]) == channel_id]
        return sorted(out, key=lambda m: int(m["id"]))

    # -------------------------------------------------------------------------------- attachments
    def cdn_url(self, channel_id: int, att_id: int | str, filename: str, *, proxy: bool = False) -> str:
        """``/cdn/attachments/...`` (like cdn.discordapp.com); ``proxy`` gives the media-proxy twin."""
        prefix = "/cdn/media" if proxy else "/cdn"
        return f"{self.base_url}{prefix}/attachments/{channel_id}/{att_id}/{quote(filename)}"

    def _make_attachment(
        self,
        data: bytes,
        filename: str,
        content_type: str | None,
        channel_id: int,
        description: str | None = None,
        att_id: int | None = None,
    ) -> dict[str, Any]:
        att_id = att_id or self.snowflakes.next()
        ctype = content_type or "application/octet-stream"
        if ctype == "application/octet-stream":  # Discord sniffs the type, as discord.py sends octet-stream
            ctype = _guess_image_type(data) or mimetypes.guess_type(filename)[0] or ctype
        self.cdn_files[(str(att_id), filename)] = (data, ctype)
        att: dict[str, Any] = {
            "id": str(att_id),
            "filename": filename,
            "size": len(data),
            "url": self.cdn_url(channel_id, att_id, filename),
            "proxy_url": self.cdn_url(channel_id, att_id, filename, proxy=True),
            "content_type": ctype,
        }
        if description:
            att["description"] = description
        size = _image_size(data)
        if size is not None:
            att["width"], att["height"] = size
        return att

    def add_attachment(
        self,
        data: bytes,
        filename: str,
        content_type: str | None = None,
        *,
        channel_id: int | None = None,
    ) -> dict[str, Any]:
        """Register a user-uploaded file on the CDN and return its Discord attachment object."""
        return self._make_attachment(data, filename, content_type, channel_id or self.channel_id)

    def cdn_bytes(self, attachment: dict[str, Any]) -> bytes:
        return self.cdn_files[(str(attachment["id"]), attachment["filename"])][0]

    # ----------------------------------------------------------------------------------- messages
    def _store(self, msg: dict[str, Any]) -> dict[str, Any]:
        mid = int(msg["id"])
        self.messages[mid] = msg
        self.message_history.setdefault(mid, []).append(json.loads(json.dumps(msg)))
        return msg

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

    def visible_to_bot(self, msg: dict[str, Any], intents: int) -> dict[str, Any]:
        """Apply the MESSAGE_CONTENT rule: blank content unless intent, bot-authored or bot mentioned."""
        if not self.enforce_message_content_intent or intents & MESSAGE_CONTENT_INTENT:
            return msg
        if int(msg["author"]["id"]) == self.bot_id:
            return msg
        if any(int(u["id"]) == self.bot_id for u in msg.get("mentions", [])):
            return msg
        out = dict(msg)
        out.update({"content": "", "attachments": [], "embeds": [], "components": []})
        return out

    async def inject_message(self, message_payload: dict[str, Any]) -> dict[str, Any]:
        """Dispatch MESSAGE_CREATE (storing the message if needed). Returns the stored payload."""
        if int(message_payload["id"]) not in self.messages:
            self._store(message_payload)
        for s in self._live_sessions():
            await self._dispatch(s, "MESSAGE_CREATE", self.visible_to_bot(message_payload, s.intents))
        return message_payload

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

    def _command_id(self, name: str, ctype: int = 1) -> int:
        for scope in (self.guild_id, None):
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
        data: dict[str, Any] = {
            "id": str(self._command_id(name)),
            "name": name,
            "type": 1,
            "options": opts,
            "guild_id": str(self.guild_id),
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
    ) -> dict[str, Any]:
        rows = [{"type": 1, "components": [{"type": 4, "custom_id": k, "value": v}]} for k, v in fields.items()]
        data = {"custom_id": custom_id, "components": rows}
        msg = self._message_arg(message) if message is not None else None
        return self._new_interaction(5, data, user, message=msg)

    def message_command(
        self, name: str, target_message: dict[str, Any] | int, user: str | int | FakeUser = "alice"
    ) -> dict[str, Any]:
        msg = self._message_arg(target_message)
        data = {
            "id": str(self._command_id(name, 3)),
            "name": name,
            "type": 3,
            "target_id": msg["id"],
            "resolved": {"messages": {msg["id"]: msg}},
            "guild_id": str(self.guild_id),
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
        sessions = self._live_sessions()
        assert sessions, "no identified gateway session: is the bot connected?"
        for s in sessions:
            await self._dispatch(s, "INTERACTION_CREATE", payload)
        return handle

    def handle_for(self, token: str) -> InteractionHandle:
        return self.interactions[token]

    # ------------------------------------------------------------------------------------ gateway
    def _live_sessions(self) -> list[GatewaySession]:
        return [s for s in self._sessions if s.identified and not s.ws.closed]

    async def _send(self, s: GatewaySession, frame: dict[str, Any]) -> None:
        async with s.send_lock:
            await s.ws.send_str(json.dumps(frame))

    async def _dispatch(self, s: GatewaySession, event: str, data: dict[str, Any]) -> None:
        async with s.send_lock:
            s.seq += 1
            if s.session_id:
                self._known_sessions[s.session_id] = s.seq
            frame = {"op": 0, "t": event, "s": s.seq, "d": data}
            self.gateway_events_sent.append(frame)
            await s.ws.send_str(json.dumps(frame))
        await self._notify()

    async def dispatch_event(self, event: str, data: dict[str, Any]) -> None:
        """Send an arbitrary DISPATCH event to every identified session."""
        for s in self._live_sessions():
            await self._dispatch(s, event, data)

    async def drop_gateway(self, code: int = 4000, *, reconnect_op: bool = False) -> None:
        """Disconnect the bot's websocket (close code, or an op 7 RECONNECT first) to exercise RESUME."""
        for s in list(self._sessions):
            if reconnect_op:
                with contextlib.suppress(Exception):
                    await self._send(s, {"op": 7, "d": None})
            with contextlib.suppress(Exception):
                await s.ws.close(code=code)

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True, max_msg_size=0)
        await ws.prepare(request)
        s = GatewaySession(ws)
        self._sessions.append(s)
        try:
            await self._send(s, {"op": 10, "d": {"heartbeat_interval": 41250}, "s": None, "t": None})
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    if msg.type in (WSMsgType.ERROR, WSMsgType.CLOSE):
                        break
                    continue
                frame = json.loads(msg.data)
                await self._on_gateway_frame(s, frame)
        finally:
            if s in self._sessions:
                self._sessions.remove(s)
            await self._notify()
        return ws

    async def _on_gateway_frame(self, s: GatewaySession, frame: dict[str, Any]) -> None:
        op = frame.get("op")
        d = frame.get("d")
        if op == 1:  # heartbeat
            await self._send(s, {"op": 11, "d": None})
        elif op == 2:  # identify
            if d.get("token") not in (self.token, f"Bot {self.token}"):
                await s.ws.close(code=4004, message=b"Authentication failed.")
                return
            s.intents = int(d.get("intents", 0))
            s.session_id = secrets.token_hex(16)
            s.identified = True
            self.identifies.append(d)
            await self._dispatch(s, "READY", self.world.ready_payload(s.session_id, self.gateway_url))
            await self._dispatch(s, "GUILD_CREATE", self.world.guild_payload())
        elif op == 6:  # resume
            self.resumes.append(d)
            sid = d.get("session_id")
            if d.get("token") in (self.token, f"Bot {self.token}") and sid in self._known_sessions:
                s.session_id = sid
                s.seq = self._known_sessions[sid]
                s.identified = True
                # intents of the old session are unknown here; assume the last identify's
                s.intents = int(self.identifies[-1].get("intents", 0)) if self.identifies else 0
                await self._dispatch(s, "RESUMED", {"_trace": ["fake-discord"]})
            else:
                await self._send(s, {"op": 9, "d": False})
        elif op == 8:  # request guild members
            members = [self.world.member_payload(u) for u in self.users.values()]
            chunk = {
                "guild_id": str(self.guild_id),
                "members": members,
                "chunk_index": 0,
                "chunk_count": 1,
                "not_found": [],
            }
            if d.get("nonce"):
                chunk["nonce"] = d["nonce"]
            await self._dispatch(s, "GUILD_MEMBERS_CHUNK", chunk)
        # op 3 (presence), 4 (voice) and anything else: ignored
        await self._notify()

    # -------------------------------------------------------------------------------------- HTTP
    async def _http(self, request: web.Request) -> web.StreamResponse:
        raw_path = request.path
        if raw_path.startswith("/cdn/"):
            return await self._cdn(request)
        path = raw_path[len("/api/v10") :] if raw_path.startswith("/api/v10/") else raw_path
        rec = RecordedRequest(
            time=time.monotonic(),
            method=request.method,
            path=path,
            query=dict(request.query),
            headers=dict(request.headers),
        )
        m = re.match(r"^/(?:interactions/\d+|webhooks/\d+)/([^/]+)", path)
        if m:
            rec.token = m.group(1)
        try:
            await self._read_body(request, rec)
        except Exception as exc:  # malformed body
            rec.status, rec.response = 400, {"message": f"malformed body: {exc}", "code": 50109}
            self.requests.append(rec)
            await self._notify()
            return _json_response(rec.response, 400)
        self.requests.append(rec)
        if self.latency:
            await asyncio.sleep(self.latency)
        headers: dict[str, str] = {}
        limited = self._check_rate_limit(rec)
        if limited is None:
            limited = self._check_webhook_bucket(rec, headers)
        if limited is not None:
            status, body, headers = limited
            self.rate_limited_count += 1
        else:
            status, body = await self._route(rec, raw_path)
        rec.status, rec.response = status, body
        await self._notify()
        if status == 204 or body is None:
            return web.Response(status=204 if status < 300 else status, headers=headers)
        return _json_response(body, status, headers)

    async def _read_body(self, request: web.Request, rec: RecordedRequest) -> None:
        ctype = request.headers.get("Content-Type", "")
        if ctype.startswith("multipart/"):
            reader = await request.multipart()
            async for part in reader:
                if part is None:
                    break
                name = part.name or ""  # type: ignore[union-attr]
                data = await part.read(decode=False)  # type: ignore[union-attr]
                if name == "payload_json":
                    rec.json = json.loads(bytes(data).decode())
                else:
                    rec.files.append(
                        RecordedFile(
                            field=name,
                            filename=part.filename or "",  # type: ignore[union-attr]
                            content_type=part.headers.get("Content-Type", "application/octet-stream"),  # type: ignore[union-attr]
                            data=bytes(data),
                        )
                    )
        else:
            raw = await request.read()
            if raw:
                rec.json = json.loads(raw)

    def _check_rate_limit(self, rec: RecordedRequest) -> tuple[int, Any, dict[str, str]] | None:
        for rule in self._rules:
            if rule.count <= 0:
                continue
            if rule.method not in ("*", rec.method) or not rule.path_regex.search(rec.path):
                continue
            rule.count -= 1
            return self._429(rule.retry_after, rule.is_global, "fake-rl-" + rule.path_regex.pattern)
        return None

    def _429(self, retry_after: float, is_global: bool, bucket: str) -> tuple[int, Any, dict[str, str]]:
        headers = {
            "Via": "1.1 google",
            "Retry-After": str(max(1, int(retry_after + 0.999))),
            "X-RateLimit-Limit": "5",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": f"{time.time() + retry_after:.3f}",
            "X-RateLimit-Reset-After": f"{retry_after:.3f}",
            "X-RateLimit-Bucket": secrets.token_hex(8) if not bucket else re.sub(r"\W", "", bucket)[:32],
            "X-RateLimit-Scope": "global" if is_global else "user",
        }
        if is_global:
            headers["X-RateLimit-Global"] = "true"
        body = {"message": "You are being rate limited.", "retry_after": retry_after, "global": is_global}
        return 429, body, headers

    def _check_webhook_bucket(
        self, rec: RecordedRequest, headers: dict[str, str]
    ) -> tuple[int, Any, dict[str, str]] | None:
        if self._webhook_limit is None or rec.token is None or not rec.path.startswith("/webhooks/"):
            return None
        if rec.method not in ("PATCH", "POST"):
            return None
        limit, per = self._webhook_limit
        now = time.monotonic()
        start, used = self._webhook_windows.get(rec.token, (now, 0))
        if now - start >= per:
            start, used = now, 0
        reset_after = max(0.0, per - (now - start))
        if used >= limit:
            self._webhook_windows[rec.token] = (start, used)
            return self._429(round(reset_after, 3), False, "webhook" + rec.token[:8])
        used += 1
        self._webhook_windows[rec.token] = (start, used)
        headers.update(
            {
                "X-RateLimit-Limit": str(limit),
                "X-RateLimit-Remaining": str(limit - used),
                "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
                "X-RateLimit-Reset-After": f"{reset_after:.3f}",
                "X-RateLimit-Bucket": "webhook" + rec.token[:8],
            }
        )
        return None

    async def _route(self, rec: RecordedRequest, raw_path: str) -> tuple[int, Any]:
        if not raw_path.startswith("/api/v10/"):
            self.unknown_routes.append(rec)
            return _error(404, 0, "404: Not Found")
        for method, rx, handler in self._routes:
            if method != rec.method:
                continue
            m = rx.match(rec.path)
            if m:
                try:
                    return await handler(rec, m)
                except _Fail as fail:
                    return fail.status, fail.body
        self.unknown_routes.append(rec)
        return _error(404, 0, "404: Not Found")

    def _build_routes(self) -> list[tuple[str, re.Pattern[str], Handler]]:
        table: list[tuple[str, str, Handler]] = [
            ("GET", r"/users/@me", self._get_me),
            ("GET", r"/users/@me/guilds", self._get_my_guilds),
            ("GET", r"/oauth2/applications/@me", self._get_app),
            ("GET", r"/applications/@me", self._get_app),
            ("GET", r"/gateway", self._get_gateway),
            ("GET", r"/gateway/bot", self._get_gateway),
            ("PUT", r"/applications/(?P<app>\d+)/commands", self._put_commands),
            ("PUT", r"/applications/(?P<app>\d+)/guilds/(?P<guild>\d+)/commands", self._put_commands),
            ("GET", r"/applications/(?P<app>\d+)/commands", self._get_commands),
            ("GET", r"/applications/(?P<app>\d+)/guilds/(?P<guild>\d+)/commands", self._get_commands),
            ("POST", r"/applications/(?P<app>\d+)/commands", self._post_command),
            ("POST", r"/applications/(?P<app>\d+)/guilds/(?P<guild>\d+)/commands", self._post_command),
            ("POST", r"/interactions/(?P<iid>\d+)/(?P<token>[^/]+)/callback", self._callback),
            ("GET", r"/webhooks/(?P<app>\d+)/(?P<token>[^/]+)/messages/(?P<mid>@original|\d+)", self._wh_get),
            (
                "PATCH",
                r"/webhooks/(?P<app>\d+)/(?P<token>[^/]+)/messages/(?P<mid>@original|\d+)",
                self._wh_patch,
            ),
            (
                "DELETE",
                r"/webhooks/(?P<app>\d+)/(?P<token>[^/]+)/messages/(?P<mid>@original|\d+)",
                self._wh_delete,
            ),
            ("POST", r"/webhooks/(?P<app>\d+)/(?P<token>[^/]+)", self._wh_execute),
            ("POST", r"/channels/(?P<ch>\d+)/messages", self._ch_create),
            ("GET", r"/channels/(?P<ch>\d+)/messages/(?P<mid>\d+)", self._ch_get),
            ("PATCH", r"/channels/(?P<ch>\d+)/messages/(?P<mid>\d+)", self._ch_patch),
            ("DELETE", r"/channels/(?P<ch>\d+)/messages/(?P<mid>\d+)", self._ch_delete),
            ("GET", r"/channels/(?P<ch>\d+)/messages", self._ch_history),
            ("GET", r"/channels/(?P<ch>\d+)", self._ch_info),
            ("POST", r"/channels/(?P<ch>\d+)/typing", self._no_content),
            ("PUT", r"/channels/(?P<ch>\d+)/messages/(?P<mid>\d+)/reactions/[^/]+/@me", self._no_content),
            ("DELETE", r"/channels/(?P<ch>\d+)/messages/(?P<mid>\d+)/reactions/[^/]+/[^/]+", self._no_content),
            ("POST", r"/users/@me/channels", self._create_dm),
            ("GET", r"/users/(?P<uid>\d+)", self._get_user),
            ("GET", r"/guilds/(?P<guild>\d+)", self._get_guild),
            ("GET", r"/guilds/(?P<guild>\d+)/members/(?P<uid>\d+)", self._get_member),
            ("GET", r"/guilds/(?P<guild>\d+)/channels", self._get_channels),
            ("GET", r"/guilds/(?P<guild>\d+)/roles", self._get_roles),
        ]
        return [(m, re.compile(p + r"/?$"), h) for m, p, h in table]

    # ------------------------------------------------------------------------------ REST helpers
    def _authorized(self, rec: RecordedRequest) -> bool:
        return rec.headers.get("Authorization") == f"Bot {self.token}"

    def _validate(self, rec: RecordedRequest, route_key: str, body: Any) -> bool:
        errors = validate_discord_body(route_key, body)
        if errors:
            self.validation_errors.extend(f"{rec.method} {rec.path}: {e}" for e in errors)
            return False
        return True

    def _check_mentions(self, rec: RecordedRequest, body: Any) -> None:
        if not isinstance(body, dict) or not body.get("content"):
            return
        am = body.get("allowed_mentions")
        if not isinstance(am, dict) or am.get("parse") != []:
            self.mention_violations.append(
                {"method": rec.method, "path": rec.path, "content": body.get("content"), "allowed_mentions": am}
            )

    def _invalid_body(self, rec: RecordedRequest) -> tuple[int, Any]:
        errs = [e for e in self.validation_errors if e.startswith(f"{rec.method} {rec.path}:")][-5:]
        return _error(400, 50035, "Invalid Form Body", errors={"_fake": errs})

    def _check_uploads(self, rec: RecordedRequest) -> tuple[int, Any] | None:
        if len(rec.files) > 10:
            return _error(400, 50035, "Invalid Form Body", errors={"files": "max 10 attachments"})
        if sum(len(f.data) for f in rec.files) > self.upload_limit:
            return _error(413, 40005, "Request entity too large")
        return None

    def _ok_interaction(self, token: str) -> InteractionHandle | tuple[int, Any]:
        handle = self.interactions.get(token)
        if handle is None:
            return _error(401, 50027, "Invalid Webhook Token")
        if handle.expired or time.monotonic() - handle.created > self.token_lifetime:
            return _error(401, 50027, "Invalid Webhook Token")
        return handle

    def _attachments_from(
        self,
        rec: RecordedRequest,
        body: dict[str, Any],
        channel_id: int,
        existing: list[dict[str, Any]] | None,
    ) -> list[dict[str, Any]] | None:
        """Resolve the ``attachments`` list of a create/edit body (None: leave as is)."""
        files_by_index: dict[str, RecordedFile] = {}
        for i, f in enumerate(rec.files):
            m = re.fullmatch(r"files\[(\d+)\]", f.field)
            files_by_index[m.group(1) if m else str(i)] = f
        spec = body.get("attachments")
        if spec is None:
            if not rec.files:
                return None
            spec = [{"id": k, "filename": f.filename} for k, f in files_by_index.items()]
            keep = list(existing or [])
        else:
            keep = []
        existing_by_id = {a["id"]: a for a in existing or []}
        out = list(keep)
        for item in spec:
            aid = str(item.get("id"))
            if aid in existing_by_id and aid not in files_by_index:
                out.append(existing_by_id[aid])
                continue
            f = files_by_index.get(aid)
            if f is None:
                if aid in existing_by_id:
                    out.append(existing_by_id[aid])
                continue
            filename = item.get("filename") or f.filename
            out.append(
                self._make_attachment(f.data, filename, f.content_type, channel_id, description=item.get("description"))
            )
        return out

    def _resolve_embeds(self, embeds: list[dict[str, Any]], attachments: list[dict[str, Any]]) -> list[Any]:
        by_name = {a["filename"]: a for a in attachments}
        out = []
        for e in embeds:
            e = json.loads(json.dumps(e))
            e.setdefault("type", "rich")
            for key in ("image", "thumbnail"):
                media = e.get(key)
                if isinstance(media, dict) and str(media.get("url", "")).startswith("attachment://"):
                    att = by_name.get(media["url"][len("attachment://") :])
                    if att is not None:
                        media.update({"url": att["url"], "proxy_url": att["proxy_url"]})
                        if "width" in att:
                            media.update({"width": att["width"], "height": att["height"]})
            out.append(e)
        return out

    def _apply_edit(self, msg: dict[str, Any], rec: RecordedRequest, body: dict[str, Any]) -> dict[str, Any]:
        new = json.loads(json.dumps(msg))
        atts = self._attachments_from(rec, body, int(msg["channel_id"]), msg.get("attachments"))
        if atts is not None:
            new["attachments"] = atts
        if "content" in body:
            new["content"] = body["content"] or ""
        if "components" in body:
            new["components"] = body["components"] or []
        if "embeds" in body:
            new["embeds"] = self._resolve_embeds(body["embeds"] or [], new["attachments"])
        if "flags" in body and body["flags"] is not None:
            new["flags"] = (new.get("flags", 0) & (FLAG_EPHEMERAL | FLAG_LOADING)) | int(body["flags"])
        new["flags"] = new.get("flags", 0) & ~FLAG_LOADING
        new["edited_timestamp"] = iso_now()
        return self._store(new)

    def _new_bot_message(
        self,
        rec: RecordedRequest,
        body: dict[str, Any],
        channel_id: int,
        *,
        message_type: int = MESSAGE_DEFAULT,
        webhook: bool = False,
        reference: dict[str, Any] | None = None,
        extra_flags: int = 0,
        interaction: InteractionHandle | None = None,
    ) -> dict[str, Any]:
        atts = self._attachments_from(rec, body, channel_id, None) or []
        msg = self.world.message_payload(
            message_id=self.snowflakes.next(),
            channel_id=channel_id,
            author="bot",
            content=body.get("content") or "",
            attachments=atts,
            embeds=self._resolve_embeds(body.get("embeds") or [], atts),
            components=body.get("components") or [],
            flags=int(body.get("flags") or 0) | extra_flags,
            message_type=message_type,
            reference=reference,
            webhook=webhook,
        )
        if interaction is not None:
            msg.update(self._interaction_metadata(interaction))
        return self._store(msg)

    def _interaction_metadata(self, h: InteractionHandle) -> dict[str, Any]:
        """``interaction_metadata`` (and the legacy ``interaction``) Discord puts on response messages."""
        p = h.payload
        user = p["member"]["user"]
        meta: dict[str, Any] = {
            "id": p["id"],
            "type": p["type"],
            "user": user,
            "authorizing_integration_owners": p.get("authorizing_integration_owners", {}),
        }
        data = p.get("data") or {}
        if p["type"] == 2:
            meta["name"] = data.get("name", "")
            meta["command_type"] = data.get("type", 1)
        if p.get("message") is not None:
            meta["interacted_message_id"] = p["message"]["id"]
        if h.original_id is not None:
            meta["original_response_message_id"] = str(h.original_id)
        legacy = {"id": p["id"], "type": p["type"], "name": data.get("name") or data.get("custom_id", ""),
                  "user": user}  # fmt: skip
        return {"interaction_metadata": meta, "interaction": legacy}

    # --------------------------------------------------------------------------------- handlers
    async def _no_content(self, rec: RecordedRequest, m: re.Match[str]) -> tuple[int, Any]:
        return 204, None

    async def _get_me(self, rec: RecordedRequest, m: re.Match[str]) -> tuple[int, Any]:
        if not self._authorized(rec):
            return _error(401, 0, "401: Unauthorized")
        data = self.bot_user.payload()
        data.update({"verified": True, "mfa_enabled": False, "email": None, "locale": "en-US"})
        return 200, data

    async def _get_my_guilds(self, rec: RecordedRequest, m: re.Match[str]) -> tuple[int, Any]:
        """The bot's servers as partial guilds (``./imagebot doctor`` lists them)."""
        if not self._authorized(rec):
            return _error(401, 0, "401: Unauthorized")
        perms = str(self.world.permissions_of("bot"))
        g: dict[str, Any] = {"id": str(self.guild_id), "name": self.guild_name, "icon": None, "banner": None}
        g.update({"owner": False, "permissions": perms, "features": []})
        return 200, [g]

    async def _get_app(self, rec: RecordedRequest, m: re.Match[str]) -> tuple[int, Any]:
        if not self._authorized(rec):
            return _error(401, 0, "401: Unauthorized")
        return 200, self.world.application_payload()

    async def _get_gateway(self, rec: RecordedRequest, m: re.Match[str]) -> tuple[int, Any]:
        return 200, {
            "url": self.gateway_url,
            "shards": 1,
            "session_start_limit": {"total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1},
        }

    def _scope(self, m: re.Match[str]) -> int | tuple[int, Any] | None:
        if int(m.group("app")) != self.application_id:
            return _error(403, 50001, "Missing Access")
        guild = m.groupdict().get("guild")
        if guild is not None and int(guild) != self.guild_id:
            return _error(403, 50001, "Missing Access")
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
            return _error(401, 0, "401: Unauthorized")
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
            return _error(401, 0, "401: Unauthorized")
        scope = self._scope(m)
        if isinstance(scope, tuple):
            return scope
        cmd = self._command_out(scope, rec.json)
        cmds = [c for c in self.commands.get(scope, []) if c["id"] != cmd["id"]]
        self.commands[scope] = [*cmds, cmd]
        return 201, cmd

    async def _get_commands(self, rec: RecordedRequest, m: re.Match[str]) -> tuple[int, Any]:
        if not self._authorized(rec):
            return _error(401, 0, "401: Unauthorized")
        scope = self._scope(m)
        if isinstance(scope, tuple):
            return scope
        return 200, self.commands.get(scope, [])

    async def _callback(self, rec: RecordedRequest, m: re.Match[str]) -> tuple[int, Any]:
        handle = self._interactions_by_id.get(int(m.group("iid")))
        if handle is None or handle.token != m.group("token"):
            return _error(404, 10062, "Unknown interaction")
        if self.interaction_ack_timeout is not None and (
            time.monotonic() - handle.created > self.interaction_ack_timeout
        ):
            return _error(404, 10062, "Unknown interaction")
        if handle.callbacks:
            return _error(400, 40060, "Interaction has already been acknowledged.")
        body = rec.json
        valid = self._validate(rec, "interaction_callback", body)
        if not valid and self.reject_invalid:
            return self._invalid_body(rec)
        if (bad := self._check_uploads(rec)) is not None:
            return bad
        ctype = int(body["type"])
        data = body.get("data") or {}
        if ctype in (4, 7):
            self._check_mentions(rec, data)
        p = handle.payload
        channel_id = int(p["channel_id"])
        resource: dict[str, Any] = {"type": ctype}
        info: dict[str, Any] = {
            "id": str(handle.id),
            "type": p["type"],
            "response_message_loading": ctype == 5,
            "response_message_ephemeral": bool(int(data.get("flags") or 0) & FLAG_EPHEMERAL),
        }
        if ctype in (4, 5):
            mtype = MESSAGE_CHAT_INPUT_COMMAND if p["type"] == 2 else MESSAGE_DEFAULT
            if p["type"] == 2 and (p.get("data") or {}).get("type") == 3:
                mtype = MESSAGE_CONTEXT_MENU_COMMAND
            msg = self._new_bot_message(
                rec, data, channel_id, message_type=mtype, webhook=True,
                extra_flags=FLAG_LOADING if ctype == 5 else 0, interaction=handle,
            )  # fmt: skip
            handle.original_id = int(msg["id"])
            resource["message"] = msg
            info["response_message_id"] = msg["id"]
        elif ctype in (6, 7):
            target = p.get("message")
            if target is None:
                return _error(400, 50035, "Invalid Form Body", errors={"type": "no message to update"})
            handle.original_id = int(target["id"])
            if ctype == 7:
                current = self.messages.get(int(target["id"]), target)
                msg = self._apply_edit(current, rec, data)
                resource["message"] = msg
                info["response_message_id"] = msg["id"]
        elif ctype == 9:
            handle.modal = data
        handle.callbacks.append(body)
        return 200, {"interaction": info, "resource": resource}

    def _webhook_target(self, m: re.Match[str]) -> tuple[InteractionHandle, int | None]:
        """The interaction behind a webhook URL and the message id it names (raises _Fail)."""
        if int(m.group("app")) != self.application_id:
            raise _Fail(*_error(404, 10015, "Unknown Webhook"))
        h = self._ok_interaction(m.group("token"))
        if isinstance(h, tuple):
            raise _Fail(*h)
        mid_s = m.groupdict().get("mid")
        if mid_s is None:
            return h, None
        mid = h.original_id if mid_s == "@original" else int(mid_s)
        if mid is None or mid not in self.messages or (mid != h.original_id and mid not in h.followup_ids):
            raise _Fail(*_error(404, 10008, "Unknown Message"))
        return h, mid

    async def _wh_get(self, rec: RecordedRequest, m: re.Match[str]) -> tuple[int, Any]:
        _, mid = self._webhook_target(m)
        assert mid is not None
        return 200, self.messages[mid]

    async def _wh_patch(self, rec: RecordedRequest, m: re.Match[str]) -> tuple[int, Any]:
        _, mid = self._webhook_target(m)
        assert mid is not None
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
            return _error(404, 10015, "Unknown Webhook")
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

    def _channel(self, ch: int) -> dict[str, Any] | None:
        return self.world.channels.get(ch) or self._dm_channels.get(ch)

    async def _ch_create(self, rec: RecordedRequest, m: re.Match[str]) -> tuple[int, Any]:
        if not self._authorized(rec):
            return _error(401, 0, "401: Unauthorized")
        ch = int(m.group("ch"))
        if self._channel(ch) is None:
            return _error(404, 10003, "Unknown Channel")
        if not self._validate(rec, "channel_message_create", rec.json) and self.reject_invalid:
            return self._invalid_body(rec)
        if (bad := self._check_uploads(rec)) is not None:
            return bad
        body = rec.json or {}
        self._check_mentions(rec, body)
        ref_msg = None
        if body.get("message_reference"):
            ref = body["message_reference"]
            ref_msg = self.messages.get(int(ref["message_id"]))
            if ref_msg is None and ref.get("fail_if_not_exists", True):
                return _error(
                    400, 50035, "Invalid Form Body",
                    errors={"message_reference": {"_errors": [{"code": "REPLIES_UNKNOWN_MESSAGE"}]}},
                )  # fmt: skip
        msg = self._new_bot_message(
            rec, body, ch, message_type=MESSAGE_REPLY if ref_msg else MESSAGE_DEFAULT, reference=ref_msg
        )
        return 200, msg

    async def _ch_get(self, rec: RecordedRequest, m: re.Match[str]) -> tuple[int, Any]:
        if not self._authorized(rec):
            return _error(401, 0, "401: Unauthorized")
        msg = self.messages.get(int(m.group("mid")))
        if msg is None or int(msg["channel_id"]) != int(m.group("ch")):
            return _error(404, 10008, "Unknown Message")
        return 200, msg

    async def _ch_history(self, rec: RecordedRequest, m: re.Match[str]) -> tuple[int, Any]:
        if not self._authorized(rec):
            return _error(401, 0, "401: Unauthorized")
        ch = int(m.group("ch"))
        msgs = sorted((x for x in self.messages.values() if int(x["channel_id"]) == ch), key=lambda x: -int(x["id"]))
        limit = int(rec.query.get("limit", "50"))
        return 200, msgs[:limit]

    async def _ch_patch(self, rec: RecordedRequest, m: re.Match[str]) -> tuple[int, Any]:
        if not self._authorized(rec):
            return _error(401, 0, "401: Unauthorized")
        msg = self.messages.get(int(m.group("mid")))
        if msg is None or int(msg["channel_id"]) != int(m.group("ch")):
            return _error(404, 10008, "Unknown Message")
        if int(msg["author"]["id"]) != self.bot_id:
            return _error(403, 50005, "Cannot edit a message authored by another user")
        if not self._validate(rec, "channel_message_edit", rec.json) and self.reject_invalid:
            return self._invalid_body(rec)
        if (bad := self._check_uploads(rec)) is not None:
            return bad
        self._check_mentions(rec, rec.json)
        return 200, self._apply_edit(msg, rec, rec.json or {})

    async def _ch_delete(self, rec: RecordedRequest, m: re.Match[str]) -> tuple[int, Any]:
        if not self._authorized(rec):
            return _error(401, 0, "401: Unauthorized")
        mid = int(m.group("mid"))
        msg = self.messages.get(mid)
        if msg is None or int(msg["channel_id"]) != int(m.group("ch")):
            return _error(404, 10008, "Unknown Message")
        self.deleted_messages[mid] = self.messages.pop(mid)
        return 204, None

    async def _ch_info(self, rec: RecordedRequest, m: re.Match[str]) -> tuple[int, Any]:
        ch = self._channel(int(m.group("ch")))
        return (200, ch) if ch is not None else _error(404, 10003, "Unknown Channel")

    async def _create_dm(self, rec: RecordedRequest, m: re.Match[str]) -> tuple[int, Any]:
        rid = int((rec.json or {}).get("recipient_id", 0))
        try:
            user = self.world.user(rid)
        except KeyError:
            return _error(400, 50007, "Cannot send messages to this user")
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
            return _error(404, 10013, "Unknown User")

    async def _get_guild(self, rec: RecordedRequest, m: re.Match[str]) -> tuple[int, Any]:
        if int(m.group("guild")) != self.guild_id:
            return _error(404, 10004, "Unknown Guild")
        g = self.world.guild_payload()
        for k in ("channels", "members", "threads", "voice_states", "presences"):
            g.pop(k, None)
        return 200, g

    async def _get_member(self, rec: RecordedRequest, m: re.Match[str]) -> tuple[int, Any]:
        try:
            return 200, self.world.member_payload(int(m.group("uid")))
        except KeyError:
            return _error(404, 10007, "Unknown Member")

    async def _get_channels(self, rec: RecordedRequest, m: re.Match[str]) -> tuple[int, Any]:
        return 200, list(self.world.channels.values())

    async def _get_roles(self, rec: RecordedRequest, m: re.Match[str]) -> tuple[int, Any]:
        return 200, [r.payload() for r in self.roles.values()]

    # ---------------------------------------------------------------------------------------- CDN
    async def _cdn(self, request: web.Request) -> web.StreamResponse:
        rec = RecordedRequest(
            time=time.monotonic(),
            method=request.method,
            path=request.path,
            query=dict(request.query),
            headers=dict(request.headers),
        )
        self.requests.append(rec)
        m = re.match(r"^/cdn/(?:media/)?attachments/\d+/(\d+)/(.+)$", request.path)
        found = self.cdn_files.get((m.group(1), m.group(2))) if m else None
        if found is None or request.method not in ("GET", "HEAD"):
            rec.status = 404
            await self._notify()
            return web.Response(status=404, text="Not Found")
        data, ctype = found
        rec.status = 200
        await self._notify()
        return web.Response(body=data, headers={"Content-Type": ctype})


def _image_size(data: bytes) -> tuple[int, int] | None:
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover
        return None
    try:
        with Image.open(io.BytesIO(data)) as im:
            return im.size
    except Exception:
        return None


def _guess_image_type(data: bytes) -> str | None:
    if data.startswith(b"\x89PNG"):
        return "image/png"
    if data.startswith(b"\xff\xd8"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    return None
