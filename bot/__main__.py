"""``python -m bot``: read settings, open the database and HTTP session, run the bot.

Exit status: 0 on a clean stop, 2 for a configuration problem (one line on stderr, no traceback),
1 for anything else.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import AsyncIterator

import aiohttp
import discord

from bot.app import ImageBot, Services, apply_endpoint_overrides
from bot.config import ConfigError, Settings, describe, load_settings
from bot.db import open_database
from bot.images.client import ImagesClient
from bot.images.models import get_model
from bot.jobs import JobService
from bot.quota import QuotaStore

log = logging.getLogger("bot")


class _SecretFilter(logging.Filter):
    """Belt and braces: scrub the token and API key from any log record."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if len(s) >= 8]

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            msg = record.getMessage()
            if any(s in msg for s in self.secrets):
                for s in self.secrets:
                    msg = msg.replace(s, "[secret]")
                record.msg, record.args = msg, None
        return True


def setup_logging(settings: Settings) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    handler.addFilter(_SecretFilter([settings.discord_token, settings.openai_api_key]))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)
    # discord.py at DEBUG logs every payload; keep it at INFO unless asked.
    logging.getLogger("discord").setLevel(max(logging.INFO, root.level))


@contextlib.asynccontextmanager
async def images_backend(settings: Settings) -> AsyncIterator[str]:
    """The Images API base URL; in demo mode, a built-in fake image service on 127.0.0.1."""
    if not settings.demo_mode:
        yield settings.openai_base_url
        return
    from bot.fakeapi import FakeImagesAPI

    fake = FakeImagesAPI(gateway=settings.demo_gateway)
    base = await fake.start()
    log.warning(
        "DEMO_MODE: images come from the built-in fake image service at %s (imitating %s), not OpenAI",
        base,
        settings.demo_gateway,
    )
    try:
        yield base
    finally:
        await fake.stop()


async def run(settings: Settings) -> None:
    apply_endpoint_overrides(settings)
    model = get_model(settings.image_model, settings.price_overrides or None)
    if not model.known:
        log.warning("unknown model %r: using conservative defaults for sizes and prices", settings.image_model)
    timeout = aiohttp.ClientTimeout(total=None, connect=30, sock_connect=30)
    async with (
        aiohttp.ClientSession(timeout=timeout) as http,
        open_database(settings.database_path) as db,
        images_backend(settings) as base_url,
    ):
        client = ImagesClient(
            http,
            base_url,
            settings.openai_api_key,
            max_retries=settings.api_max_retries,
            stall_timeout=settings.api_stall_timeout,
            request_timeout=settings.api_timeout,
        )
        quota = QuotaStore(
            db, default_daily=settings.default_daily_limit, default_monthly=settings.default_monthly_limit
        )
        jobs = JobService(
            client=client,
            quota=quota,
            model=model,
            model_name=settings.image_model,
            partial_images=settings.partial_images,
            max_concurrent_images=settings.max_concurrent_images,
            max_jobs_per_user=settings.max_queue_per_user,
            moderation=settings.moderation,
            output_compression=settings.output_compression,
        )
        services = Services(settings=settings, db=db, images=client, quota=quota, jobs=jobs, model=model)
        async with ImageBot(services) as bot:
            loop = asyncio.get_running_loop()
            stop = asyncio.Event()
            for sig in (signal.SIGTERM, signal.SIGINT):
                with contextlib.suppress(NotImplementedError):
                    loop.add_signal_handler(sig, stop.set)
            runner = asyncio.create_task(bot.start(settings.discord_token))
            stopper = asyncio.create_task(stop.wait())
            done, _ = await asyncio.wait({runner, stopper}, return_when=asyncio.FIRST_COMPLETED)
            if stopper in done:
                log.info("stopping")
                await bot.close()
            stopper.cancel()
            await runner  # re-raises a failure to start (bad token, unreachable Discord)


def main() -> int:
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"imagebot: configuration error: {exc}", file=sys.stderr)
        return 2
    setup_logging(settings)
    log.info("starting with %s", describe(settings))
    try:
        asyncio.run(run(settings))
    except discord.LoginFailure:
        print("imagebot: Discord rejected DISCORD_TOKEN (check the bot token in .env)", file=sys.stderr)
        return 2
    except discord.PrivilegedIntentsRequired:
        print("imagebot: Discord refused a privileged intent this bot asked for", file=sys.stderr)
        return 2
    except (aiohttp.ClientConnectionError, OSError) as exc:
        print(f"imagebot: cannot reach Discord or the database: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
