"""What the fake Discord records and the small value types its parts share."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from bot.demo.discord.core import FakeCore

JSON_CT = "application/json"


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
    fault: FaultRule | None = None  # the injected fault that answered it, if any

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


@dataclass(eq=False)
class FaultRule:
    """An injected error answer (see ``FakeDiscord.fail``); also the handle the test keeps."""

    method: str
    path_regex: re.Pattern[str]
    status: int
    body: Any  # JSON-able, or a str sent as text/html (a proxy's error page)
    with_files: bool | None
    times: int | None  # None: forever
    headers: dict[str, str] = field(default_factory=dict)
    hits: int = 0
    removed: bool = False
    requests: list[RecordedRequest] = field(default_factory=list)

    @property
    def active(self) -> bool:
        return not self.removed and (self.times is None or self.hits < self.times)

    @property
    def remaining(self) -> int | None:
        return None if self.times is None else max(0, self.times - self.hits)

    def matches(self, rec: RecordedRequest) -> bool:
        if not self.active or self.method not in ("*", rec.method) or not self.path_regex.search(rec.path):
            return False
        return self.with_files is None or self.with_files == bool(rec.files)

    def remove(self) -> None:
        """Stop injecting this fault (its ``hits`` and ``requests`` stay readable)."""
        self.removed = True

    def __repr__(self) -> str:
        return f"<FaultRule {self.method} {self.path_regex.pattern} -> {self.status} hits={self.hits}>"


class InteractionHandle:
    """Everything the bot did with one interaction token."""

    def __init__(self, fd: FakeCore, payload: dict[str, Any]) -> None:
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
        self.expired_as_unknown_webhook = False

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
    def msg(self) -> dict[str, Any]:
        """The @original message, which the test expects to exist (an AssertionError otherwise)."""
        message = self.original
        assert message is not None, f"{self!r} has no @original message"
        return message

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

    def expire(self, *, unknown_webhook: bool = False) -> None:
        """Make the token invalid, as after 15 minutes: later webhook calls get 401 50027 Invalid Webhook
        Token (``unknown_webhook=True``: 404 10015 Unknown Webhook, the other answer Discord gives), and
        the callback 404 10062 Unknown interaction."""
        self.expired = True
        self.expired_as_unknown_webhook = unknown_webhook

    async def wait_for(self, predicate: Callable[[InteractionHandle], Any], timeout: float = 10) -> None:  # noqa: ASYNC109
        await self.fd._wait(lambda: predicate(self), timeout, f"{self!r}")


@dataclass
class GatewaySession:
    ws: web.WebSocketResponse
    session_id: str | None = None
    seq: int = 0
    identified: bool = False
    intents: int = 0
    shard: tuple[int, int] = (0, 1)  # (shard id, shard count) from IDENTIFY
    send_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def serves(self, guild_id: int | None) -> bool:
        """Whether Discord would send this guild's events here (DMs go to shard 0)."""
        sid, count = self.shard
        if guild_id is None:
            return sid == 0
        return (guild_id >> 22) % count == sid


@dataclass
class KnownSession:
    """What RESUME restores."""

    seq: int
    intents: int
    shard: tuple[int, int]


class Fail(Exception):
    """Raised by REST helpers to answer with an error."""

    def __init__(self, status: int, body: Any) -> None:
        super().__init__(status, body)
        self.status = status
        self.body = body


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    hdrs = {"Content-Type": JSON_CT}  # exactly: discord.py reads anything else as text
    if headers:
        hdrs.update(headers)
    return web.Response(body=json.dumps(body).encode(), status=status, headers=hdrs)


def error(status: int, code: int, message: str, **extra: Any) -> tuple[int, Any]:
    return status, {"message": message, "code": code, **extra}


Handler = Callable[[RecordedRequest, "re.Match[str]"], Awaitable[tuple[int, Any]]]
