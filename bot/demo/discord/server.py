"""The HTTP side: the aiohttp server, request recording, injected faults and rate limits, the route table
and the CDN."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import secrets
import time
from http import HTTPStatus
from typing import Any

from aiohttp import web

from bot.demo.discord.records import (
    Fail,
    FaultRule,
    Handler,
    RateLimitRule,
    RecordedFile,
    RecordedRequest,
    error,
    json_response,
)
from bot.demo.discord.rest_channels import ChannelRoutes


class Server(ChannelRoutes):
    # ------------------------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        self._routes = self._build_routes()
        self._changed = asyncio.Condition()
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/gateway", self._gateway)
        app.router.add_route("*", "/{tail:.*}", self._http)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self._port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]

    async def stop(self) -> None:
        for s in list(self._sessions):
            with contextlib.suppress(Exception):
                await s.ws.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # ---------------------------------------------------------------------------------- test knobs
    def rate_limit_next(
        self,
        method: str,
        path_regex: str,
        retry_after: float = 0.2,
        count: int = 1,
        is_global: bool = False,
    ) -> None:
        """Answer the next ``count`` requests matching (method, regex searched in the path) with a 429."""
        self._rules.append(RateLimitRule(method.upper(), re.compile(path_regex), retry_after, count, is_global))

    def enforce_webhook_limits(self, limit: int | None = 5, per: float = 2.0) -> None:
        """Emulate a per-token bucket for webhook message edits/creates, with X-RateLimit-* headers
        (``limit=None`` switches it off again)."""
        self._webhook_limit = None if limit is None else (limit, per)
        self._webhook_windows.clear()

    def fail(
        self,
        method: str,
        path_regex: str,
        status: int,
        *,
        code: int | None = None,
        message: str | None = None,
        with_files: bool | None = None,
        times: int | None = 1,
        json_body: bool | None = None,
        headers: dict[str, str] | None = None,
    ) -> FaultRule:
        """Answer matching requests with an error instead of handling them.

        ``method`` ("PATCH", or "*" for any) and ``path_regex`` (searched in the path without the
        ``/api/v10`` prefix, e.g. ``r"/messages/@original$"``; CDN paths start with ``/cdn/``) select the
        requests; ``with_files`` True only those uploading files, False only those without, None both.
        The body is Discord's ``{"code": code, "message": message}`` (a missing message is the status's
        reason phrase, a missing code 0); ``json_body=False`` (the default for a 5xx without code or
        message) sends a proxy's text/html error page instead. ``times`` answers (None: until removed).
        The request is still recorded (``rec.fault`` names the rule). Returns the rule: ``.hits``,
        ``.requests``, ``.remaining``, ``.active``, ``.remove()``."""
        if json_body is None:
            json_body = status < 500 or code is not None or message is not None
        reason = message or HTTPStatus(status).phrase
        body: Any
        if json_body:
            body = {"message": message or f"{status}: {reason}", "code": code or 0}
        else:
            body = f"<html><head><title>{status} {reason}</title></head><body>{status} {reason}</body></html>"
        rule = FaultRule(method.upper(), re.compile(path_regex), status, body, with_files, times, dict(headers or {}))
        self.faults.append(rule)
        return rule

    def clear_faults(self) -> None:
        for rule in self.faults:
            rule.remove()

    def _check_fault(self, rec: RecordedRequest) -> FaultRule | None:
        for rule in self.faults:
            if rule.matches(rec):
                rule.hits += 1
                rule.requests.append(rec)
                rec.fault = rule
                return rule
        return None

    def _fault_response(self, rule: FaultRule, rec: RecordedRequest) -> web.Response:
        rec.status, rec.response = rule.status, rule.body
        if isinstance(rule.body, str):
            hdrs = {"Content-Type": "text/html", **rule.headers}
            return web.Response(text=rule.body, status=rule.status, headers=hdrs)
        return json_response(rule.body, rule.status, rule.headers)

    # -------------------------------------------------------------------------------------- HTTP
    async def _http(self, request: web.Request) -> web.StreamResponse:
        raw_path = request.path
        if raw_path.startswith("/cdn/"):
            return await self._cdn(request)
        path = raw_path[len("/api/v10") :] if raw_path.startswith("/api/v10/") else raw_path
        rec = RecordedRequest(
            time=time.monotonic(),
            method=request.method,
            path=path,
            query=dict(request.query),
            headers=dict(request.headers),
        )
        m = re.match(r"^/(?:interactions/\d+|webhooks/\d+)/([^/]+)", path)
        if m:
            rec.token = m.group(1)
        try:
            await self._read_body(request, rec)
        except Exception as exc:  # malformed body
            rec.status, rec.response = 400, {"message": f"malformed body: {exc}", "code": 50109}
            self.requests.append(rec)
            await self._notify()
            return json_response(rec.response, 400)
        self.requests.append(rec)
        if self.latency:
            await asyncio.sleep(self.latency)
        if (fault := self._check_fault(rec)) is not None:
            await self._notify()
            return self._fault_response(fault, rec)
        headers: dict[str, str] = {}
        limited = self._check_rate_limit(rec)
        if limited is None:
            limited = self._check_webhook_bucket(rec, headers)
        if limited is not None:
            status, body, headers = limited
            self.rate_limited_count += 1
        else:
            status, body = await self._route(rec, raw_path)
        rec.status, rec.response = status, body
        await self._notify()
        if status == 204 or body is None:
            return web.Response(status=204 if status < 300 else status, headers=headers)
        return json_response(body, status, headers)

    async def _read_body(self, request: web.Request, rec: RecordedRequest) -> None:
        ctype = request.headers.get("Content-Type", "")
        if ctype.startswith("multipart/"):
            reader = await request.multipart()
            async for part in reader:
                if part is None:
                    break
                name = part.name or ""  # type: ignore[union-attr]
                data = await part.read(decode=False)  # type: ignore[union-attr]
                if name == "payload_json":
                    rec.json = json.loads(bytes(data).decode())
                else:
                    rec.files.append(
                        RecordedFile(
                            field=name,
                            filename=part.filename or "",  # type: ignore[union-attr]
                            content_type=part.headers.get("Content-Type", "application/octet-stream"),
                            data=bytes(data),
                        )
                    )
        else:
            raw = await request.read()
            if raw:
                rec.json = json.loads(raw)

    def _check_rate_limit(self, rec: RecordedRequest) -> tuple[int, Any, dict[str, str]] | None:
        for rule in self._rules:
            if rule.count <= 0:
                continue
            if rule.method not in ("*", rec.method) or not rule.path_regex.search(rec.path):
                continue
            rule.count -= 1
            return self._429(rule.retry_after, rule.is_global, "fake-rl-" + rule.path_regex.pattern)
        return None

    def _429(self, retry_after: float, is_global: bool, bucket: str) -> tuple[int, Any, dict[str, str]]:
        headers = {
            "Via": "1.1 google",
            "Retry-After": str(max(1, int(retry_after + 0.999))),
            "X-RateLimit-Limit": "5",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": f"{time.time() + retry_after:.3f}",
            "X-RateLimit-Reset-After": f"{retry_after:.3f}",
            "X-RateLimit-Bucket": secrets.token_hex(8) if not bucket else re.sub(r"\W", "", bucket)[:32],
            "X-RateLimit-Scope": "global" if is_global else "user",
        }
        if is_global:
            headers["X-RateLimit-Global"] = "true"
        body = {"message": "You are being rate limited.", "retry_after": retry_after, "global": is_global}
        return 429, body, headers

    def _check_webhook_bucket(
        self, rec: RecordedRequest, headers: dict[str, str]
    ) -> tuple[int, Any, dict[str, str]] | None:
        if self._webhook_limit is None or rec.token is None or not rec.path.startswith("/webhooks/"):
            return None
        if rec.method not in ("PATCH", "POST"):
            return None
        limit, per = self._webhook_limit
        now = time.monotonic()
        start, used = self._webhook_windows.get(rec.token, (now, 0))
        if now - start >= per:
            start, used = now, 0
        reset_after = max(0.0, per - (now - start))
        if used >= limit:
            self._webhook_windows[rec.token] = (start, used)
            return self._429(round(reset_after, 3), False, "webhook" + rec.token[:8])
        used += 1
        self._webhook_windows[rec.token] = (start, used)
        headers.update(
            {
                "X-RateLimit-Limit": str(limit),
                "X-RateLimit-Remaining": str(limit - used),
                "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
                "X-RateLimit-Reset-After": f"{reset_after:.3f}",
                "X-RateLimit-Bucket": "webhook" + rec.token[:8],
            }
        )
        return None

    async def _route(self, rec: RecordedRequest, raw_path: str) -> tuple[int, Any]:
        if not raw_path.startswith("/api/v10/"):
            self.unknown_routes.append(rec)
            return error(404, 0, "404: Not Found")
        for method, rx, handler in self._routes:
            if method != rec.method:
                continue
            m = rx.match(rec.path)
            if m:
                try:
                    return await handler(rec, m)
                except Fail as fail:
                    return fail.status, fail.body
        self.unknown_routes.append(rec)
        return error(404, 0, "404: Not Found")

    def _build_routes(self) -> list[tuple[str, re.Pattern[str], Handler]]:
        table: list[tuple[str, str, Handler]] = [
            ("GET", r"/users/@me", self._get_me),
            ("GET", r"/users/@me/guilds", self._get_my_guilds),
            ("GET", r"/oauth2/applications/@me", self._get_app),
            ("GET", r"/applications/@me", self._get_app),
            ("GET", r"/gateway", self._get_gateway),
            ("GET", r"/gateway/bot", self._get_gateway),
            ("PUT", r"/applications/(?P<app>\d+)/commands", self._put_commands),
            ("PUT", r"/applications/(?P<app>\d+)/guilds/(?P<guild>\d+)/commands", self._put_commands),
            ("GET", r"/applications/(?P<app>\d+)/commands", self._get_commands),
            ("GET", r"/applications/(?P<app>\d+)/guilds/(?P<guild>\d+)/commands", self._get_commands),
            ("POST", r"/applications/(?P<app>\d+)/commands", self._post_command),
            ("POST", r"/applications/(?P<app>\d+)/guilds/(?P<guild>\d+)/commands", self._post_command),
            ("POST", r"/interactions/(?P<iid>\d+)/(?P<token>[^/]+)/callback", self._callback),
            ("GET", r"/webhooks/(?P<app>\d+)/(?P<token>[^/]+)/messages/(?P<mid>@original|\d+)", self._wh_get),
            (
                "PATCH",
                r"/webhooks/(?P<app>\d+)/(?P<token>[^/]+)/messages/(?P<mid>@original|\d+)",
                self._wh_patch,
            ),
            (
                "DELETE",
                r"/webhooks/(?P<app>\d+)/(?P<token>[^/]+)/messages/(?P<mid>@original|\d+)",
                self._wh_delete,
            ),
            ("POST", r"/webhooks/(?P<app>\d+)/(?P<token>[^/]+)", self._wh_execute),
            ("POST", r"/channels/(?P<ch>\d+)/messages", self._ch_create),
            ("GET", r"/channels/(?P<ch>\d+)/messages/(?P<mid>\d+)", self._ch_get),
            ("PATCH", r"/channels/(?P<ch>\d+)/messages/(?P<mid>\d+)", self._ch_patch),
            ("DELETE", r"/channels/(?P<ch>\d+)/messages/(?P<mid>\d+)", self._ch_delete),
            ("GET", r"/channels/(?P<ch>\d+)/messages", self._ch_history),
            ("GET", r"/channels/(?P<ch>\d+)", self._ch_info),
            ("POST", r"/channels/(?P<ch>\d+)/typing", self._typing),
            ("PUT", r"/channels/(?P<ch>\d+)/messages/(?P<mid>\d+)/reactions/[^/]+/@me", self._reaction),
            ("DELETE", r"/channels/(?P<ch>\d+)/messages/(?P<mid>\d+)/reactions/[^/]+/[^/]+", self._reaction),
            ("POST", r"/users/@me/channels", self._create_dm),
            ("GET", r"/users/(?P<uid>\d+)", self._get_user),
            ("GET", r"/guilds/(?P<guild>\d+)", self._get_guild),
            ("GET", r"/guilds/(?P<guild>\d+)/members/(?P<uid>\d+)", self._get_member),
            ("GET", r"/guilds/(?P<guild>\d+)/channels", self._get_channels),
            ("GET", r"/guilds/(?P<guild>\d+)/roles", self._get_roles),
        ]
        return [(m, re.compile(p + r"/?$"), h) for m, p, h in table]

    # ---------------------------------------------------------------------------------------- CDN
    async def _cdn(self, request: web.Request) -> web.StreamResponse:
        rec = RecordedRequest(
            time=time.monotonic(),
            method=request.method,
            path=request.path,
            query=dict(request.query),
            headers=dict(request.headers),
        )
        self.requests.append(rec)
        if (fault := self._check_fault(rec)) is not None:
            await self._notify()
            return self._fault_response(fault, rec)
        if self.cdn_hold is not None:
            self.cdn_open += 1
            self.cdn_open_max = max(self.cdn_open_max, self.cdn_open)
            await self._notify()
            try:
                await self.cdn_hold.wait()
            finally:
                self.cdn_open -= 1
        m = re.match(r"^/cdn/(?:media/)?attachments/\d+/(\d+)/(.+)$", request.path)
        found = self.cdn_files.get((m.group(1), m.group(2))) if m else None
        if found is None or request.method not in ("GET", "HEAD"):
            rec.status = 404
            await self._notify()
            return web.Response(status=404, text="Not Found")
        data, ctype = found
        rec.status = 200
        await self._notify()
        return web.Response(body=data, headers={"Content-Type": ctype})
