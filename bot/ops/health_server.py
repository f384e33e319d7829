"""The optional HTTP endpoint (``HEALTH_ADDRESS``): ``/healthz`` and ``/metrics``, on the bot's own loop.

``/healthz`` answers 200 when the Discord gateway is connected and the database answers a query, else 503;
the body is JSON (``{"ok": ..., "checks": {...}}``) or, when the client asks for ``text/plain``, one line
per check. ``/metrics`` is the Prometheus text format of ``bot.ops.metrics.Metrics``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from bot.ops.metrics import CONTENT_TYPE_LATEST, Metrics

log = logging.getLogger(__name__)

__all__ = ["HealthServer"]

DB_TIMEOUT = 2.0


class HealthServer:
    def __init__(
        self,
        address: str,
        metrics: Metrics,
        *,
        gateway_connected: Callable[[], bool],
        database_ping: Callable[[], Awaitable[object]],
    ) -> None:
        host, _, port = address.rpartition(":")
        self.host = host.strip("[]") or "0.0.0.0"
        self.port = int(port)
        self.metrics = metrics
        self._gateway_connected = gateway_connected
        self._database_ping = database_ping
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, shutdown_timeout=1.0)
        await site.start()
        log.info("health endpoint listening on http://%s:%d (/healthz, /metrics)", self.host, self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def check(self) -> dict[str, str]:
        """Each check's name -> "ok" or what is wrong."""
        checks: dict[str, str] = {}
        try:
            checks["gateway"] = "ok" if self._gateway_connected() else "not connected to the Discord gateway"
        except Exception as exc:  # pragma: no cover - a bug in the probe must not kill the endpoint
            checks["gateway"] = f"cannot tell: {type(exc).__name__}"
        try:
            async with asyncio.timeout(DB_TIMEOUT):
                await self._database_ping()
            checks["database"] = "ok"
        except TimeoutError:
            checks["database"] = f"no answer within {DB_TIMEOUT:g}s"
        except Exception as exc:
            checks["database"] = f"unreachable: {type(exc).__name__}"
        return checks

    async def _healthz(self, request: web.Request) -> web.Response:
        checks = await self.check()
        ok = all(v == "ok" for v in checks.values())
        status = 200 if ok else 503
        if "text/plain" in request.headers.get("Accept", "") and "json" not in request.headers.get("Accept", ""):
            lines = [f"{name}: {value}" for name, value in checks.items()]
            return web.Response(text="\n".join(["ok" if ok else "unhealthy", *lines]) + "\n", status=status)
        body = json.dumps({"ok": ok, "checks": checks})
        return web.Response(text=body, status=status, content_type="application/json")

    async def _metrics(self, request: web.Request) -> web.Response:
        body = self.metrics.render()
        return web.Response(body=body, status=200, headers={"Content-Type": CONTENT_TYPE_LATEST})
