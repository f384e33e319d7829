"""Reservation latency of the quota store, SQLite and PostgreSQL, at 1, 8 and 32 concurrent callers.

    .venv/bin/python -m bench.quota_latency [--postgres-url postgresql://...] [--per-worker 200]

Each of C workers reserves back to back (different users of one server, no limits, so every
call admits and all of them contend for the server's reservation lock); the time of each
``Ledger.reserve`` call is recorded. Prints p50/p99 per database and concurrency (and JSON
with ``--json FILE``). Without ``--postgres-url`` it starts a throwaway PostgreSQL server the way
the tests do (``tests/helpers/pgserver.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from bot.quota import Ledger, QuotaDefaults
from bot.storage.connect import open_backend
from bot.storage.database import Database
from bot.storage.sqlite import Backend

CONCURRENCY = (1, 8, 32)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def measure(store: Ledger, concurrency: int, per_worker: int) -> list[float]:
    latencies: list[float] = []

    async def worker(n: int) -> None:
        for _ in range(per_worker):
            start = time.perf_counter()
            await store.reserve(
                guild_id=1, channel_id=2, user_id=1000 + n, role_ids=(), kind="generate", prompt="bench",
                settings={"size": "1024x1024"}, model="gpt-image-1", images=1, cost_estimate=0.04,
            )  # fmt: skip
            latencies.append(time.perf_counter() - start)

    await asyncio.gather(*(worker(n) for n in range(concurrency)))
    return latencies


@asynccontextmanager
async def backend_for(kind: str, postgres_url: str | None, workdir: Path) -> AsyncIterator[Backend]:
    if kind == "sqlite":
        async with open_backend("sqlite:///bench.db", workdir / "bench.db") as backend:
            yield backend
        return
    url = postgres_url
    if url is None:
        from tests.helpers.pgserver import server

        url = await server().new_database()
    async with open_backend(url) as backend:
        yield backend


async def run(postgres_url: str | None, per_worker: int) -> list[dict[str, float | int | str]]:
    results: list[dict[str, float | int | str]] = []
    for kind in ("sqlite", "postgresql"):
        with tempfile.TemporaryDirectory() as tmp:
            async with backend_for(kind, postgres_url, Path(tmp)) as backend:
                store = Ledger(Database(backend), QuotaDefaults(daily=None, monthly=None))
                await measure(store, 4, 20)  # warm-up: connections, statement caches
                for concurrency in CONCURRENCY:
                    lat = await measure(store, concurrency, per_worker)
                    row: dict[str, float | int | str] = {
                        "database": kind,
                        "concurrency": concurrency,
                        "reservations": len(lat),
                        "p50_ms": round(statistics.median(lat) * 1000, 2),
                        "p99_ms": round(percentile(lat, 0.99) * 1000, 2),
                    }
                    results.append(row)
                    print(
                        f"{kind:<10} concurrent={concurrency:<3} n={len(lat):<5} "
                        f"p50={row['p50_ms']:>7.2f} ms  p99={row['p99_ms']:>7.2f} ms",
                        flush=True,
                    )
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.quota_latency", description=__doc__.split("\n")[0])
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
