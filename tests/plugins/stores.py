"""Fixtures that run a storage test against both databases: SQLite and a real PostgreSQL.

A test that names ``database`` (or ``open_backend``, or ``store``) runs twice, once per ``dialect``. The
PostgreSQL server is ``tests/helpers/pgserver.py``'s, started once per test process; every test gets a
database of its own. The helpers a test imports (``reserve``, ``rows``, ``Clock``...) are in
``tests/helpers/stores.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.quota import Quota
from tests.helpers import pgserver
from tests.helpers.stores import BackendOpener, Clock, connect, quota_on

DIALECTS = ("sqlite", "postgresql")


@pytest.fixture
def clock() -> Clock:
    """A fake clock at 2024-06-15 12:00 UTC, moved only by the test (``clock.advance(hours=12)``)."""
    return Clock(datetime(2024, 6, 15, 12, 0, tzinfo=UTC))


@pytest.fixture(params=DIALECTS)
def dialect(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def database(dialect: str, tmp_path: Path) -> str:
    """Where the test's database lives: an SQLite file path, or a fresh PostgreSQL database's URL."""
    if dialect == "postgresql":
        return await pgserver.server().new_database()
    return str(tmp_path / "bot.storage.db")


@pytest.fixture
def open_backend(dialect: str, database: str) -> BackendOpener:
    """Opens another backend on the test's database (as a second process would)."""
    return lambda: connect(dialect, database)


@pytest.fixture
async def store(open_backend: BackendOpener, clock: Clock) -> AsyncIterator[Quota]:
    """The quota repositories on a migrated backend of the test's database, with the fake clock."""
    async with open_backend() as backend:
        yield quota_on(backend, default_daily=5, default_monthly=50, clock=clock)
