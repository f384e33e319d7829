"""The playground's web server: the page, its WebSocket of live changes, its actions, and the CDN's files.

``Playground`` owns the local Discord, the image service (the built-in one unless a real API key is given)
and the bot process, and serves them as one page on one address (127.0.0.1 unless told otherwise).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from aiohttp import web

from bot.demo.discord.constants import MODERATOR_ROLE_ID
from bot.demo.playground import history
from bot.demo.playground.actions import ActionError, Actions
from bot.demo.playground.botproc import BotProcess, ImageService, bot_env
from bot.demo.playground.live import Event, LiveDiscord, visible_to
from bot.demo.playground.texts import page_strings
from bot.messages.i18n import N_, translate

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
STATIC_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
LOOPBACK = ("127.0.0.1", "localhost", "::1")
# How fast the built-in service streams: slow enough that each preview frame can be seen (and cancelled).
FIRST_EVENT_DELAY = 0.8
BETWEEN_EVENTS_DELAY = 1.2
EXAMPLE_PROMPT = "a lighthouse on a cliff at dusk, watercolour"


class Client:
    """One open page: which person it shows, and the queue of what to send it."""

    def __init__(self, person: str, user_id: int) -> None:
        self.person = person
        self.user_id = user_id
        self.queue: asyncio.Queue[str | None] = asyncio.Queue()


class Playground:
    def __init__(
        self, folder: Path, *, host: str = "127.0.0.1", port: int = 0, real_api: ImageService | None = None
    ) -> None:
        self.folder = folder
        self.host = host
        self.port = port
        self.real_api = real_api
        self.fd = LiveDiscord()
        self.actions = Actions(self.fd)
        self.images: Any = None  # the built-in FakeImagesAPI when no real API is used
        self.image_service: ImageService | None = None
        self.bot: BotProcess | None = None
        self.clients: set[Client] = set()
        self._runner: web.AppRunner | None = None
        self.url = ""
        self.restored = 0  # messages found in the folder at start
        # The second channel is age-restricted, so the bot's rules for such channels can be tried.
        self.fd.world.channels[self.fd.other_channel_id].update({"nsfw": True, "name": "after-dark"})
        self.fd.listeners.append(self._on_event)

    # ---------------------------------------------------------------------------------- lifecycle
    async def start(self) -> str:
        self.folder.mkdir(parents=True, exist_ok=True)
        await self.fd.start()
        self.restored = history.load(self.fd, self.folder)
        if self.real_api is not None:
            self.image_service = self.real_api
        else:
            from bot.demo.images import FakeImagesAPI

            self.images = FakeImagesAPI()
            self.images.delay_first_event = FIRST_EVENT_DELAY
            self.images.delay_between_events = BETWEEN_EVENTS_DELAY
            base = await self.images.start()
            self.image_service = ImageService(base, "sk-playground-local", real=False)
        env = bot_env(
            self.fd.token, self.fd.api_base, self.fd.gateway_url, self.image_service, self.folder / "imagebot.db"
        )
        app = web.Application(client_max_size=30 * 1024 * 1024, middlewares=[self._same_origin])
        app.router.add_get("/", self._index)
        app.router.add_get("/static/{name}", self._static)
        app.router.add_get("/cdn/{tail:.*}", self._cdn)
        app.router.add_get("/ws", self._ws)
        app.router.add_post("/api/action", self._action)
        app.router.add_post("/api/upload", self._upload)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = site._server
        assert server is not None
        port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        shown = "127.0.0.1" if self.host in ("", "0.0.0.0", "::") else self.host
        self.url = f"http://[{shown}]:{port}/" if ":" in shown else f"http://{shown}:{port}/"
        # The bot starts last: a port already in use stops the playground before anything else runs.
        self.bot = BotProcess(env, self.folder, self.folder / "bot.log")
        await self.bot.start()
        return self.url

    async def wait_bot_ready(self, timeout: float = 60) -> None:  # noqa: ASYNC109
        """Until the bot has connected and registered its commands (or exited: an error with its log)."""

        def ready() -> bool:
            return self.fd.bot_connected and bool(self.fd.commands)

        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not ready():
            if self.bot is not None and self.bot.exited is not None:
                raise RuntimeError(f"the bot exited with code {self.bot.exited}:\n{self.bot.log_tail()}")
            if loop.time() > deadline:
                raise RuntimeError(f"the bot did not connect in {timeout:.0f}s:\n{self.bot and self.bot.log_tail()}")
            with contextlib.suppress(AssertionError):
                await self.fd.wait_for(ready, timeout=0.5)

    async def post_example(self) -> None:
        """A first picture for a first visit: Alice asks for one, so the page opens on a stream or its result.
        Only with the built-in service (a real API would bill it) and in an empty channel."""
        if (self.image_service is None or self.image_service.real) or self.restored:
            return
        await self.actions.slash(
            {"person": "alice", "channel_id": str(self.fd.channel_id), "name": "imagine",
             "options": {"prompt": EXAMPLE_PROMPT}}
        )  # fmt: skip

    async def stop(self) -> None:
        for client in list(self.clients):
            client.queue.put_nowait(None)
        if self.bot is not None:
            await self.bot.stop()
        if self._runner is not None:
            await self._runner.cleanup()
        if self.images is not None:
            await self.images.stop()
        if self.fd._port is not None:
            history.save(self.fd, self.folder)
        await self.fd.stop()

    # ------------------------------------------------------------------------------------ state
    def snapshot(self, person: str) -> dict[str, Any]:
        """Everything one person's page shows, in their language."""
        fd = self.fd
        me = fd.world.users[person]
        locale = self.actions.people[person].locale
        people = []
        for key, p in self.actions.people.items():
            user = fd.world.users[key]
            people.append(
                {
                    "key": key,
                    "id": str(user.id),
                    "name": user.global_name or user.username,
                    "moderator": MODERATOR_ROLE_ID in user.roles,
                    "locale": p.locale,
                }
            )
        guild = fd.world.guilds[fd.guild_id]
        channels = [
            {"id": str(c), "name": fd.world.channels[c]["name"], "nsfw": bool(fd.world.channels[c].get("nsfw"))}
            for c in guild.channel_ids
        ]
        messages = sorted(
            (m for m in fd.messages.values() if visible_to(m, me.id) and m.get("guild_id") == str(fd.guild_id)),
            key=lambda m: int(m["id"]),
        )
        service = self.image_service
        return {
            "type": "snapshot",
            "me": person,
            "locale": locale,
            "strings": page_strings(locale),
            "people": people,
            "guild": {"id": str(guild.id), "name": guild.name},
            "channels": channels,
            "bot": {"id": str(fd.bot_id), "name": fd.bot_user.username, "connected": fd.bot_connected},
            "commands": [
                c
                for c in (*fd.commands.get(fd.guild_id, []), *fd.commands.get(None, []))
                if self.actions.may_use(person, c)
            ],
            "roles": [{"id": str(r.id), "name": r.name} for k, r in fd.world.roles.items() if k != "bot"],
            "messages": messages,
            "real_api": bool(service and service.real),
            "api_base": service.base_url if service and service.real else "",
        }

    def _on_event(self, event: Event) -> None:
        viewer = event.get("viewer")
        for client in self.clients:
            if event["type"] == "status":
                client.queue.put_nowait(self.fd.browser_json(self.snapshot(client.person)))
            elif viewer is None or viewer == client.user_id:
                client.queue.put_nowait(self.fd.browser_json({k: v for k, v in event.items() if k != "viewer"}))

    # ---------------------------------------------------------------------------------- routes
    @web.middleware
    async def _same_origin(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """Only this page may act: another site open in the same browser cannot post to it or listen."""
        origin = request.headers.get("Origin")
        if origin and urlparse(origin).netloc != request.host:
            return web.json_response({"error": "cross-origin request refused"}, status=403)
        # Listening on this machine only, the page answers to this machine's names only: a site whose name
        # is made to point at 127.0.0.1 (DNS rebinding) gets nothing.
        if self.host in LOOPBACK and urlparse(f"//{request.host}").hostname not in LOOPBACK:
            return web.json_response({"error": "unknown host name"}, status=403)
        return await handler(request)

    async def _index(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    async def _static(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        path = STATIC / name
        if "/" in name or name.startswith(".") or not path.is_file() or path.suffix not in STATIC_TYPES:
            raise web.HTTPNotFound()
        return web.FileResponse(path, headers={"Content-Type": STATIC_TYPES[path.suffix], "Cache-Control": "no-store"})

    async def _cdn(self, request: web.Request) -> web.StreamResponse:
        parts = request.match_info["tail"].split("/")
        if parts and parts[0] == "media":
            parts = parts[1:]
        if len(parts) != 4 or parts[0] != "attachments":
            raise web.HTTPNotFound()
        found = self.fd.cdn_files.get((parts[2], unquote(parts[3])))
        if found is None:
            raise web.HTTPNotFound()
        data, ctype = found
        return web.Response(body=data, headers={"Content-Type": ctype, "Cache-Control": "max-age=3600"})

    async def _ws(self, request: web.Request) -> web.StreamResponse:
        person = request.query.get("person", "alice")
        if person not in self.actions.people:
            raise web.HTTPBadRequest(text="unknown person")
        ws = web.WebSocketResponse(heartbeat=20)
        await ws.prepare(request)
        client = Client(person, self.fd.world.users[person].id)
        self.clients.add(client)
        client.queue.put_nowait(self.fd.browser_json(self.snapshot(person)))

        async def writer() -> None:
            while (text := await client.queue.get()) is not None:
                await ws.send_str(text)
            await ws.close()

        task = asyncio.create_task(writer())
        try:
            async for _ in ws:  # the page only listens; this ends when it goes away
                pass
        finally:
            self.clients.discard(client)
            task.cancel()
        return ws

    async def _action(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
        except (ValueError, UnicodeDecodeError):
            return web.json_response({"error": "expected JSON"}, status=400)
        if not isinstance(body, dict):
            return web.json_response({"error": "expected an object"}, status=400)
        kind = body.get("kind")
        a = self.actions
        try:
            if kind == "message":
                await a.send_message(body)
            elif kind == "delete":
                await a.delete_message(body)
            elif kind == "slash":
                await a.slash(body)
            elif kind == "button":
                await a.button(body)
            elif kind == "menu":
                await a.message_command(body)
            elif kind == "modal":
                await a.modal_submit(body)
            elif kind == "autocomplete":
                return web.json_response({"ok": True, "choices": await a.autocomplete(body)})
            elif kind == "locale":
                a.set_locale(body.get("person"), body.get("locale"))
                self._on_event({"type": "status", "viewer": None})
            else:
                raise ActionError("unknown action")
        except ActionError as exc:
            return web.json_response({"error": self._say(body, exc.msgid, **exc.params)}, status=400)
        except AssertionError:  # the local Discord's own check: no bot connected to hear it
            return web.json_response({"error": self._say(body, N_("the bot is not connected"))}, status=409)
        return web.json_response({"ok": True})

    def _say(self, body: dict[str, Any], msgid: str, **params: Any) -> str:
        """``msgid`` in the language of the person who asked."""
        person = self.actions.people.get(str(body.get("person")))
        return translate(person.locale if person else None, msgid, **params)

    async def _upload(self, request: web.Request) -> web.StreamResponse:
        body = {"person": request.query.get("person")}
        field: Any = None
        if request.content_type.startswith("multipart/"):
            field = await (await request.multipart()).next()
        if field is None or getattr(field, "name", None) != "file":
            return web.json_response({"error": self._say(body, N_("no file was sent"))}, status=400)
        data = bytes(await field.read(decode=False))
        try:
            att = self.actions.upload(
                data, field.filename or "file", field.headers.get("Content-Type"), request.query.get("channel_id", "")
            )
        except ActionError as exc:
            return web.json_response({"error": self._say(body, exc.msgid, **exc.params)}, status=400)
        return web.Response(text=self.fd.browser_json(att), content_type="application/json")


def reset(folder: Path) -> None:
    """Forget everything the playground kept: its database, the channels' history with their files, the log."""
    if folder.is_dir():
        shutil.rmtree(folder)
    log.info("cleared %s", folder)
