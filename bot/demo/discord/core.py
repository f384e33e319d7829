"""The state of the fake Discord, its addresses, and the waiting and inspection helpers tests use."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any

from aiohttp import web

from bot.demo.discord.payloads import ATTACHMENT_SIZE_LIMIT, DEFAULT_TOKEN, FakeRole, FakeUser, Snowflakes, World
from bot.demo.discord.records import (
    FaultRule,
    GatewaySession,
    Handler,
    InteractionHandle,
    KnownSession,
    RateLimitRule,
    RecordedRequest,
)
from bot.demo.discord.validation import Checks


class FakeCore(Checks):
    """State shared by every part of ``FakeDiscord`` (see ``bot/demo/discord/__init__.py``)."""

    def __init__(self, token: str = DEFAULT_TOKEN, *, world: World | None = None) -> None:
        self.token = token
        self.world = world or World()
        self.snowflakes: Snowflakes = self.world.snowflakes
        # world shortcuts (the primary guild)
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
        self.recommended_shards = 1  # the "shards" GET /gateway/bot answers
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
        self.cdn_hold: asyncio.Event | None = None  # when set: CDN answers wait until the event is set
        self.cdn_open = 0  # CDN requests being answered now, and the most at once
        self.cdn_open_max = 0
        self.interactions: dict[str, InteractionHandle] = {}  # by token
        self._interactions_by_id: dict[int, InteractionHandle] = {}
        self._dm_channels: dict[int, dict[str, Any]] = {}
        # machinery
        self._rules: list[RateLimitRule] = []
        self.faults: list[FaultRule] = []
        self._webhook_limit: tuple[int, float] | None = None
        self._webhook_windows: dict[str, tuple[float, int]] = {}
        self._sessions: list[GatewaySession] = []
        self._known_sessions: dict[str, KnownSession] = {}
        self._changed: asyncio.Condition | None = None
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []

    # ------------------------------------------------------------------------------------ addresses
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

    # --------------------------------------------------------------------------------- inspection
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

    def forget_records(self) -> None:
        """Let go of what was recorded so far: requests and the files they uploaded, the gateway events sent,
        message histories and CDN bytes. For a long benchmark, whose harness would otherwise keep every image
        the bot uploaded (GBs after a few thousand jobs); the messages themselves stay."""
        self.requests.clear()
        self.gateway_events_sent.clear()
        self.message_history.clear()
        self.cdn_files.clear()

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
