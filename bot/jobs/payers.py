"""Who pays for a job: the server's own API key, the operator's, or nobody (the job is refused).

A server that brought its own key (``/apikey set``) always uses it, with its own base URL. Otherwise the
operator's key pays when ``OPERATOR_KEY_SERVERS`` lets it:

* ``auto`` (the default) follows Discord's Public Bot switch, read from the application endpoint by the
  Discord side (``Application``): private (only the owner can add the bot) → every server; public → only
  ``ALLOWED_GUILD_IDS`` and the servers the owner approved. Until the application was read, as public.
* ``approved``: only those servers, whatever the switch says.
* ``none``: no server; every server brings its own key.

Anything else raises ``ServerNotCovered`` before any reservation or API call.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from bot import CodedError
from bot.images_api.client import ImagesClient
from bot.quota.tenants import KeyUnreadable, TenantStore

log = logging.getLogger(__name__)

OPENAI_BASE_URL = "https://api.openai.com/v1"  # a server's key without a base URL of its own


class ServerNotCovered(CodedError):
    """This server is neither paid for by the operator nor has a key of its own."""

    def __init__(self, *, keys_enabled: bool) -> None:
        super().__init__("server_not_covered", keys_enabled=keys_enabled)
        self.keys_enabled = keys_enabled


@dataclass(frozen=True, slots=True)
class Payer:
    kind: Literal["operator", "server"]
    client: ImagesClient


@dataclass(slots=True)
class Application:
    """What Discord says about the application (``GET /oauth2/applications/@me``), kept fresh by the bot."""

    bot_public: bool | None = None  # None: not read yet
    owner_ids: frozenset[int] = frozenset()
    read_at: float = 0.0  # time.monotonic() of the reading


@dataclass
class Payers:
    operator: ImagesClient
    tenants: TenantStore
    make_client: Callable[[str, str], ImagesClient]  # (base URL, key) -> a client for a server's key
    mode: str = "auto"  # OPERATOR_KEY_SERVERS
    allowed_guild_ids: frozenset[int] = frozenset()
    application: Application = field(default_factory=Application)
    _clients: dict[int, tuple[str, ImagesClient]] = field(default_factory=dict, init=False, repr=False)

    @property
    def public(self) -> bool:
        return self.application.bot_public is not False

    async def operator_pays(self, guild_id: int | None) -> bool:
        """Whether the operator's key pays for this server (None: a DM)."""
        if self.mode == "none":
            return False
        if self.mode == "auto" and not self.public:
            return True
        if guild_id is None:
            return False
        return guild_id in self.allowed_guild_ids or await self.tenants.is_approved(guild_id)

    async def payer_for(self, guild_id: int | None) -> Payer:
        """The key a job in this server uses; raises ``ServerNotCovered`` (nothing reserved yet)."""
        if guild_id is not None:
            try:
                own = await self.tenants.key_for(guild_id)
            except KeyUnreadable as exc:  # SERVER_KEY_SECRET changed: as if the server had no key
                log.warning("%s; the server is treated as having none until its managers set it again", exc)
                own = None
            if own is not None:
                base = own.base_url or OPENAI_BASE_URL
                fingerprint = hashlib.sha256(f"{base}\n{own.api_key}".encode()).hexdigest()
                cached = self._clients.get(guild_id)
                if cached is None or cached[0] != fingerprint:  # a key replaced, maybe through another process
                    cached = self._clients[guild_id] = (fingerprint, self.make_client(base, own.api_key))
                return Payer("server", cached[1])
            self._clients.pop(guild_id, None)
        if await self.operator_pays(guild_id):
            return Payer("operator", self.operator)
        raise ServerNotCovered(keys_enabled=self.tenants.keys_enabled)
