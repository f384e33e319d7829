"""The fake Images API in a process of its own, so its work never shares an event loop with the fake Discord.

``python -m bench.imagesapi [options]`` prints one JSON line ``{"base_url": ...}`` once the image pool is
drawn, then answers commands on stdin, one per line, with one JSON line each:

* ``dump``: the events written since the last dump (``SentEvent`` fields; times are ``time.monotonic()``,
  which is system-wide on Linux, so they compare with the fake Discord's), this process's loop lag
  samples and CPU seconds, and any request the fake rejected;
* ``seed N``: reseed the random delays (each run starts from the same pattern);
* ``quit``: stop.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import os
import random
import sys
import time
from typing import Any

from bench.lag import LagMonitor
from bot.demo.images import FakeImagesAPI


def cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


async def serve(args: argparse.Namespace) -> None:
    random.seed(args.seed)  # the fake's delays: the same arrival pattern run after run
    fake = FakeImagesAPI(realistic=True)
    fake.delay_first_event = args.delay_first
    fake.delay_between_events = args.delay_between
    fake.jitter = args.jitter
    fake.delay_response = args.delay_response
    fake.image_pool = args.pool
    started = time.monotonic()
    await fake.prewarm(args.size, "png", args.partials)
    warm = time.monotonic() - started
    base_url = await fake.start()
    lag = LagMonitor()
    lag.start()
    _write({"base_url": base_url, "prewarm_seconds": round(warm, 2), "pid": os.getpid()})

    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    sent_events = 0
    sent_lag = 0
    sent_errors = 0
    try:
        while True:
            line = await reader.readline()
            command = line.decode().strip()
            if not line or command == "quit":
                return
            if command.startswith("seed "):
                random.seed(int(command.split()[1]))
                _write({"ok": True})
            elif command == "dump":
                events = [dataclasses.asdict(e) for e in fake.events[sent_events:]]
                samples = lag.samples[sent_lag:]
                errors = fake.validation_errors[sent_errors:]
                sent_events, sent_lag, sent_errors = len(fake.events), len(lag.samples), len(fake.validation_errors)
                _write({"events": events, "lag": samples, "cpu": cpu_seconds(), "validation_errors": errors})
            else:
                _write({"error": f"unknown command {command!r}"})
    finally:
        await lag.stop()
        await fake.stop()


def _write(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.imagesapi", description=__doc__)
    parser.add_argument("--pool", type=int, default=4, help="distinct pictures per stage, drawn once")
    parser.add_argument("--size", default="1536x1024")
    parser.add_argument("--partials", type=int, default=2)
    parser.add_argument("--delay-first", type=float, default=3.0, help="mean seconds before the first event")
    parser.add_argument("--delay-between", type=float, default=1.5, help="mean seconds between events")
    parser.add_argument("--jitter", type=float, default=0.5, help="delays vary by ± this fraction")
    parser.add_argument(
        "--delay-response", type=float, default=None, help="seconds to a non-streaming answer (default: delay-first)"
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the delays")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
