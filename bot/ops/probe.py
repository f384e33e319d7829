"""``python -m bot.ops.probe``: the container's health check; exit status 0 = healthy, 1 = not.

With ``HEALTH_ADDRESS`` set it asks the bot's own ``/healthz`` endpoint (a wildcard listen address such as
``0.0.0.0`` is asked on the loopback address). Without it, it opens the configured SQLite database
read-only and checks that it exists and has every migration shipped in ``bot/migrations`` applied
(``PRAGMA user_version``, see ``bot/storage/db.py``); a PostgreSQL ``DATABASE_URL`` is asked the same over a
connection that writes nothing. It never creates or writes the database. One line on
stdout says why; Docker keeps it in the container's health log.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import urllib.error
import urllib.request
from pathlib import Path

from bot.config.redaction import redact
from bot.config.settings import ConfigError, load_settings
from bot.storage.db import migrations

_WILDCARDS = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "*": "127.0.0.1", "::": "::1", "[::]": "::1"}


def healthz_url(address: str) -> str:
    """``host:port`` as the bot listens on it -> the URL to ask from inside the same container."""
    host, _, port = address.rpartition(":")
    host = _WILDCARDS.get(host, host)
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}/healthz"


def check_http(address: str, timeout: float) -> tuple[bool, str]:
    """GET ``/healthz``: healthy only on 200; the reason is the first line of the answer."""
    url = healthz_url(address)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            status, body = resp.status, resp.read(2000)
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read(2000)
    except (OSError, ValueError) as exc:  # refused, timed out, unreachable
        return False, f"{url} did not answer: {getattr(exc, 'reason', exc)}"
    first = body.decode("utf-8", "replace").strip().splitlines()[:1]
    reason = f": {first[0][:200]}" if first else ""
    return status == 200, f"{url} answered {status}{reason}"


def check_database(path: Path, timeout: float) -> tuple[bool, str]:
    """The database exists, opens read-only and is migrated to the newest shipped schema."""
    if not path.is_file():
        return False, f"database {path} does not exist (the bot creates it at start)"
    newest = max((version for version, _, _ in migrations()), default=0)
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=timeout)
        try:
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        return False, f"database {path} cannot be read: {exc}"
    if version < newest:
        return False, f"database {path} is at schema version {version}, the bot needs {newest}"
    return True, f"database {path} is at schema version {version}"


def check_postgres(url: str, timeout: float) -> tuple[bool, str]:
    """The PostgreSQL database answers and has every migration of ``bot/storage/migrations/postgresql`` applied."""
    import asyncio

    from bot.config.parsers import without_password
    from bot.storage.postgres import probe

    shown = without_password(url)
    newest = max((version for version, _, _ in migrations("postgresql")), default=0)
    try:
        version = asyncio.run(asyncio.wait_for(probe(url, connect_timeout=timeout, write=False), timeout))
    except Exception as exc:  # refused, timed out, authentication: one line, whatever it is
        return False, f"database {shown} cannot be read: {type(exc).__name__}"
    if version < newest:
        return False, f"database {shown} is at schema version {version}, the bot needs {newest}"
    return True, f"database {shown} is at schema version {version}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.ops.probe", description="the container health check")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds to wait (default 5)")
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"unhealthy: configuration error: {redact(str(exc))}")
        return 1
    if settings.health_address:
        ok, reason = check_http(settings.health_address, args.timeout)
    elif settings.database_path is None:
        ok, reason = check_postgres(settings.database_url, args.timeout)
    else:
        ok, reason = check_database(settings.database_path, args.timeout)
    print(("healthy: " if ok else "unhealthy: ") + redact(reason))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
