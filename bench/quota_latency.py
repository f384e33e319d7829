"""Reservation latency of the quota store, SQLite and PostgreSQL, at 1, 8 and 32 concurrent callers.

    ./imagebot bench reservations [--postgres-url postgresql://...] [--per-worker 200] [--json FILE]
    (or .venv/bin/python -m bench.quota_latency ...)

Each of C workers reserves back to back, each a different member of one server, so every call admits;
the time of each ``Ledger.reserve`` call is recorded. Two cases: the server without a budget, and the
server with a (large) monthly budget, which every member's reservation counts against. Prints p50/p99
and this process's CPU time per reservation for each database, case and concurrency (and JSON with
``--json FILE``). Without ``--postgres-url`` it starts a throwaway PostgreSQL server the way the tests
do (``tests/helpers/pgserver.py``), and also reports that server's CPU time per reservation (all its
processes): on a machine of few cores the server and the bot share them, which bounds how many
reservations a second fit whatever the locking.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from bot.quota import Ledger, Moderation, QuotaDefaults
from bot.storage.connect import open_backend
from bot.storage.database import Database
from bot.storage.sqlite import Backend

CONCURRENCY = (1, 8, 32)
DEFAULTS = QuotaDefaults(daily=None, monthly=None)
BUDGET_GUILD = 2  # a server with a monthly budget (large: every reservation fits)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def measure(store: Ledger, concurrency: int, per_worker: int, guild: int) -> list[float]:
    latencies: list[float] = []

    async def worker(n: int) -> None:
        for _ in range(per_worker):
            start = time.perf_counter()
            await store.reserve(
                guild_id=guild, channel_id=2, user_id=1000 + n, role_ids=(), kind="generate", prompt="bench",
                settings={"size": "1024x1024"}, model="gpt-image-1", images=1, cost_estimate=0.04,
            )  # fmt: skip
            latencies.append(time.perf_counter() - start)

    await asyncio.gather(*(worker(n) for n in range(concurrency)))
    return latencies


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def server_cpu_seconds(postmaster_pid: int | None) -> float:
    """CPU seconds used so far by a PostgreSQL server (the postmaster and its children); 0 if unknown."""
    if postmaster_pid is None:
        return 0.0
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # the process ended meanwhile
        pid = int(stat.parent.name)
        if pid == postmaster_pid or int(fields[1]) == postmaster_pid:
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / CLOCK_TICKS


@asynccontextmanager
async def backend_for(kind: str, postgres_url: str | None, workdir: Path) -> AsyncIterator[tuple[Backend, int | None]]:
    """The backend, and the pid of the PostgreSQL server this bench started (None otherwise)."""
    if kind == "sqlite":
        async with open_backend("sqlite:///bench.db", workdir / "bench.db") as backend:
            yield backend, None
        return
    url, pid = postgres_url, None
    if url is None:
        from tests.helpers.pgserver import server

        pg = server()
        url = await pg.new_database()
        pid = int((pg.data_dir / "postmaster.pid").read_text().split()[0])
    async with open_backend(url) as backend:
        yield backend, pid


async def run(postgres_url: str | None, per_worker: int) -> list[dict[str, float | int | str]]:
    results: list[dict[str, float | int | str]] = []
    for kind in ("sqlite", "postgresql"):
        with tempfile.TemporaryDirectory() as tmp:
            async with backend_for(kind, postgres_url, Path(tmp)) as (backend, server_pid):
                db = Database(backend)
                await Moderation(db, DEFAULTS).set_budget(BUDGET_GUILD, 1_000_000.0, actor_id=1)
                store = Ledger(db, DEFAULTS)
                for case, guild in (("no budget", 1), ("budget", BUDGET_GUILD)):
                    await measure(store, 4, 20, guild)  # warm-up: connections, statement caches
                    for concurrency in CONCURRENCY:
                        cpu, server_cpu = time.process_time(), server_cpu_seconds(server_pid)
                        lat = await measure(store, concurrency, per_worker, guild)
                        cpu, server_cpu = time.process_time() - cpu, server_cpu_seconds(server_pid) - server_cpu
                        row: dict[str, float | int | str] = {
                            "database": kind,
                            "case": case,
                            "concurrency": concurrency,
                            "reservations": len(lat),
                            "p50_ms": round(statistics.median(lat) * 1000, 2),
                            "p99_ms": round(percentile(lat, 0.99) * 1000, 2),
                            "cpu_ms_per_reservation": round(cpu * 1000 / len(lat), 3),
                            "server_cpu_ms_per_reservation": round(server_cpu * 1000 / len(lat), 3),
                        }
                        results.append(row)
                        print(
                            f"{kind:<10} {case:<9} concurrent={concurrency:<3} n={len(lat):<5} "
                            f"p50={row['p50_ms']:>7.2f} ms  p99={row['p99_ms']:>7.2f} ms  "
                            f"cpu={row['cpu_ms_per_reservation']:.3f} ms/reservation"
                            + (f" (+ server {server_cpu * 1000 / len(lat):.3f})" if server_pid else ""),
                            flush=True,
                        )
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="./imagebot bench reservations", description=__doc__.split("\n")[0])
    parser.add_argument("--postgres-url", default=None, help="an empty database to use (default: start one)")
    parser.add_argument("--per-worker", type=int, default=200, help="reservations per concurrent caller")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    results = asyncio.run(run(args.postgres_url, max(1, args.per_worker)))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
