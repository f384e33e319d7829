"""``python -m bot playground``: the local Discord, the image service and the real bot, as one page."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from pathlib import Path

from bot.demo.playground.botproc import ImageService
from bot.demo.playground.server import Playground, reset

DEFAULT_FOLDER = Path(".imagebot-playground")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bot playground",
        description=(
            "The whole bot in a browser: a local Discord, the built-in image service and the real bot, with no "
            "Discord application and no API key. With OPENAI_API_KEY (and optionally OPENAI_BASE_URL) in the "
            "environment, images come from that API instead, and cost money."
        ),
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine)")
    parser.add_argument("--port", type=int, default=8090, help="port to listen on (default: 8090; 0: any free port)")
    parser.add_argument(
        "--dir", type=Path, default=DEFAULT_FOLDER, help=f"where its database, uploads and log live ({DEFAULT_FOLDER})"
    )
    parser.add_argument("--reset", action="store_true", help="clear that folder first: a fresh start")
    parser.add_argument(
        "--no-example",
        dest="example",
        action="store_false",
        help="do not start with an example picture in an empty channel (there is none with a real API anyway)",
    )
    return parser


def real_api_from_env() -> ImageService | None:
    key = os.environ.get("OPENAI_API_KEY", "").strip()
    if not key:
        return None
    base = os.environ.get("OPENAI_BASE_URL", "").strip() or "https://api.openai.com/v1"
    return ImageService(base, key, real=True)


async def serve(args: argparse.Namespace) -> None:
    playground = Playground(args.dir.resolve(), host=args.host, port=args.port, real_api=real_api_from_env())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        url = await playground.start()
        if playground.real_api is not None:
            print(f"Real API at {playground.real_api.base_url}: images made in the playground cost money.", flush=True)
        if args.host not in ("127.0.0.1", "localhost", "::1"):
            print(
                f"Listening on {args.host}: anyone who can reach it can act as any person of the playground.",
                flush=True,
            )
        print(f"Starting the bot (log: {playground.folder / 'bot.log'}) ...", flush=True)
        await playground.wait_bot_ready()
        if args.example:
            await playground.post_example()
        print(f"imagebot playground: open {url}", flush=True)
        bot_exit = asyncio.create_task(_bot_exited(playground))
        stopper = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait({bot_exit, stopper}, return_when=asyncio.FIRST_COMPLETED)
        for task in (bot_exit, stopper):
            task.cancel()
        if bot_exit in done and not stop.is_set():
            print(f"the bot stopped:\n{playground.bot.log_tail() if playground.bot else ''}", file=sys.stderr)
    finally:
        await playground.stop()


async def _bot_exited(playground: Playground) -> None:
    assert playground.bot is not None and playground.bot.proc is not None
    await playground.bot.proc.wait()


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.reset:
        reset(args.dir.resolve())
        print(f"cleared {args.dir}", flush=True)
    try:
        asyncio.run(serve(args))
    except RuntimeError as exc:
        print(f"imagebot playground: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"imagebot playground: cannot listen on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    return 0
