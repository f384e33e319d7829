"""Which servers the operator pays for, and the API keys servers bring: stored in the bot's database.

* ``approved_guilds``: servers the application's owner approved at run time (``ALLOWED_GUILD_IDS`` adds
  the ones named in the settings, which are not stored).
* ``guild_api_keys``: a server's own API key, encrypted with Fernet (``SERVER_KEY_SECRET``); only its last 4
  characters are kept readable, to tell managers which key is set. No secret, no stored keys: ``KeysDisabled``.
* ``operator_audit``: every approval, revocation and key change (who, what, which server, when; never a key).

Runs on the quota store's backend, like the prompt rules (``bot/rules/store.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.fernet import Fernet, InvalidToken

from bot import CodedError
from bot.storage.sqlite import Backend, Tx


class KeysDisabled(CodedError):
    """The operator set no ``SERVER_KEY_SECRET``: servers cannot store a key."""

    def __init__(self) -> None:
        super().__init__("keys_disabled")


class KeyUnreadable(Exception):
    """A stored key cannot be decrypted: ``SERVER_KEY_SECRET`` changed since it was stored."""


@dataclass(frozen=True, slots=True)
class ServerKey:
    """A server's key as the jobs use it (decrypted; never logged: no key in the repr)."""

    api_key: str
    base_url: str | None

    def __repr__(self) -> str:
        return f"ServerKey(base_url={self.base_url!r})"


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """What managers may see of a stored key."""

    last4: str
    base_url: str | None
    set_by: int
    set_at: str


@dataclass(frozen=True, slots=True)
class Approval:
    guild_id: int
    approved_by: int
    approved_at: str


def last4(key: str) -> str:
    """The most of a key ever shown: its last 4 characters (nothing of a key shorter than 12)."""
    return key[-4:] if len(key) >= 12 else ""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class TenantStore:
    def __init__(self, backend: Backend, secret: str | None) -> None:
        self.backend = backend
        self._fernet = Fernet(secret.encode()) if secret else None

    @property
    def keys_enabled(self) -> bool:
        return self._fernet is not None

    # ------------------------------------------------------------------ approvals
    async def approve(self, guild_id: int, actor_id: int) -> bool:
        """Approve a server; False when it already was (nothing changes then, nothing is audited)."""
        async with self.backend.transaction(write=True) as tx:
            row = await tx.fetchone("SELECT guild_id FROM approved_guilds WHERE guild_id = ?", (guild_id,))
            if row is not None:
                return False
            await tx.execute(
                "INSERT INTO approved_guilds (guild_id, approved_by, approved_at) VALUES (?, ?, ?)",
                (guild_id, actor_id, _now()),
            )
            await self._audit(tx, actor_id, "approve", guild_id)
        return True

    async def revoke(self, guild_id: int, actor_id: int) -> bool:
        async with self.backend.transaction(write=True) as tx:
            changed = await tx.execute("DELETE FROM approved_guilds WHERE guild_id = ?", (guild_id,))
            if changed:
                await self._audit(tx, actor_id, "revoke", guild_id)
        return bool(changed)

    async def is_approved(self, guild_id: int) -> bool:
        async with self.backend.plain() as tx:
            row = await tx.fetchone("SELECT 1 FROM approved_guilds WHERE guild_id = ?", (guild_id,))
        return row is not None

    async def approvals(self) -> list[Approval]:
        async with self.backend.plain() as tx:
            rows = await tx.fetchall(
                "SELECT guild_id, approved_by, approved_at FROM approved_guilds ORDER BY approved_at, guild_id"
            )
        return [Approval(int(r[0]), int(r[1]), str(r[2])) for r in rows]

    # ------------------------------------------------------------------ servers' own keys
    async def set_key(self, guild_id: int, api_key: str, base_url: str | None, actor_id: int) -> None:
        """Store (or replace) a server's key, encrypted; audited without the key."""
        if self._fernet is None:
            raise KeysDisabled()
        token = self._fernet.encrypt(api_key.encode()).decode()
        async with self.backend.transaction(write=True) as tx:
            replaced = await tx.execute("DELETE FROM guild_api_keys WHERE guild_id = ?", (guild_id,))
            await tx.execute(
                "INSERT INTO guild_api_keys (guild_id, key_encrypted, key_last4, base_url, set_by, set_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (guild_id, token, last4(api_key), base_url, actor_id, _now()),
            )
            await self._audit(tx, actor_id, "key_replaced" if replaced else "key_set", guild_id)

    async def remove_key(self, guild_id: int, actor_id: int) -> bool:
        async with self.backend.transaction(write=True) as tx:
            changed = await tx.execute("DELETE FROM guild_api_keys WHERE guild_id = ?", (guild_id,))
            if changed:
                await self._audit(tx, actor_id, "key_removed", guild_id)
        return bool(changed)

    async def key_info(self, guild_id: int) -> KeyInfo | None:
        async with self.backend.plain() as tx:
            row = await tx.fetchone(
                "SELECT key_last4, base_url, set_by, set_at FROM guild_api_keys WHERE guild_id = ?", (guild_id,)
            )
        return None if row is None else KeyInfo(str(row[0]), row[1], int(row[2]), str(row[3]))

    async def key_for(self, guild_id: int) -> ServerKey | None:
        """The server's key, decrypted; None when it has none (or keys are off: ``SERVER_KEY_SECRET`` unset).
        Raises ``KeyUnreadable`` when the secret changed since the key was stored."""
        if self._fernet is None:
            return None
        async with self.backend.plain() as tx:
            row = await tx.fetchone(
                "SELECT key_encrypted, base_url FROM guild_api_keys WHERE guild_id = ?", (guild_id,)
            )
        if row is None:
            return None
        try:
            key = self._fernet.decrypt(str(row[0]).encode()).decode()
        except InvalidToken:
            raise KeyUnreadable(
                f"the API key of server {guild_id} cannot be decrypted with SERVER_KEY_SECRET"
            ) from None
        return ServerKey(key, row[1])

    async def _audit(self, tx: Tx, actor_id: int, action: str, guild_id: int | None) -> None:
        await tx.execute(
            "INSERT INTO operator_audit (actor_id, action, guild_id, created_at) VALUES (?, ?, ?, ?)",
            (actor_id, action, guild_id, _now()),
        )

    async def audit(self, limit: int = 20) -> list[tuple[int, str, int | None, str]]:
        """The latest operator changes: (actor, action, server, when)."""
        async with self.backend.plain() as tx:
            rows = await tx.fetchall(
                "SELECT actor_id, action, guild_id, created_at FROM operator_audit ORDER BY id DESC LIMIT ?", (limit,)
            )
        return [(int(r[0]), str(r[1]), None if r[2] is None else int(r[2]), str(r[3])) for r in rows]
