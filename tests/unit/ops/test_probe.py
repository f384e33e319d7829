"""``python -m bot.ops.probe``: the /healthz probe against a real HTTP server, the database probe
against real SQLite files, and the module run as Docker runs it (a process, exit status 0 or 1)."""

from __future__ import annotations

import asyncio
import io
import os
import socket
import sqlite3
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from bot.ops.probe import check_database, check_http, healthz_url
from bot.storage.db import migrations, open_database

REPO_ROOT = Path(__file__).resolve().parents[3]
NEWEST = max(v for v, _, _ in migrations())


class Endpoint:
    """A tiny /healthz server on 127.0.0.1 whose answer a test sets."""

    def __init__(self) -> None:
        self.status = 200
        self.body = "ok"
        self.delay = 0.0
        self.hits = 0
        self.port = 0

    async def healthz(self, request: web.Request) -> web.Response:
        self.hits += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        return web.Response(status=self.status, text=self.body)


@pytest.fixture
async def endpoint() -> AsyncIterator[Endpoint]:
    ep = Endpoint()
    app = web.Application()
    app.router.add_get("/healthz", ep.healthz)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    ep.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield ep
    finally:
        await runner.cleanup()


async def run_module(env: dict[str, str], cwd: Path, *args: str) -> tuple[int, str]:
    """Run ``python -m bot.ops.probe`` as the container's HEALTHCHECK does."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "OPENAI_", "IMAGEBOT_"))}
    base.pop("DATABASE_URL", None)
    base.pop("HEALTH_ADDRESS", None)
    full = {
        **base,
        "PYTHONPATH": str(REPO_ROOT),
        "DISCORD_TOKEN": "tok-health",
        "OPENAI_API_KEY": "sk-health",
        "IMAGEBOT_ENV_FILE": str(cwd / "no.env"),
        **env,
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.ops.probe", *args, env=full, cwd=cwd, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


def test_healthz_url_maps_wildcards_to_loopback() -> None:
    assert healthz_url("0.0.0.0:8080") == "http://127.0.0.1:8080/healthz"
    assert healthz_url("10.1.2.3:9000") == "http://10.1.2.3:9000/healthz"
    assert healthz_url("[::]:8080") == "http://[::1]:8080/healthz"
    assert healthz_url("localhost:1") == "http://localhost:1/healthz"


async def test_http_200_is_healthy_and_503_is_not(endpoint: Endpoint) -> None:
    ok, reason = await asyncio.to_thread(check_http, f"127.0.0.1:{endpoint.port}", 5.0)
    assert ok and "answered 200" in reason
    endpoint.status, endpoint.body = 503, "gateway not connected\nmore detail"
    ok, reason = await asyncio.to_thread(check_http, f"127.0.0.1:{endpoint.port}", 5.0)
    assert not ok and reason.endswith("answered 503: gateway not connected")
    assert endpoint.hits == 2


async def test_http_timeout_and_refused_are_unhealthy(endpoint: Endpoint) -> None:
    endpoint.delay = 3.0
    started = time.monotonic()
    ok, reason = await asyncio.to_thread(check_http, f"127.0.0.1:{endpoint.port}", 0.5)
    assert not ok and "did not answer" in reason and time.monotonic() - started < 2.5
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        free = int(s.getsockname()[1])
    ok, reason = await asyncio.to_thread(check_http, f"127.0.0.1:{free}", 2.0)
    assert not ok and "did not answer" in reason


async def test_migrated_database_is_healthy(tmp_path: Path) -> None:
    db = tmp_path / "bot.storage.db"
    async with open_database(db):
        ok_open, reason_open = check_database(db, 2.0)  # while the bot holds it (WAL files present)
    ok, reason = check_database(db, 2.0)  # after a clean stop
    assert ok_open and ok, (reason_open, reason)
    assert f"schema version {NEWEST}" in reason


def test_missing_old_and_broken_databases_are_unhealthy(tmp_path: Path) -> None:
    missing = tmp_path / "none" / "bot.storage.db"
    ok, reason = check_database(missing, 2.0)
    assert not ok and "does not exist" in reason and not missing.parent.exists()

    old = tmp_path / "old.db"
    with sqlite3.connect(old) as conn:
        conn.execute("CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        conn.execute(f"PRAGMA user_version = {NEWEST - 1}")
    ok, reason = check_database(old, 2.0)
    assert not ok and f"schema version {NEWEST - 1}, the bot needs {NEWEST}" in reason

    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database" * 100)
    ok, reason = check_database(junk, 2.0)
    assert not ok and "cannot be read" in reason


async def test_module_checks_the_endpoint_when_health_address_is_set(tmp_path: Path, endpoint: Endpoint) -> None:
    code, out = await run_module({"HEALTH_ADDRESS": f"0.0.0.0:{endpoint.port}"}, tmp_path)
    assert code == 0 and out.startswith("healthy:") and endpoint.hits == 1
    endpoint.status, endpoint.body = 503, "database unreachable"
    code, out = await run_module({"HEALTH_ADDRESS": f"0.0.0.0:{endpoint.port}"}, tmp_path)
    assert code == 1 and "503: database unreachable" in out


async def test_module_checks_the_database_when_the_endpoint_is_off(tmp_path: Path) -> None:
    db = tmp_path / "data" / "bot.storage.db"
    env = {"DATABASE_URL": f"sqlite:///{db}"}
    code, out = await run_module(env, tmp_path)
    assert code == 1 and "does not exist" in out and not db.exists()
    async with open_database(db):
        pass
    code, out = await run_module(env, tmp_path)
    assert code == 0 and out.startswith("healthy: database") and "--timeout" not in out
    code, out = await run_module({"DATABASE_URL": "sqlite:///data/bot.storage.db"}, tmp_path)  # relative to the cwd
    assert code == 0, out


async def test_a_postgresql_database_is_checked_without_writing(tmp_path: Path) -> None:
    from bot.ops.doctor import check_postgres
    from bot.ops.doctor_api import Report
    from bot.storage.postgres import PostgresBackend
    from tests.helpers import pgserver

    url = await pgserver.server().new_database()
    code, out = await run_module({"DATABASE_URL": url}, tmp_path)
    assert code == 1 and "is at schema version 0, the bot needs" in out  # empty: not migrated yet
    backend = await PostgresBackend.connect(url)
    await backend.close()
    code, out = await run_module({"DATABASE_URL": url}, tmp_path)
    assert code == 0 and out.startswith("healthy: database postgresql://"), out
    gone = url.rsplit("/", 1)[0] + "/no_such_database"
    code, out = await run_module({"DATABASE_URL": gone}, tmp_path)
    assert code == 1 and "cannot be read: InvalidCatalogNameError" in out
    # the doctor: writable and migrated, or which database is missing
    for target, expected in ((url, "ok   database: postgresql://"), (gone, "FAIL database:")):
        out_file = io.StringIO()
        await check_postgres(target, Report(out_file, secrets=[]))
        assert out_file.getvalue().startswith(expected), out_file.getvalue()
    assert "does not exist: create it" in out_file.getvalue()


async def test_module_reports_a_configuration_error(tmp_path: Path) -> None:
    code, out = await run_module({"HEALTH_ADDRESS": "nonsense"}, tmp_path)
    assert code == 1 and out.startswith("unhealthy: configuration error: HEALTH_ADDRESS must look like host:port")
