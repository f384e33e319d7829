"""The gateway: websocket sessions, IDENTIFY (with shards) / RESUME, and dispatching events to them.

Each session serves the shard its IDENTIFY named (``shard: [id, count]``, default ``[0, 1]``): READY lists,
and GUILD_CREATE is sent for, only the guilds with ``(guild_id >> 22) % count == id``; guild events
(interactions, messages, channel updates) go to the sessions serving that guild, DM events to shard 0.
Several sessions may be open at once (several bot processes, or one ``AutoShardedClient``).
"""

from __future__ import annotations

import contextlib
import json
import secrets
from typing import Any

from aiohttp import WSMsgType, web

from bot.demo.discord.records import GatewaySession, KnownSession
from bot.demo.discord.store import Store

MESSAGE_CONTENT_INTENT = 1 << 15


class Gateway(Store):
    def _live_sessions(self) -> list[GatewaySession]:
        return [s for s in self._sessions if s.identified and not s.ws.closed]

    def sessions_for(self, guild_id: int | None) -> list[GatewaySession]:
        """Identified sessions that Discord would send this guild's events to (None: DMs, shard 0)."""
        return [s for s in self._live_sessions() if s.serves(guild_id)]

    @property
    def shards_connected(self) -> list[tuple[int, int]]:
        """``(shard id, shard count)`` of every identified session, in connection order."""
        return [s.shard for s in self._live_sessions()]

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

    async def _send(self, s: GatewaySession, frame: dict[str, Any]) -> None:
        async with s.send_lock:
            await s.ws.send_str(json.dumps(frame))

    async def _dispatch(self, s: GatewaySession, event: str, data: dict[str, Any]) -> None:
        async with s.send_lock:
            s.seq += 1
            if s.session_id:
                self._known_sessions[s.session_id] = KnownSession(s.seq, s.intents, s.shard)
            frame = {"op": 0, "t": event, "s": s.seq, "d": data}
            self.gateway_events_sent.append(frame)
            await s.ws.send_str(json.dumps(frame))
        await self._notify()

    async def dispatch_event(self, event: str, data: dict[str, Any]) -> None:
        """Send an arbitrary DISPATCH event: to the sessions serving ``data["guild_id"]`` when it names a
        guild, else to every identified session."""
        gid = data.get("guild_id")
        sessions = self.sessions_for(int(gid)) if gid is not None else self._live_sessions()
        for s in sessions:
            await self._dispatch(s, event, data)

    async def _dispatch_to_guild(self, guild_id: int | None, event: str, data: dict[str, Any]) -> None:
        for s in self.sessions_for(guild_id):
            await self._dispatch(s, event, data)

    async def drop_gateway(self, code: int = 4000, *, reconnect_op: bool = False, shard_id: int | None = None) -> None:
        """Disconnect the bot's websockets (close code, or an op 7 RECONNECT first) to exercise RESUME;
        ``shard_id`` drops only the sessions of that shard."""
        for s in list(self._sessions):
            if shard_id is not None and s.shard[0] != shard_id:
                continue
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

    def _token_ok(self, token: Any) -> bool:
        return token in (self.token, f"Bot {self.token}")

    async def _identify(self, s: GatewaySession, d: dict[str, Any]) -> None:
        if not self._token_ok(d.get("token")):
            await s.ws.close(code=4004, message=b"Authentication failed.")
            return
        shard = d.get("shard") or [0, 1]
        try:
            sid, count = int(shard[0]), int(shard[1])
        except (TypeError, ValueError, IndexError):
            sid, count = -1, 0
        if count < 1 or not 0 <= sid < count:
            await s.ws.close(code=4010, message=b"Invalid shard.")
            return
        s.shard = (sid, count)
        s.intents = int(d.get("intents", 0))
        s.session_id = secrets.token_hex(16)
        s.identified = True
        self.identifies.append(d)
        guilds = [g for g in self.world.guilds if s.serves(g)]
        ready = self.world.ready_payload(s.session_id, self.gateway_url, guild_ids=guilds, shard=s.shard)
        await self._dispatch(s, "READY", ready)
        for gid in guilds:
            await self._dispatch(s, "GUILD_CREATE", self.world.guild_payload(gid))

    async def _resume(self, s: GatewaySession, d: dict[str, Any]) -> None:
        self.resumes.append(d)
        sid = d.get("session_id")
        known = self._known_sessions.get(sid) if isinstance(sid, str) else None
        if self._token_ok(d.get("token")) and known is not None:
            s.session_id = sid
            s.seq, s.intents, s.shard = known.seq, known.intents, known.shard
            s.identified = True
            await self._dispatch(s, "RESUMED", {"_trace": ["fake-discord"]})
        else:
            await self._send(s, {"op": 9, "d": False})

    async def _on_gateway_frame(self, s: GatewaySession, frame: dict[str, Any]) -> None:
        op = frame.get("op")
        d = frame.get("d")
        if op == 1:  # heartbeat
            await self._send(s, {"op": 11, "d": None})
        elif op == 2 and isinstance(d, dict):
            await self._identify(s, d)
        elif op == 6 and isinstance(d, dict):
            await self._resume(s, d)
        elif op == 8 and isinstance(d, dict):  # request guild members
            gid = int(d.get("guild_id") or self.guild_id)
            if gid in self.world.guilds and s.serves(gid):
                members = [self.world.member_payload(u, guild_id=gid) for u in self.users.values()]
                chunk = {
                    "guild_id": str(gid),
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
