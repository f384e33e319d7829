"""Copy an SQLite database into an empty PostgreSQL one: ``python -m bot.storage.copy SRC DST``.

``SRC`` is ``sqlite:///relative.db`` or ``sqlite:////absolute.db`` (as ``DATABASE_URL``), ``DST``
``postgresql://user:password@host:port/database``. Both are first migrated to the newest schema
(so an older SQLite file is upgraded in place, as the bot would on start). The copy is one
PostgreSQL transaction: the ledger, limits, resets, audit log, server settings and the key-value
table and the prompt rules, ids kept, identity counters moved past them; then the row counts of source and target
are compared. Instance leases are not copied (they belong to running processes), nor quota counters (the bot
starts each again from the ledger when it first needs it).

A target that already holds any of those rows is refused, and nothing is written: run it twice
and the second run says so and exits 1.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

import aiosqlite

from bot.config.settings import parse_database_url
from bot.storage.db import open_database
from bot.storage.postgres import PostgresBackend

# Parents before children (jobs.parent_job_id references jobs.id: copied in id order).
TABLES: tuple[str, ...] = (
    "kv",
    "guild_settings",
    "quota_limits",
    "jobs",
    "quota_resets",
    "audit_log",
    "prompt_rules",
    "approved_guilds",
    "guild_api_keys",  # still encrypted: the same SERVER_KEY_SECRET reads them on PostgreSQL
    "operator_audit",
    "guild_models",
)
_IDENTITY_TABLES: tuple[str, ...] = ("jobs", "quota_resets", "audit_log", "prompt_rules", "operator_audit")
_FLOAT_COLUMNS = frozenset({"cost_estimate", "cost_actual", "budget_usd"})
_BATCH = 1000


class TargetNotEmpty(Exception):
    pass


async def _sqlite_rows(conn: aiosqlite.Connection, table: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    order = " ORDER BY id" if table in _IDENTITY_TABLES else ""
    async with conn.execute(f"SELECT * FROM {table}{order}") as cur:  # table names are our constants
        columns = [d[0] for d in cur.description]
        data = [tuple(r) for r in await cur.fetchall()]
    floats = [i for i, c in enumerate(columns) if c in _FLOAT_COLUMNS]
    if floats:  # SQLite may keep a REAL that is whole as an integer
        data = [tuple(float(v) if i in floats and v is not None else v for i, v in enumerate(r)) for r in data]
    return columns, data


async def _counts(fetch: Any) -> dict[str, int]:
    return {table: int(await fetch(f"SELECT COUNT(*) FROM {table}")) for table in TABLES}


async def copy_database(sqlite_path: Path, postgres_url: str) -> dict[str, int]:
    """Copy every table; returns the rows per table. Raises TargetNotEmpty, or RuntimeError when
    the counts disagree afterwards (the transaction is then rolled back)."""
    async with open_database(sqlite_path) as src:
        target = await PostgresBackend.connect(postgres_url, min_size=1, max_size=2)
        try:
            async with target.pool.acquire() as conn, conn.transaction():
                # Block a second copy (or a bot) from writing the tables until this one commits.
                await conn.execute(f"LOCK TABLE {', '.join(TABLES)} IN EXCLUSIVE MODE")
                existing = await _counts(conn.fetchval)
                if any(existing.values()):
                    held = ", ".join(f"{t}: {n}" for t, n in existing.items() if n)
                    raise TargetNotEmpty(f"the PostgreSQL database is not empty ({held}); nothing copied")
                copied: dict[str, int] = {}
                for table in TABLES:
                    columns, data = await _sqlite_rows(src, table)
                    copied[table] = len(data)
                    if not data:
                        continue
                    placeholders = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
                    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders})"
                    for start in range(0, len(data), _BATCH):
                        await conn.executemany(sql, data[start : start + _BATCH])
                for table in _IDENTITY_TABLES:
                    await conn.execute(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)"
                    )
                landed = await _counts(conn.fetchval)
                if landed != copied:
                    raise RuntimeError(f"row counts differ after the copy: source {copied}, target {landed}")
        finally:
            await target.close()
    return copied


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.storage.copy", description=__doc__.split("\n")[0])
    parser.add_argument("sqlite_url", help="sqlite:///path/to/imagebot.db")
    parser.add_argument("postgres_url", help="postgresql://user:password@host:port/database (empty)")
    args = parser.parse_args(argv)
    try:
        path = parse_database_url(args.sqlite_url, Path.cwd())
    except ValueError as exc:
        print(f"SQLITE_URL {exc}", file=sys.stderr)
        return 2
    if not path.exists():
        print(f"no SQLite database at {path}", file=sys.stderr)
        return 2
    if not args.postgres_url.startswith(("postgresql://", "postgres://")):
        print("POSTGRES_URL must start with postgresql://", file=sys.stderr)
        return 2
    try:
        copied = asyncio.run(copy_database(path, args.postgres_url))
    except TargetNotEmpty as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 1
    for table, n in copied.items():
        print(f"{table}: {n} row(s) copied, counts match")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
