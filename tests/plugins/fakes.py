"""The fakes alone, without the bot: ``fake`` (the Images API) and ``fd`` (Discord), for tests of the fakes
themselves and of the services that talk to them; and ``session``, the one aiohttp session those tests share."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from bot.demo.discord import FakeDiscord
from bot.demo.images import FakeImagesAPI

FAKE_API_KEY = "sk-test-0123456789abcdef"


@pytest.fixture
async def fake() -> AsyncIterator[FakeImagesAPI]:
    """The fake Images API alone (no bot), requiring ``FAKE_API_KEY``; fails the test on invalid requests."""
    api = FakeImagesAPI(api_key=FAKE_API_KEY)
    await api.start()
    yield api
    await api.stop()
    assert api.validation_errors == []


@pytest.fixture
async def fd() -> AsyncIterator[FakeDiscord]:
    """A fake Discord alone (for tests of the fake itself); it must end with no schema or mention problems."""
    discord = FakeDiscord()
    await discord.start()
    try:
        yield discord
    finally:
        await discord.stop()
    assert discord.validation_errors == [] and discord.mention_violations == []


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """An aiohttp session closed after the test (the client under test gets it, as the bot's would)."""
    async with aiohttp.ClientSession() as s:
        yield s
