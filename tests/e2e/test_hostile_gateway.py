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


def peak_rss_mb(rig: Rig) -> float:
    assert rig.proc is not None
    with open(f"/proc/{rig.proc.pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


@pytest.mark.parametrize(("kind", "partials"), [("sse_line", "2"), ("json", "0")])
async def test_an_answer_without_end_fails_that_job_alone_within_bounded_memory(
    rig: Rig, kind: str, partials: str
) -> None:
    from bot.images_api.limits import max_event_bytes, max_json_bytes
    from bot.images_api.models import get_model

    model = get_model("gpt-image-2")
    cap = max_event_bytes(model) if kind == "sse_line" else max_json_bytes(model, 1)
    await rig.start_bot(PARTIAL_IMAGES=partials, IMAGE_MODEL="gpt-image-2")
    before = peak_rss_mb(rig)
    rig.images.flood_next(kind)
    fd = rig.discord
    flooded = await fd.inject_interaction(fd.slash("imagine", {"prompt": "an endless answer"}))
    await poll(lambda: len(rig.images.requests) == 1)
    other = await fd.inject_interaction(fd.slash("imagine", {"prompt": "an ordinary cat"}))
    await flooded.wait_for(ended, timeout=60)
    await other.wait_for(ended, timeout=60)
    assert "far larger than any image" in content(flooded), content(flooded)
    assert final_files(flooded) == []
    assert has_result(other), content(other)
    jobs = await finished(rig, 2)
    by_prompt = {j["prompt"]: j for j in jobs}
    assert by_prompt["an endless answer"]["status"] == "failed" and by_prompt["an endless answer"]["images_done"] == 0
    assert by_prompt["an ordinary cat"]["status"] == "done"
    # The bot hung up once the answer passed its bound: the fake wrote little more than that (socket buffers).
    await poll(lambda: rig.images.flood_bytes > 0)
    assert rig.images.flood_bytes < cap + 16 * 1024 * 1024, (rig.images.flood_bytes, cap)
    grown = peak_rss_mb(rig) - before
    assert grown < 3 * cap / 2**20 + 64, f"peak RSS grew {grown:.0f} MB for a {cap / 2**20:.0f} MB bound"
    wrote = rig.images.flood_bytes / 2**20
    print(f"flood {kind}: bound {cap / 2**20:.1f} MB, fake wrote {wrote:.1f} MB, peak RSS +{grown:.0f} MB")
    assert "ResponseTooLarge" in rig.log_text()


def png_bomb(width: int, height: int) -> bytes:
    """A valid 1-bit greyscale PNG of ``width`` x ``height`` (all black): small on the wire, huge decoded."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(body, zlib.crc32(kind)))

    row = b"\x00" * (1 + (width + 7) // 8)
    z = zlib.compressobj(9)
    idat = b"".join(z.compress(row) for _ in range(height)) + z.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


async def test_a_30000_pixel_square_final_image_is_refused_before_decoding(rig: Rig) -> None:
    rig.images.final_image = await asyncio.to_thread(png_bomb, 30000, 30000)
    assert len(rig.images.final_image) < 1024 * 1024  # fits Discord's upload limit as it is
    await rig.start_bot(PARTIAL_IMAGES="0")
    before = peak_rss_mb(rig)
    h = await imagine(rig.discord, "a very large canvas")
    assert content(h).startswith("❌") and final_files(h) == [], content(h)
    assert not any(m.get("attachments") for m in rig.discord.bot_messages()), "an image was posted"
    [job] = await finished(rig, 1)
    assert job["status"] == "failed" and charged_images(rig) == 0
    assert "ImageTooLarge" in rig.log_text() and "30000x30000" in rig.log_text()
    assert peak_rss_mb(rig) - before < 40  # decoded, even one bit a pixel, it would be 107 MB


@pytest.mark.parametrize(
    "usage",
    [
        {"input_tokens": -5000, "output_tokens": -1, "total_tokens": -5001},
        {"input_tokens": 50, "output_tokens": 900_000_000, "total_tokens": 900_000_050},
        {"input_tokens": "lots", "output_tokens": 1e308, "total_tokens": None},
    ],
)
async def test_implausible_usage_is_logged_and_charged_the_estimate(rig: Rig, usage: dict[str, Any]) -> None:
    from bot.images_api.models import get_model

    rig.images.usage_override = usage
    await rig.start_bot(PARTIAL_IMAGES="0", IMAGE_MODEL="gpt-image-1")
    h = await imagine(rig.discord, "a small boat")
    assert has_result(h), content(h)
    [job] = await finished(rig, 1)
    model = get_model("gpt-image-1")
    estimate = model.estimate_cost(1, "auto", "auto", prompt_chars=len("a small boat"))
    assert job["status"] == "done" and job["images_done"] == 1
    assert job["cost_actual"] == pytest.approx(estimate, rel=0.05), (job["cost_actual"], estimate)
    assert job["input_tokens"] >= 0 and job["output_tokens"] == model.estimate_output_tokens("auto", "auto")
    assert "implausible usage" in rig.log_text()


async def test_plausible_usage_is_charged_as_sent(rig: Rig) -> None:
    await rig.start_bot(PARTIAL_IMAGES="0", IMAGE_MODEL="gpt-image-1")
    h = await imagine(rig.discord, "a small boat")
    assert has_result(h), content(h)
    await finished(rig, 1)
    assert "implausible usage" not in rig.log_text()
