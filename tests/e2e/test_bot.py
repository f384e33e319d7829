"""End to end: how the bot starts, syncs, queues, falls back and fits uploads (real process, fakes)."""

from __future__ import annotations

import asyncio
import io
import os
import sys
from pathlib import Path

from PIL import Image

from tests.helpers.e2e import files_of, final_files, has_result, job_rows, poll
from tests.plugins.rig import REPO_ROOT, Rig


async def run_bot_briefly(env: dict[str, str], cwd: Path) -> tuple[int, str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "OPENAI_", "IMAGEBOT_"))}
    full.update({"PYTHONPATH": str(REPO_ROOT), "IMAGEBOT_ENV_FILE": str(cwd / "missing.env"), **env})
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", cwd=cwd, env=full, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode is not None
    return proc.returncode, (out + err).decode()


async def test_bad_configuration_stops_with_one_clear_line(tmp_path: Path) -> None:
    cases = [
        ({}, "DISCORD_TOKEN is not set"),
        ({"DISCORD_TOKEN": "t"}, "OPENAI_API_KEY is not set"),
        ({"DISCORD_TOKEN": "t", "OPENAI_API_KEY": "k", "PARTIAL_IMAGES": "9"}, "PARTIAL_IMAGES must be at most 3"),
        ({"DISCORD_TOKEN": "t", "OPENAI_API_KEY": "k", "DATABASE_URL": "mysql://db"}, "DATABASE_URL must look like"),
    ]
    for env, expected in cases:
        code, output = await run_bot_briefly(env, tmp_path)
        assert code == 2, output
        assert expected in output and "Traceback" not in output
        assert len(output.strip().splitlines()) == 1, output


async def test_rejected_token_is_named_plainly(rig: Rig) -> None:
    await rig.start_bot(wait=False, DISCORD_TOKEN="not-the-token")
    assert rig.proc is not None
    code = await asyncio.wait_for(rig.proc.wait(), 20)
    assert code == 2
    assert "Discord rejected DISCORD_TOKEN" in rig.log_text()
    assert "not-the-token" not in rig.log_text()  # secrets are never logged
    rig.allow_tracebacks = "Traceback" not in rig.log_text()  # and no traceback either
    assert rig.allow_tracebacks


async def test_sync_auto_only_when_definitions_change_and_dev_guild(rig: Rig) -> None:
    fd = rig.discord

    def puts() -> list[str]:
        return [r.path for r in fd.requests if r.method == "PUT" and r.path.endswith("/commands")]

    await rig.start_bot(SYNC_COMMANDS="auto")
    await rig.wait_for_log("synced")
    assert len(puts()) == 1 and "/guilds/" not in puts()[0]
    await rig.restart_bot()
    await rig.wait_for_log("commands unchanged since the last sync")
    assert len(puts()) == 1  # unchanged: no second sync
    await rig.restart_bot(SYNC_COMMANDS="never")
    assert len(puts()) == 1
    await rig.restart_bot(SYNC_COMMANDS="auto", DEV_GUILD_ID=str(fd.guild_id))
    await rig.discord.wait_for(lambda: len(puts()) == 2)
    assert puts()[1].endswith(f"/guilds/{fd.guild_id}/commands")
    assert {c["name"] for c in fd.guild_commands} >= {"imagine"}


async def test_demo_mode_needs_no_openai_key(rig: Rig) -> None:
    await rig.start_bot(DEMO_MODE="true", OPENAI_API_KEY=None, OPENAI_BASE_URL=None)
    fd = rig.discord
    h = await fd.inject_interaction(fd.slash("imagine", {"prompt": "a demo robot"}))
    await h.wait_for(has_result, timeout=20)
    with Image.open(io.BytesIO(fd.cdn_bytes(final_files(h)[0]))) as im:
        assert im.format == "PNG" and im.size == (1024, 1024)
    assert rig.images.requests == []  # the built-in fake answered, not the test's


async def test_busy_bot_shows_queue_position_then_serves_everyone(rig: Rig) -> None:
    rig.images.delay_first_event = 0.8
    await rig.start_bot(MAX_CONCURRENT_IMAGES="1", STATUS_GRACE="0.1")
    fd = rig.discord
    first = await fd.inject_interaction(fd.slash("imagine", {"prompt": "first"}, user="alice"))
    await poll(lambda: len(rig.images.requests) == 1)  # the first job holds the only slot
    second = await fd.inject_interaction(fd.slash("imagine", {"prompt": "second"}, user="bob"))
    await second.wait_for(lambda h: h.original and "Queued" in (h.original.get("content") or ""), timeout=10)
    assert "position 1" in second.msg["content"]
    await first.wait_for(has_result, timeout=20)
    await second.wait_for(has_result, timeout=20)
    assert "Generating" in first.original_history[1]["content"]


async def test_expired_interaction_token_posts_the_result_in_the_channel(rig: Rig) -> None:
    rig.images.delay_first_event = 0.5
    await rig.start_bot()
    fd = rig.discord
    h = await fd.inject_interaction(fd.slash("imagine", {"prompt": "a slow painting"}))
    await h.wait_for(lambda x: x.acknowledged, timeout=10)
    h.expire()  # as if 15 minutes had passed
    channel_path = f"/channels/{fd.channel_id}/messages"
    post = await fd.wait_for_request(lambda r: r.method == "POST" and r.path == channel_path, timeout=20)
    assert f"<@{fd.users['alice'].id}>" in post.json["content"]
    assert [int(u) for u in post.json["allowed_mentions"]["users"]] == [fd.users["alice"].id]  # only the requester
    final = await fd.wait_for_request(
        lambda r: r.path.startswith(channel_path) and any(f.filename.startswith("imagebot-") for f in r.files),
        timeout=20,
    )
    assert final.files[0].data == rig.images.results[-1]


async def test_oversized_image_is_reencoded_to_fit_the_upload_limit(rig: Rig) -> None:
    rig.images.realistic = True  # multi-megabyte PNGs
    rig.discord.upload_limit = 400_000
    await rig.start_bot()
    fd = rig.discord
    h = await fd.inject_interaction(fd.slash("imagine", {"prompt": "a detailed forest", "size": "1024x1024"}))
    await h.wait_for(has_result, timeout=30)
    assert len(rig.images.results[-1]) > 400_000
    [final] = final_files(h)
    data = fd.cdn_bytes(final)
    assert len(data) <= 400_000 and final["filename"].endswith(".jpg")
    assert "re-encoded" in h.msg["content"]


async def test_streaming_refused_falls_back_to_a_plain_call(rig: Rig) -> None:
    rig.images.refuse_streaming = True
    await rig.start_bot()
    fd = rig.discord
    h = await fd.inject_interaction(fd.slash("imagine", {"prompt": "an unverified org's cat"}))
    await h.wait_for(has_result, timeout=20)
    assert fd.cdn_bytes(final_files(h)[0]) == rig.images.results[-1]
    streamed = [r.json.get("stream") for r in rig.images.requests]
    assert streamed == [True, None]  # refused once, then a non-streaming call


async def test_bad_api_key_is_reported_without_leaking_it_or_charging(rig: Rig) -> None:
    rig.images.fail_next(
        401, type="invalid_request_error", code="invalid_api_key", message="Incorrect API key provided: sk-test."
    )
    await rig.start_bot()
    fd = rig.discord
    h = await fd.inject_interaction(fd.slash("imagine", {"prompt": "anything"}))
    await h.wait_for(lambda x: x.original and "API key" in (x.original.get("content") or ""), timeout=20)
    assert "sk-test" not in h.msg["content"]
    assert not any(a["filename"].startswith("imagebot-") for a in files_of(h.original))
    assert len(rig.images.requests) == 1  # 401 is never retried
    await poll(lambda: job_rows(rig)[0]["status"] == "failed")  # refunded: not charged
