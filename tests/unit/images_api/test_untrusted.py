"""What the bot accepts from an Images API it does not trust: link addresses and answer sizes (pure logic)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.images_api.errors import ResponseTooLarge
from bot.images_api.limits import max_event_bytes, max_image_bytes, max_json_bytes, max_pixels
from bot.images_api.links import LinkFetcher, refused_address
from bot.images_api.models import get_model
from bot.images_api.sse import iter_sse


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.8.9.10",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",  # CGNAT
        "0.0.0.0",
        "224.0.0.251",
        "255.255.255.255",
        "::1",
        "::",
        "fc00::1",
        "fd12:3456::1",  # unique-local
        "fe80::1",
        "ff02::1",
        "::ffff:127.0.0.1",  # IPv4-mapped
        "::ffff:10.1.2.3",
        "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
        "2002:7f00:1::",  # 6to4 of 127.0.0.1
        "not-an-address",
    ],
)
def test_non_public_addresses_are_refused(address: str) -> None:
    assert refused_address(address)


@pytest.mark.parametrize("address", ["8.8.8.8", "104.18.2.3", "2606:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert not refused_address(address)


def test_links_need_https_off_the_gateways_origin() -> None:
    links = LinkFetcher("http://gateway.internal:3000/v1")
    assert links.check("http://gateway.internal:3000/files/a.png", None) is True
    assert links.check("https://cdn.example.com/a.png", None) is False
    for bad in (
        "http://cdn.example.com/a.png",
        "http://gateway.internal:3001/a.png",
        "ftp://gateway.internal:3000/a.png",
        "https://user:pw@cdn.example.com/a.png",
        "https://cdn.example.com:99999/a.png",
    ):
        with pytest.raises(Exception, match=r"image link|not an http"):
            links.check(bad, None)


def test_answer_bounds_follow_the_largest_image_of_the_model() -> None:
    classic, free = get_model("gpt-image-1"), get_model("gpt-image-2")
    assert max_pixels(classic) == 1536 * 1024 and max_pixels(free) == 3840 * 2160
    assert max_image_bytes(classic) > 1536 * 1024 * 4
    assert max_event_bytes(free) > max_image_bytes(free) * 4 // 3
    assert max_json_bytes(free, 4) > 4 * max_event_bytes(free)
    assert max_pixels(get_model("some-gateway-model")) == 3840 * 2160  # unknown: the largest known


async def _chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for p in parts:
        yield p


async def test_an_endless_sse_line_stops_at_the_bound() -> None:
    read = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal read
        yield b"data: {"
        while True:
            read += 4096
            yield b"A" * 4096

    with pytest.raises(ResponseTooLarge):
        async for _ in iter_sse(endless(), max_event_bytes=100_000):
            pass
    assert 100_000 - 4096 <= read <= 100_000 + 4096


async def test_events_under_the_bound_pass_and_the_count_restarts_per_event() -> None:
    events = [b"data: " + b"x" * 900 + b"\n\n" for _ in range(5)] + [b": ping\n\n" * 200]
    got = [m async for m in iter_sse(_chunks(*events), max_event_bytes=1000)]
    assert len(got) == 5
    with pytest.raises(ResponseTooLarge):
        async for _ in iter_sse(_chunks(b"data: " + b"x" * 600 + b"\ndata: " + b"y" * 600 + b"\n\n"), 1000):
            pass


async def test_an_endless_error_body_is_read_only_up_to_its_bound() -> None:
    import aiohttp
    from aiohttp import web

    from bot.images_api.client import ImagesClient
    from bot.images_api.errors import ImagesAPIError
    from bot.images_api.limits import ERROR_BODY_MAX
    from bot.images_api.types import GenerateRequest

    sent = 0

    async def endless(request: web.Request) -> web.StreamResponse:
        nonlocal sent
        resp = web.StreamResponse(status=502, headers={"Content-Type": "text/html"})
        await resp.prepare(request)
        try:
            while sent < 64 * 2**20:
                await resp.write(b"<p>bad gateway</p>" * 4096)
                sent += 18 * 4096
        except (ConnectionError, RuntimeError):
            pass
        return resp

    app = web.Application()
    app.router.add_post("/v1/images/generations", endless)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with aiohttp.ClientSession() as session:
            client = ImagesClient(session, f"http://127.0.0.1:{port}/v1", "sk-x", max_retries=0)
            with pytest.raises(ImagesAPIError):
                async for _ in client.generate(GenerateRequest(model="gpt-image-2", prompt="x")):
                    pass
            await client.aclose()
    finally:
        await runner.cleanup()
    assert sent < ERROR_BODY_MAX + 16 * 2**20  # the bot hung up; the server did not send its 64 MB


async def test_a_servers_own_base_url_is_checked_at_every_connection() -> None:
    """A base URL a server gave (``guarded``): a name that now resolves to loopback is never connected to."""
    import asyncio

    import aiohttp

    from bot.images_api.client import ImagesClient
    from bot.images_api.errors import ConnectionFailed
    from bot.images_api.types import GenerateRequest

    connections = 0

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with aiohttp.ClientSession() as session:
            client = ImagesClient(session, f"https://localhost:{port}/v1", "sk-x", max_retries=0, guarded=True)
            with pytest.raises(ConnectionFailed):
                async for _ in client.generate(GenerateRequest(model="gpt-image-2", prompt="x")):
                    pass
            await client.aclose()
    finally:
        server.close()
        await server.wait_closed()
    assert connections == 0
