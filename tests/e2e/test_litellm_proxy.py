"""End to end through the real LiteLLM proxy (PyPI ``litellm`` 1.110.2, ``tests/helpers/litellm.py``): the bot
process, the real proxy on 127.0.0.1 and, behind it, the fake Images API as its OpenAI-compatible upstream.

With the bot's defaults (previews on), every generation and edit delivers, the upstream bills exactly what was
delivered, LiteLLM's failures read as what they are, and no log line holds image bytes. The proxy is started
once for the module (its start takes seconds); each test gets a fresh fake upstream on the same port.
"""

from __future__ import annotations

import asyncio
import io
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from PIL import Image

from bot.demo.discord import FakeDiscord, InteractionHandle
from tests.e2e.test_doctor import doctor
from tests.e2e.test_edit import answer_to, edit_requests, parts
from tests.helpers.e2e import final_files, has_result, job_rows, poll, results_of
from tests.helpers.litellm import COOLDOWN_SECONDS, MASTER_KEY, LiteLLMProxy, ensure_litellm, free_port
from tests.plugins.rig import Rig, running_rig

# The first test also starts the proxy (20-60 s on a busy machine); the install happens before any test runs.
pytestmark = pytest.mark.timeout(240)

MODEL = "gpt-image-1"  # the proxy's model group (an openai/ deployment on the fake)
OTHER_MODEL = "gpt-image-1-mini"  # known to the bot, not offered by the proxy
BASE64_RUN = re.compile(r"[A-Za-z0-9+/]{200,}")
USED_SQL = (
    "SELECT COALESCE(SUM(CASE WHEN status IN ('reserved', 'running') THEN images_reserved "
    "WHEN status IN ('done', 'partial') THEN images_done ELSE 0 END), 0) AS used FROM jobs"
)


@pytest.fixture(scope="module")
def upstream_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory, upstream_port: int) -> Iterator[LiteLLMProxy]:
    exe = ensure_litellm()  # installs on first use; raises (never skips) when it cannot
    p = LiteLLMProxy(exe, tmp_path_factory.mktemp("litellm"), f"http://127.0.0.1:{upstream_port}/v1", (MODEL,))
    p.start()
    try:
        yield p
    finally:
        p.stop()


class Cooldown:
    """When a test made the proxy cool its model group down, the next test waits it out."""

    until = 0.0


@pytest.fixture
async def lrig(tmp_path: Path, proxy: LiteLLMProxy, upstream_port: int) -> AsyncIterator[Rig]:
    loop = asyncio.get_running_loop()
    if Cooldown.until > loop.time():
        await asyncio.sleep(Cooldown.until - loop.time())
    async with running_rig(tmp_path, images_port=upstream_port, api_base=proxy.base_url) as (r, problems):
        yield r
    log = r.log_text()
    if BASE64_RUN.search(log):  # no image bytes in any log line, ever
        problems.append("a run of base64 in the bot log")
    if MASTER_KEY in log:
        problems.append("the API key in the bot log")
    if problems:
        pytest.fail("\n".join(problems) + "\n" + r.log_tail(60), pytrace=False)


def cooled_down_later() -> None:
    Cooldown.until = asyncio.get_running_loop().time() + COOLDOWN_SECONDS + 1.0


async def start(rig: Rig, **env: str | None) -> None:
    overrides: dict[str, str | None] = {"OPENAI_API_KEY": MASTER_KEY, "IMAGE_MODEL": MODEL, **env}
    await rig.start_bot(**overrides)  # type: ignore[arg-type]


def content(h: InteractionHandle) -> str:
    return str((h.original or {}).get("content") or "")


async def imagine(fd: FakeDiscord, prompt: str, **options: Any) -> InteractionHandle:
    h = await fd.inject_interaction(fd.slash("imagine", {"prompt": prompt, **options}))
    await h.wait_for(
        lambda x: has_result(x) or content(x).startswith("❌") or bool(x.callbacks and x.callbacks[0]["type"] == 4),
        timeout=40,
    )
    return h


async def settled(rig: Rig, count: int) -> list[Any]:
    await poll(
        lambda: len(job_rows(rig)) == count and all(j["status"] not in ("reserved", "running") for j in job_rows(rig)),
        timeout=20,
    )
    return job_rows(rig)


def used(rig: Rig) -> int:
    from tests.helpers.e2e import db

    return int(db(rig, USED_SQL)[0]["used"])


def png(size: tuple[int, int] = (96, 64), mode: str = "RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, (30, 90, 200) if mode == "RGB" else 0).save(buf, "PNG")
    return buf.getvalue()


def streamed(rig: Rig) -> list[Any]:
    """Requests that reached the upstream asking for a stream (the proxy must never be asked for one)."""
    return [
        r
        for r in rig.images.requests
        if (r.json or {}).get("stream") or (getattr(r, "form", None) or {}).get("stream") in ("true", True)
    ]


# --- delivery -----------------------------------------------------------------------------------------------


async def test_generation_and_count_deliver_whole_images_billed_once(lrig: Rig) -> None:
    await start(lrig)
    await lrig.wait_for_log("is a LiteLLM proxy: previews are off")
    fd = lrig.discord
    h = await imagine(fd, "a lighthouse at dusk")
    assert has_result(h), content(h)
    assert fd.cdn_bytes(final_files(h)[0]) == lrig.images.results[0]
    h2 = await imagine(fd, "two foxes", count=3)
    assert has_result(h2), content(h2)
    assert len(final_files(h2)) == 3
    jobs = await settled(lrig, 2)
    assert [j["status"] for j in jobs] == ["done", "done"] and used(lrig) == 4
    assert lrig.images.billed == 4 and len(lrig.images.requests) == 4  # each image requested and billed once
    assert streamed(lrig) == []


async def test_reply_edit_and_slash_edit_with_mask_deliver(lrig: Rig) -> None:
    await start(lrig)
    fd = lrig.discord
    photo = fd.create_user_message("bob", "sunset", [fd.add_attachment(png(), "beach.png", "image/png")])
    ask = fd.reply("alice", f"<@{fd.bot_id}> make it night time", photo, mention_bot=True)
    await fd.inject_message(ask)

    def done() -> dict[str, Any] | None:
        m = answer_to(fd, ask)
        return m if m is not None and results_of(m) and m.get("components") else None

    await fd.wait_for(done, timeout=40)

    image_att = fd.add_attachment(png((128, 96)), "photo.png", "image/png")
    mask = Image.new("L", (128, 96), 0)
    mask.paste(255, (64, 0, 128, 96))
    buf = io.BytesIO()
    mask.save(buf, "PNG")
    mask_att = fd.add_attachment(buf.getvalue(), "mask.png", "image/png")
    h = await fd.inject_interaction(
        fd.slash("edit", {"prompt": "a red balloon"}, attachments={"image": image_att, "mask": mask_att})
    )
    await h.wait_for(lambda x: has_result(x) or content(x).startswith("❌"), timeout=40)
    assert has_result(h), content(h)
    edits = edit_requests(lrig)
    assert len(edits) == 2 and len(parts(edits[1], "mask")) == 1  # the mask went through the proxy
    assert lrig.images.billed == 2 and streamed(lrig) == []
    await settled(lrig, 2)
    assert used(lrig) == 2


# --- the ledger ------------------------------------------------------------------------------------------------


async def test_quota_refusal_and_refund_of_a_failed_image(lrig: Rig) -> None:
    await start(lrig, DEFAULT_DAILY_LIMIT="2")
    fd = lrig.discord
    lrig.images.moderation_block_next()  # refused upstream: refunded, not counted
    h = await imagine(fd, "something the safety system refuses")
    assert "safety" in content(h), content(h)
    for prompt in ("a red fox", "a blue heron"):
        assert has_result(await imagine(fd, prompt))
    third = await imagine(fd, "a green frog")
    refused = third.callbacks[0]["data"]["content"] if third.callbacks and third.callbacks[0]["type"] == 4 else ""
    assert "limit of 2 images today" in refused, third.callbacks
    jobs = await settled(lrig, 3)
    assert [j["status"] for j in jobs] == ["blocked", "done", "done"] and used(lrig) == 2
    assert len(lrig.images.requests) == 3 and lrig.images.billed == 2  # the refused one never reached the API


# --- LiteLLM's failures, worded as what they are ---------------------------------------------------------------


async def test_moderation_refusal_reads_as_a_safety_refusal(lrig: Rig) -> None:
    await start(lrig)
    lrig.images.moderation_block_next()
    h = await imagine(lrig.discord, "a forbidden thing")
    assert "safety rules" in content(h) and "settings" not in content(h), content(h)
    assert "litellm" not in content(h).lower()
    [job] = await settled(lrig, 1)
    assert job["status"] == "blocked" and used(lrig) == 0 and lrig.images.billed == 0
    assert len(lrig.images.requests) == 1  # neither the proxy nor the bot tried again


async def test_wrong_key_reads_as_a_setup_problem(lrig: Rig) -> None:
    await start(lrig, OPENAI_API_KEY="sk-not-a-key-of-this-proxy")
    h = await imagine(lrig.discord, "a cat")
    assert "API key was rejected" in content(h) and "tell the server owner" in content(h), content(h)
    assert "No connected db" not in content(h)
    [job] = await settled(lrig, 1)
    assert job["status"] == "failed" and used(lrig) == 0 and lrig.images.requests == []
    assert "sk-not-a-key-of-this-proxy" not in lrig.log_text()


async def test_unknown_model_reads_as_a_setup_problem(lrig: Rig) -> None:
    await start(lrig, IMAGE_MODEL=OTHER_MODEL)
    h = await imagine(lrig.discord, "a cat")
    assert "IMAGE_MODEL" in content(h), content(h)
    [job] = await settled(lrig, 1)
    assert job["status"] == "failed" and lrig.images.requests == []


async def test_out_of_credit_is_not_retried_on_top_of_the_proxy(lrig: Rig) -> None:
    await start(lrig)
    lrig.images.fail_next(
        429,
        type="insufficient_quota",
        code="insufficient_quota",
        message="You exceeded your current quota, please check your plan and billing details.",
        times=10,
    )
    h = await imagine(lrig.discord, "a cat")
    cooled_down_later()
    assert "out of credit" in content(h) and "busy" not in content(h), content(h)
    [job] = await settled(lrig, 1)
    assert job["status"] == "failed" and used(lrig) == 0
    # LiteLLM tried its upstream three times (its own retries); the bot added none.
    assert len(lrig.images.requests) == 3, len(lrig.images.requests)
    assert "retry 1/" not in lrig.log_text()


async def test_a_cooldown_is_waited_out_and_retried_once(lrig: Rig) -> None:
    await start(lrig)
    fd = lrig.discord
    # An upstream 401 puts the model group in a cooldown: every other request meanwhile gets 429
    # all_deployments_in_cooldown, which never reaches the upstream.
    lrig.images.fail_next(401, type="invalid_request_error", code="invalid_api_key", message="Incorrect API key")
    first = await imagine(fd, "a cat")
    assert "API key was rejected" in content(first), content(first)
    h = await imagine(fd, "a dog")
    assert has_result(h), content(h)
    assert "gateway cooldown" in lrig.log_text()
    jobs = await settled(lrig, 2)
    assert [j["status"] for j in jobs] == ["failed", "done"] and used(lrig) == 1
    assert len(lrig.images.requests) == 2 and lrig.images.billed == 1


async def test_doctor_names_the_proxy_and_why_previews_are_off(lrig: Rig) -> None:
    code, out = await doctor(lrig, OPENAI_API_KEY=MASTER_KEY, IMAGE_MODEL=MODEL)
    assert "answered by LiteLLM" in out and "previews are off" in out, out
    assert MASTER_KEY not in out
    code, out = await doctor(lrig, OPENAI_API_KEY="sk-not-a-key-of-this-proxy", IMAGE_MODEL=MODEL)
    assert code != 0 and "rejected OPENAI_API_KEY" in out, out
    code, out = await doctor(lrig, OPENAI_API_KEY=MASTER_KEY, IMAGE_MODEL=OTHER_MODEL)
    assert code != 0 and f"IMAGE_MODEL {OTHER_MODEL} is not available" in out, out
    assert lrig.images.requests == []  # the doctor never generates


async def test_an_upstream_data_object_lost_by_the_proxy_is_refunded(lrig: Rig) -> None:
    # An upstream that sends ``data`` as one object: LiteLLM passes ``data: []`` on (billed upstream, image lost).
    lrig.images.gateway.data_as_object = True
    await start(lrig)
    h = await imagine(lrig.discord, "a paper boat")
    assert content(h).startswith("❌") and "try again" in content(h), content(h)
    [job] = await settled(lrig, 1)
    assert job["status"] == "failed" and used(lrig) == 0
    assert lrig.images.billed == 1 and len(lrig.images.requests) == 1  # not retried: it was billed
    assert "returned no image" in lrig.log_text()


class HidingFront:
    """A plain reverse proxy in front of LiteLLM that hides what identifies it (its ``x-litellm-*`` headers and
    its ``/v1/model/info`` route), as another gateway or an older proxy might: the bot cannot tell beforehand and
    must learn from a failed stream."""

    def __init__(self, target: str) -> None:
        self.target = target.rstrip("/")
        self.base_url = ""
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.base_url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/v1"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _forward(self, request: web.Request) -> web.Response:
        if request.path.endswith("/model/info"):
            return web.json_response({"error": "404 page not found"}, status=404)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        async with (
            aiohttp.ClientSession() as http,
            http.request(
                request.method, self.target + request.path_qs.removeprefix("/v1"), headers=headers,
                data=await request.read(),
            ) as resp,
        ):  # fmt: skip
            body = await resp.read()
            kept = {k: v for k, v in resp.headers.items() if k.lower() == "content-type"}
            return web.Response(status=resp.status, body=body, headers=kept)


async def test_a_proxy_it_cannot_recognise_costs_one_extra_image_once_even_across_restarts(lrig: Rig) -> None:
    front = HidingFront(lrig.images_base)
    await front.start()
    try:
        lrig.images_base = front.base_url
        await start(lrig)
        fd = lrig.discord
        # The first edit streams: LiteLLM bills it, then answers 500 with the whole SSE body (base64) as its
        # message and cools the model down. The bot turns streaming off, remembers it, and sends that edit
        # once more without streaming, after the cooldown.
        att = fd.add_attachment(png(), "photo.png", "image/png")
        e = await fd.inject_interaction(fd.slash("edit", {"prompt": "add a moon"}, attachments={"image": att}))
        await e.wait_for(lambda x: has_result(x) or content(x).startswith("❌"), timeout=40)
        assert has_result(e), content(e)
        assert [r.form.get("stream") for r in edit_requests(lrig)] == ["true", None]
        assert lrig.images.billed == 2  # one image more than delivered: the cost of learning
        assert lrig.log_text().count("cannot stream images") == 1 and "base64 chars>" in lrig.log_text()
        cooled_down_later()
        # Never again: not for a later job, nor after a restart.
        h = await imagine(fd, "a night sky")
        assert has_result(h), content(h)
        await lrig.restart_bot()
        await lrig.wait_for_log("cannot stream images (remembered:")
        h2 = await imagine(fd, "a morning sky")
        assert has_result(h2), content(h2)
        assert streamed(lrig) == [edit_requests(lrig)[0]] and lrig.images.billed == 4
        jobs = await settled(lrig, 3)
        assert all(j["status"] == "done" for j in jobs) and used(lrig) == 3
    finally:
        await front.stop()
