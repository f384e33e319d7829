"""``python -m bot <command>``: the one command line, and the composition root of the running bot.

``python -m bot`` with no command runs the bot (as deployments call it); ``python -m bot --help`` lists the
commands. Running: read settings, open the database and HTTP session, build the services, run the bot.
Exit status: 0 on a clean stop, 2 for a configuration problem (one line on stderr, no traceback), 1 for
anything else.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import aiohttp
import asyncpg
import discord

from bot.config.exposure import cleartext_warnings
from bot.config.redaction import RedactingFilter, redact
from bot.config.settings import ConfigError, Settings, describe, load_settings
from bot.images_api.client import ImagesClient
from bot.images_api.io_loop import ImagesLoop
from bot.images_api.stream_gate import no_stream_key
from bot.images_api.types import user_hash_key
from bot.imaging import set_decode_limit
from bot.imaging.work import PreviewRenderer
from bot.jobs.cluster import ClusterScheduler
from bot.jobs.model_choice import ModelChoice, configured_models
from bot.jobs.payers import Payers
from bot.jobs.previews import Previews
from bot.jobs.progress import LoopLag
from bot.jobs.retry import reclaim_loop
from bot.jobs.service import JobService
from bot.jobs.services import Services
from bot.ops.health_server import HealthServer
from bot.ops.job_events import JobEvents, JsonFormatter
from bot.ops.memory import MemoryTrimmer
from bot.ops.metrics import Metrics
from bot.quota import Quota, defaults_from
from bot.quota.retention import PromptRetention
from bot.quota.tenants import TenantStore
from bot.rules import RuleStore
from bot.storage.connect import open_storage
from bot.storage.db import kv_get, kv_set
from bot.storage.leases import InstanceInUse, stop_lease
from bot.storage.sqlite import Backend
from cogs.bot import ImageBot, apply_endpoint_overrides

log = logging.getLogger("bot")

T = TypeVar("T")


def setup_logging(settings: Settings) -> None:
    handler = logging.StreamHandler()
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    secrets = [settings.discord_token, settings.openai_api_key, settings.server_key_secret, settings.user_hash_secret]
    handler.addFilter(RedactingFilter([s for s in secrets if s]))
    (root := logging.getLogger()).handlers[:] = [handler]
    root.setLevel(settings.log_level)
    # discord.py at DEBUG logs every payload; keep it at INFO unless asked.
    logging.getLogger("discord").setLevel(max(logging.INFO, root.level))


@contextlib.asynccontextmanager
async def images_io(limits: aiohttp.ClientTimeout) -> AsyncIterator[tuple[ImagesLoop, aiohttp.ClientSession]]:
    """The Images API's own event loop (a thread) and its HTTP session, which lives on that loop: the
    streams' megabytes are read and parsed there, and the bot's loop stays free to answer interactions."""
    io = ImagesLoop()
    io.start()

    async def session() -> aiohttp.ClientSession:
        return aiohttp.ClientSession(timeout=limits)

    http = await io.run(session())
    try:
        yield io, http
    finally:
        await io.close(http.close)


@contextlib.asynccontextmanager
async def images_backend(settings: Settings) -> AsyncIterator[str]:
    """The Images API base URL; in demo mode, a built-in fake image service on 127.0.0.1."""
    if not settings.demo_mode:
        yield settings.openai_base_url
        return
    from bot.demo.images import FakeImagesAPI

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


def remember_streams(client: ImagesClient, backend: Backend) -> ImagesClient:
    """Keep what the client learns about streaming in the database (key-value table, one entry per base URL):
    a stream failure that may have been billed costs once, not once per restart. Recalled at the client's first
    look at its gateway (at startup for the operator's key, before the first stream for a server's key)."""
    key = no_stream_key(client.base_url)
    home = asyncio.get_running_loop()  # the database's loop; the client calls these from the Images API's

    async def on_home(coro: Coroutine[Any, Any, T]) -> T:
        if asyncio.get_running_loop() is home:
            return await coro
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, home))

    async def recall() -> str | None:
        return await on_home(kv_get(backend, key))

    async def remember(reason: str) -> None:
        await on_home(kv_set(backend, key, reason))

    client.streams.recall, client.streams.on_discovery = recall, remember
    return client


class HealthAddressError(Exception):
    """The health endpoint cannot listen on its address (in use, or not an address of this machine)."""


def discord_trace(metrics: Metrics) -> aiohttp.TraceConfig:
    """Counts Discord's 429 answers (discord.py retries them itself; we only watch)."""
    trace = aiohttp.TraceConfig()

    async def on_end(session: object, ctx: object, params: aiohttp.TraceRequestEndParams) -> None:
        if params.response.status == 429:
            metrics.discord_429.inc()

    trace.on_request_end.append(on_end)
    return trace


def gateway_connected(bot: ImageBot) -> bool:
    """READY, and every shard of this process connected."""
    shards = bot.shards
    return bool(shards) and bot.is_ready() and not bot.is_closed() and not any(s.is_closed() for s in shards.values())


@contextlib.asynccontextmanager
async def health_endpoint(settings: Settings, metrics: Metrics, bot: ImageBot) -> AsyncIterator[None]:
    """Serve /healthz and /metrics on this loop while the bot runs, when HEALTH_ADDRESS is set."""
    if not settings.health_address:
        yield
        return

    server = HealthServer(
        settings.health_address,
        metrics,
        gateway_connected=lambda: gateway_connected(bot),
        database_ping=bot.services.db.ping,
    )
    try:
        await server.start()
    except OSError as exc:
        raise HealthAddressError(f"cannot listen on HEALTH_ADDRESS {settings.health_address}: {exc.strerror}") from None
    try:
        yield
    finally:
        await server.stop()


async def run(settings: Settings) -> None:
    apply_endpoint_overrides(settings)
    set_decode_limit(settings.max_input_pixels)
    model, configured = configured_models(settings.image_model, settings.image_models, settings.price_overrides)
    timeout = aiohttp.ClientTimeout(total=None, connect=30, sock_connect=30)
    metrics = Metrics()
    async with (
        aiohttp.ClientSession(timeout=timeout) as http,  # this loop's: key checks and the like
        images_io(timeout) as (io, images_http),
        open_storage(settings, lease_ttl=settings.instance_lease_seconds) as db,
        images_backend(settings) as base_url,
        contextlib.AsyncExitStack() as stack,  # closed first: the slots before the store's pool
    ):

        def make_client(base: str, key: str) -> ImagesClient:
            # A base URL a server gave is checked at every connection (public addresses only), not only when it
            # was set; the operator's own is trusted, as is any with ALLOW_PRIVATE_BASE_URLS.
            guarded = base.rstrip("/") != base_url.rstrip("/") and not settings.allow_private_base_urls
            client = ImagesClient(
                images_http,
                base,
                key,
                max_retries=settings.api_max_retries,
                stall_timeout=settings.api_stall_timeout,
                request_timeout=settings.api_timeout,
                guarded=guarded,
                on_decode=metrics.decodes.labels("final").inc,
                io=io,
            )
            stack.push_async_callback(client.aclose)  # the sessions it fetches image links with
            return remember_streams(client, db.backend)

        client = make_client(base_url, settings.openai_api_key)
        tenants = TenantStore(db.backend, settings.server_key_secret)
        payers = Payers(
            operator=client,
            tenants=tenants,
            make_client=make_client,
            mode=settings.operator_key_servers,
            allowed_guild_ids=frozenset(settings.allowed_guild_ids),
        )
        gateway = await client.detect_gateway()  # free; a LiteLLM proxy is never asked for a stream
        log.info("Images API at %s: %s", client.base_url, f"answered by {gateway}" if gateway else "gateway unknown")
        quota = Quota.on(db, defaults_from(settings))
        retention = asyncio.create_task(PromptRetention(db, settings.prompt_retention_days).run(), name="retention")
        stack.push_async_callback(stop_lease, retention)
        # Long or regex prompt-rule matches run here, never on the event loop.
        rule_matcher = ThreadPoolExecutor(max_workers=2, thread_name_prefix="prompt-rules")
        stack.callback(rule_matcher.shutdown, wait=False, cancel_futures=True)
        rules = RuleStore(db.backend, executor=rule_matcher)
        renderer = PreviewRenderer(settings.preview_max_side, on_decode=metrics.decodes.labels("partial").inc)
        loop_lag = LoopLag(on_sample=metrics.loop_lag.observe)  # previews wait while the loop runs late
        loop_lag.start()
        stack.push_async_callback(loop_lag.stop)
        slots: ClusterScheduler | None = None
        if db.dialect == "postgresql":  # one cap and one fair queue across every process
            slots = ClusterScheduler(db, settings.max_concurrent_images)
            await slots.start()
            stack.push_async_callback(slots.close)
        elif settings.shard_ids:
            log.warning(
                "SHARD_IDS is set but DATABASE_URL is SQLite: MAX_CONCURRENT_IMAGES and the fair queue hold for "
                "this process only; several processes share them through PostgreSQL (docs/operations/scaling-out.md)"
            )
        jobs = JobService(
            client=client,
            quota=quota.ledger,
            rules=rules,
            model=model,
            model_name=settings.image_model,
            partial_images=settings.partial_images,
            max_concurrent_images=settings.max_concurrent_images,
            slot_scheduler=slots,
            payers=payers,
            max_jobs_per_user=settings.max_queue_per_user,
            moderation=settings.moderation,
            output_compression=settings.output_compression,
            events=JobEvents(metrics, log_prompts=settings.log_prompts),
            user_hash_key=user_hash_key(settings.user_hash_secret, settings.discord_token),
            previews=Previews(
                max_side=settings.preview_max_side,
                min_interval=settings.preview_min_interval,
                status_grace=settings.status_grace,
                frames_per_slot=settings.partial_images,
                renderer=renderer,
                lag=loop_lag,
            ),
            models=configured,
            memory=MemoryTrimmer.for_this_system(on_trim=metrics.memory_trims.inc),
        )
        # This process's own jobs whose settle or refund failed for good: refunded once they outlive the API
        # timeout (a sibling's are the leases' business).
        reclaimer = asyncio.create_task(
            reclaim_loop(jobs, 2 * settings.api_timeout, every=max(1.0, min(60.0, settings.api_timeout / 2)))
        )
        stack.callback(reclaimer.cancel)
        metrics.watch_queue(lambda: jobs.scheduler.waiting, lambda: jobs.scheduler.running)
        services = Services(
            settings=settings,
            images=client,
            db=db,
            ledger=quota.ledger,
            moderation=quota.moderation,
            reports=quota.reports,
            jobs=jobs,
            model=model,
            rules=rules,
            tenants=tenants,
            payers=payers,
            http=http,
            model_choice=ModelChoice(db.backend, configured),
        )
        async with ImageBot(services) as bot, health_endpoint(settings, metrics, bot):
            bot.http.http_trace = discord_trace(metrics)  # read when discord.py opens its session at login
            metrics.watch_gateway(lambda: bot.latency)
            await serve_until_stopped(bot, settings)


async def serve_until_stopped(bot: ImageBot, settings: Settings) -> None:
    """Run the bot until SIGTERM or SIGINT, then close it (running jobs get SHUTDOWN_GRACE)."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def on_signal() -> None:
        if stop.is_set():  # a second signal: exit at once (the crash recovery refunds at next start)
            log.warning("second stop signal: exiting now")
            os._exit(1)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, on_signal)
    runner = asyncio.create_task(bot.start(settings.discord_token))
    stopper = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait({runner, stopper}, return_when=asyncio.FIRST_COMPLETED)
    if stopper in done:
        log.info("stopping: running jobs get %ss to finish", settings.shutdown_grace)
        await bot.close()
    stopper.cancel()
    await runner  # re-raises a failure to start (bad token, unreachable Discord)


def run_bot(settings: Settings) -> int:
    """``run``: the bot, until SIGTERM or SIGINT. Exit status as in this module's docstring."""
    setup_logging(settings)
    log.info("starting with %s", describe(settings))
    for warning in cleartext_warnings(settings):
        log.warning("%s", warning)
    try:
        asyncio.run(run(settings))
    except discord.LoginFailure:
        print("imagebot: Discord rejected DISCORD_TOKEN (check the bot token in .env)", file=sys.stderr)
        return 2
    except (HealthAddressError, InstanceInUse) as exc:
        print(f"imagebot: {exc}", file=sys.stderr)
        return 2
    except discord.PrivilegedIntentsRequired:
        print("imagebot: Discord refused a privileged intent this bot asked for", file=sys.stderr)
        return 2
    except (aiohttp.ClientConnectionError, OSError) as exc:
        print(f"imagebot: cannot reach Discord or the database: {redact(str(exc))}", file=sys.stderr)
        return 1
    except asyncpg.PostgresError as exc:  # refused login, missing database, missing rights
        print(f"imagebot: the PostgreSQL database refused: {type(exc).__name__}: {redact(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    except Exception:  # through the log filter: the traceback redacted like every other log line
        log.exception("imagebot stopped on an unexpected error")
        return 1
    return 0


def _start(demo: bool) -> int:
    if demo:
        os.environ["DEMO_MODE"] = "true"
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"imagebot: configuration error: {redact(str(exc))}", file=sys.stderr)
        return 2
    return run_bot(settings)


def _doctor(rest: list[str]) -> int:
    from bot.ops.doctor import main as doctor_main

    return doctor_main(rest)


def _healthcheck(rest: list[str]) -> int:
    from bot.ops.probe import main as probe_main

    return probe_main(rest)


def _migrate_db(rest: list[str]) -> int:
    from bot.storage.copy import main as copy_main

    return copy_main(rest)


def _catalogs(rest: list[str]) -> int:
    from bot.messages.catalog_tool import main as catalogs_main

    return catalogs_main(rest)


def _env_example(rest: list[str]) -> int:
    from bot.config.settings import render_env_example

    sys.stdout.write(render_env_example())
    return 0


def _config_docs(rest: list[str]) -> int:
    from bot.config.reference import main as reference_main

    return reference_main(rest)


def _images_api(rest: list[str]) -> int:
    from bot.demo.images.__main__ import main as images_main

    images_main(rest)
    return 0


def _playground(rest: list[str]) -> int:
    from bot.demo.playground.cli import main as playground_main

    return playground_main(rest)


# name -> (what it does, handler of the remaining arguments). Each handler parses its own arguments, so
# ``python -m bot doctor --help`` shows the doctor's own help.
COMMANDS: dict[str, tuple[str, Callable[[list[str]], int]]] = {
    "run": ("run the bot (the default when no command is given)", lambda rest: _start(demo=False)),
    "demo": ("run the bot against the built-in image service (no OpenAI key needed)", lambda rest: _start(demo=True)),
    "doctor": ("check the settings, Discord, the API key and model, and the database", _doctor),
    "healthcheck": ("the container health check: /healthz, or the database when HEALTH_ADDRESS is unset", _healthcheck),
    "migrate-db": ("copy an SQLite database into an empty PostgreSQL one: SQLITE_URL POSTGRES_URL", _migrate_db),
    "catalogs": ("maintain the message catalogs: extract | update | check", _catalogs),
    "env-example": ("print the .env.example generated from the settings' declarations", _env_example),
    "config-docs": ("write docs/operations/configuration(.zh).md from the settings' declarations", _config_docs),
    "playground": ("the whole bot in a browser: local Discord and image service, no setup needed", _playground),
    "images-api": ("serve the built-in image service alone (for trying gateways and the benchmark)", _images_api),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bot",
        description="imagebot: OpenAI's GPT image models in Discord. Without a command, runs the bot.",
    )
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    for name, (summary, _) in COMMANDS.items():
        sub.add_parser(name, help=summary, description=summary, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    if not args:
        return _start(demo=False)
    if args[0] in ("-h", "--help") or args[0] not in COMMANDS:
        parser.parse_args(args[:1])  # prints the help, or the "invalid choice" error (exit 2)
        return 0
    name, rest = args[0], args[1:]
    if name in ("run", "demo") and rest:
        if rest[0] in ("-h", "--help"):
            print(f"usage: python -m bot {name}\n\n{COMMANDS[name][0]}; settings come from the environment and .env")
            return 0
        parser.error(f"{name} takes no arguments (settings come from the environment and .env)")
    return COMMANDS[name][1](rest)


if __name__ == "__main__":
    sys.exit(main())
