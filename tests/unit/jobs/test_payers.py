"""Who pays for a job (``bot/jobs/payers.py``) and the servers' keys at rest (``bot/quota/tenants.py``), on both
databases: the modes of ``OPERATOR_KEY_SERVERS``, a server's own key first, approvals, and a key that is
encrypted (never in the database's bytes), replaced, removed, and unreadable under another secret."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cryptography.fernet import Fernet

from bot.images_api.client import ImagesClient
from bot.jobs.payers import OPENAI_BASE_URL, Application, Payers, ServerNotCovered
from bot.quota.tenants import KeysDisabled, KeyUnreadable, TenantStore, last4
from bot.storage.sqlite import Backend
from tests.helpers.stores import GUILD, BackendOpener, database, dialect, open_backend

__all__ = ["database", "dialect", "open_backend"]  # fixtures used here

KEY = "sk-unit-server-key-0123456789abcdefLAST"
OWNER = 42


async def rows(backend: Backend, sql: str) -> list[Any]:
    async with backend.plain() as tx:
        return await tx.fetchall(sql)


def payers_for(tenants: TenantStore, http: aiohttp.ClientSession, **kw: object) -> Payers:
    made: list[tuple[str, str]] = []

    def make(base: str, key: str) -> ImagesClient:
        made.append((base, key))
        return ImagesClient(http, base, key)

    operator = ImagesClient(http, "https://operator.example/v1", "sk-op")
    payers = Payers(operator=operator, tenants=tenants, make_client=make, **kw)  # type: ignore[arg-type]
    payers.made = made  # type: ignore[attr-defined]
    return payers


async def test_modes_and_approvals(open_backend: BackendOpener) -> None:
    async with open_backend() as backend, aiohttp.ClientSession() as http:
        tenants = TenantStore(backend, None)
        auto = payers_for(tenants, http, allowed_guild_ids=frozenset({GUILD + 1}))
        # Until the application is read it counts as public: only listed (and approved) servers.
        assert not await auto.operator_pays(GUILD) and await auto.operator_pays(GUILD + 1)
        auto.application = Application(bot_public=False)
        assert await auto.operator_pays(GUILD) and await auto.operator_pays(None)
        auto.application = Application(bot_public=True)
        with pytest.raises(ServerNotCovered) as info:
            await auto.payer_for(GUILD)
        assert info.value.keys_enabled is False
        assert await tenants.approve(GUILD, OWNER) and not await tenants.approve(GUILD, OWNER)
        assert (await auto.payer_for(GUILD)).kind == "operator"
        assert await tenants.revoke(GUILD, OWNER) and not await tenants.revoke(GUILD, OWNER)
        assert not await auto.operator_pays(GUILD)

        approved = payers_for(tenants, http, mode="approved", application=Application(bot_public=False))
        assert not await approved.operator_pays(GUILD)  # the switch does not matter
        none = payers_for(tenants, http, mode="none", allowed_guild_ids=frozenset({GUILD}))
        assert not await none.operator_pays(GUILD)
        actions = [r[0] for r in await rows(backend, "SELECT action FROM operator_audit ORDER BY id")]
        assert actions == ["approve", "revoke"]  # a repeated approval or revocation changes nothing


async def test_a_servers_key_is_encrypted_used_first_replaced_and_removed(
    open_backend: BackendOpener, database: str, dialect: str
) -> None:
    secret = Fernet.generate_key().decode()
    async with open_backend() as backend, aiohttp.ClientSession() as http:
        tenants = TenantStore(backend, secret)
        payers = payers_for(tenants, http, mode="none")
        await tenants.set_key(GUILD, KEY, None, OWNER)
        payer = await payers.payer_for(GUILD)
        assert payer.kind == "server" and payer.client.base_url == OPENAI_BASE_URL
        assert payers.made == [(OPENAI_BASE_URL, KEY)]  # type: ignore[attr-defined]
        assert (await payers.payer_for(GUILD)).client is payer.client  # one client per key
        [stored] = await rows(backend, "SELECT key_encrypted, key_last4 FROM guild_api_keys")
        assert KEY not in stored[0] and stored[1] == KEY[-4:] == last4(KEY)
        assert "sk-" not in repr(await tenants.key_for(GUILD))

        await tenants.set_key(GUILD, KEY + "2", "https://gw.example/v1", OWNER)
        replaced = await payers.payer_for(GUILD)
        assert replaced.client is not payer.client and replaced.client.base_url == "https://gw.example/v1"
        assert await tenants.remove_key(GUILD, OWNER) and not await tenants.remove_key(GUILD, OWNER)
        with pytest.raises(ServerNotCovered) as info:
            await payers.payer_for(GUILD)
        assert info.value.keys_enabled

        await tenants.set_key(GUILD, KEY, None, OWNER)
        rotated = TenantStore(backend, Fernet.generate_key().decode())
        with pytest.raises(KeyUnreadable):
            await rotated.key_for(GUILD)
        with pytest.raises(ServerNotCovered):  # under another secret the key is unreadable: as if it had none
            await payers_for(rotated, http, mode="none").payer_for(GUILD)
        assert await TenantStore(backend, None).key_for(GUILD) is None  # no secret: no stored keys are used
        with pytest.raises(KeysDisabled):
            await TenantStore(backend, None).set_key(GUILD, KEY, None, OWNER)
        audit = [r[0] for r in await rows(backend, "SELECT action FROM operator_audit ORDER BY id")]
        assert audit == ["key_set", "key_replaced", "key_removed", "key_set"]
    if dialect == "sqlite":  # the file's bytes, its journal and WAL included
        files = list(Path(database).parent.glob(Path(database).name + "*"))
        assert files and all(KEY.encode() not in f.read_bytes() for f in files)


def test_last4_shows_nothing_of_a_short_key() -> None:
    assert last4("sk-abc") == "" and last4(KEY) == "LAST"
