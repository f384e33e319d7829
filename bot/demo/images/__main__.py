"""Run the fake Images API standalone: ``python -m bot.demo.images [--host H] [--port P] [--realistic]
[--gateway new-api|one-api|litellm]``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging

from .gateways import GATEWAYS
from .server import FakeImagesAPI


async def _serve(args: argparse.Namespace) -> None:
    fake = FakeImagesAPI(
        api_key=args.api_key, realistic=args.realistic, done_marker=args.done_marker, gateway=args.gateway
    )
    fake.gateway.json_channel = args.json_channel
    fake.gateway.url_items = args.url_items
    fake.delay_first_event = args.delay
    fake.delay_between_events = args.delay
    base_url = await fake.start(args.host, args.port)
    print(f"Fake OpenAI Images API listening. Use OPENAI_BASE_URL={base_url}", flush=True)
    if args.api_key is None:
        print("Any API key is accepted (e.g. OPENAI_API_KEY=sk-fake).", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await fake.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bot.demo.images", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8089)
    parser.add_argument("--realistic", action="store_true", help="realistic PNG sizes (1.5-3 MB)")
    parser.add_argument("--done-marker", action="store_true", help="end streams with data: [DONE]")
    parser.add_argument("--delay", type=float, default=1.0, help="seconds before each stream event")
    parser.add_argument("--api-key", default=None, help="require this bearer key")
    parser.add_argument("--gateway", choices=GATEWAYS, default="openai", help="the gateway to imitate")
    parser.add_argument("--json-channel", action="store_true", help="new-api: the upstream channel answers JSON")
    parser.add_argument("--url-items", action="store_true", help="images as links (url) instead of b64_json")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args))


if __name__ == "__main__":
    main()
