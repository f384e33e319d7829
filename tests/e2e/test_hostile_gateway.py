"""End to end against a gateway that is broken or hostile: image links to places the bot must not fetch,
answers without end, an image far larger than the model makes, and usage figures that cannot be true.

Each test checks what the user reads, that nothing was posted, the ledger (refunded, or charged the estimate)
and, for links, that the forbidden address never saw a connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import zlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.demo.discord import FakeDiscord, InteractionHandle
from bot.demo.images.gateways import Gateway
from tests.conftest import Rig
from tests.helpers.e2e import db, final_files, has_result, job_rows, poll

REFUSED = "answer was refused"


def content(h: InteractionHandle) -> str:
    return str((h.original or {}).get("content") or "")


def ended(h: InteractionHandle) -> bool:
    return has_result(h) or content(h).startswith("❌")


async def imagine(fd: FakeDiscord, prompt: str) -> InteractionHandle:
    h = await fd.inject_interaction(fd.slash("imagine", {"prompt": prompt}))
    await h.wait_for(ended, timeout=30)
    return h


async def finished(rig: Rig, count: int) -> list[Any]:
    def done() -> bool:
        rows = job_rows(rig)
        return len(rows) == count and all(j["status"] not in ("reserved", "running") for j in rows)

    await poll(done, timeout=15)
    return job_rows(rig)


def charged_images(rig: Rig) -> int:
    return int(db(rig, "SELECT COALESCE(SUM(images_done), 0) AS n FROM jobs")[0]["n"])


class Listener:
    """A TCP server on 127.0.0.1 standing for a service on the bot's own network: it counts connections."""

    def __init__(self) -> None:
        self.connections = 0
        self.port = 0
        self._server: asyncio.Server | None = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        writer.close()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Listener]:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        try:
            yield self
        finally:
            self._server.close()
            await self._server.wait_closed()


@pytest.mark.parametrize(
    "link",
    [
        "https://127.0.0.1:{port}/secret.png",  # loopback
        "https://10.20.30.40/secret.png",  # the deployment's private network
        "https://169.254.169.254/latest/meta-data/",  # link-local: a cloud metadata service
        "https://localhost:{port}/secret.png",  # a name resolving to loopback, refused when connecting
        "https://[::ffff:127.0.0.1]:{port}/secret.png",  # loopback as an IPv4-mapped IPv6 address
        "http://127.0.0.1:{port}/secret.png",  # plain http off the gateway's origin
        "redirect:https://localhost:{port}/secret.png",  # the gateway's own link redirects to loopback
        "redirect:http://127.0.0.1:{port}/secret.png",
    ],
)
async def test_image_links_to_forbidden_places_are_refused_and_refunded(rig: Rig, link: str) -> None:
    gateway = Gateway("new-api")
    gateway.url_items = True
    rig.images.gateway = gateway
    async with Listener().running() as internal:
        target = link.format(port=internal.port)
        if target.startswith("redirect:"):
            target = rig.images.redirect_link(target.removeprefix("redirect:"))
        rig.images.link_to = target
        await rig.start_bot(PARTIAL_IMAGES="0")
        h = await imagine(rig.discord, "a lighthouse")
        assert REFUSED in content(h), content(h)
        assert final_files(h) == []
        assert not any(m.get("attachments") for m in rig.discord.bot_messages()), "an image was posted"
        [job] = await finished(rig, 1)
        assert job["status"] == "failed" and job["images_done"] == 0 and charged_images(rig) == 0
        assert internal.connections == 0
        assert "LinkRefused" in rig.log_text() or "may not fetch" in rig.log_text()
