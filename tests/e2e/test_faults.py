"""End to end: when Discord misbehaves mid-job, every job ends with a true message and a correct charge.

Faults are injected at the fake Discord the way the real one answers (``fd.fail``: 403 50013 Missing
Permissions only on requests with files, 503 on every attempt, 404 10008 after a deletion, expired tokens).
Each test then checks what the user finally sees, the ledger, and that the next request works.
"""

from __future__ import annotations

import asyncio
import time

from bot.demo.discord import InteractionHandle
from tests.conftest import Rig
from tests.helpers.e2e import buttons, files_of, has_result, job_rows, poll, results_of

ORIGINAL = r"/webhooks/\d+/[^/]+/messages/@original$"


def _content(h: InteractionHandle) -> str:
    return str((h.original or {}).get("content") or "")


async def _next_request_works(rig: Rig) -> None:
    fd = rig.discord
    h = await fd.inject_interaction(fd.slash("imagine", {"prompt": "and now a quick one"}))
    await h.wait_for(has_result, timeout=20)
    await poll(lambda: job_rows(rig)[-1]["status"] == "done")


async def test_no_attach_files_mid_job_gives_a_text_note_and_a_refund(rig: Rig) -> None:
    """Permission taken away after the job started: previews and the result are refused (403 50013 on
    requests with files only); the bot says so in a text-only edit and refunds."""
    rig.images.delay_between_events = 0.2
    await rig.start_bot()
    fd = rig.discord
    rule = fd.fail("PATCH", ORIGINAL, 403, code=50013, message="Missing Permissions", with_files=True, times=None)
    h = await fd.inject_interaction(fd.slash("imagine", {"prompt": "a secret garden"}))
    await h.wait_for(lambda h: "couldn't be delivered" in _content(h), timeout=20)
    assert "Attach Files" in _content(h) and "didn't count against your quota" in _content(h)
    assert results_of(h.original) == []
    assert rule.hits >= 1
    await poll(lambda: job_rows(rig)[0]["status"] == "failed")
    [job] = job_rows(rig)
    assert job["images_done"] == 0 and job["cost_actual"] > 0  # the owner was billed; the member is not charged
    rule.remove()
    await _next_request_works(rig)


async def test_discord_503_on_every_attempt_of_the_final_edit(rig: Rig) -> None:
    await rig.start_bot(PARTIAL_IMAGES="0")
    fd = rig.discord
    rule = fd.fail("PATCH", ORIGINAL, 503, with_files=True, times=None)
    h = await fd.inject_interaction(fd.slash("imagine", {"prompt": "a lighthouse"}))
    await h.wait_for(lambda h: "couldn't be delivered" in _content(h), timeout=60)
    assert "Discord had a problem" in _content(h)
    assert rule.hits >= 2  # discord.py retried before the bot gave up
    await poll(lambda: job_rows(rig)[0]["status"] == "failed")
    assert job_rows(rig)[0]["images_done"] == 0
    rule.remove()
    await _next_request_works(rig)


async def test_deleting_the_progress_message_mid_job_cancels_it(rig: Rig) -> None:
    rig.images.delay_between_events = 1.0
    await rig.start_bot()
    fd = rig.discord
    h = await fd.inject_interaction(fd.slash("imagine", {"prompt": "a moth"}))
    await h.wait_for(lambda h: bool(files_of(h.original)), timeout=15)  # the first preview is shown
    await fd.delete_message(h.msg)
    await poll(lambda: job_rows(rig)[0]["status"] == "cancelled", timeout=15)
    await poll(lambda: rig.images.closed_by_client == 1, timeout=10)
    await asyncio.sleep(0.5)
    # Nothing was posted instead: no channel message, no ping, no empty file.
    assert fd.bot_messages() == []
    assert job_rows(rig)[0]["images_done"] == 0
    await _next_request_works(rig)


async def test_deleting_the_message_just_before_the_result_charges_nothing(rig: Rig) -> None:
    rig.images.delay_between_events = 1.0
    await rig.start_bot(PARTIAL_IMAGES="1")
    fd = rig.discord
    h = await fd.inject_interaction(fd.slash("imagine", {"prompt": "a paper crane"}))
    await h.wait_for(lambda h: bool(files_of(h.original)), timeout=15)  # the only preview: no edit until the result
    await fd.delete_message(h.msg)
    await poll(lambda: job_rows(rig)[0]["status"] not in ("reserved", "running"), timeout=20)
    [job] = job_rows(rig)
    assert job["status"] == "failed" and job["images_done"] == 0
    assert fd.bot_messages() == []  # no 0-byte file, no ping in the channel
    await _next_request_works(rig)


async def test_an_expired_token_posts_the_whole_result_in_the_channel(rig: Rig) -> None:
    rig.images.delay_between_events = 0.6
    await rig.start_bot(PARTIAL_IMAGES="1")
    fd = rig.discord
    h = await fd.inject_interaction(fd.slash("imagine", {"prompt": "an owl at night"}))
    await h.wait_for(lambda h: bool(files_of(h.original)), timeout=15)
    h.expire()
    await fd.wait_for(lambda: any(results_of(m) for m in fd.bot_messages()), timeout=20)
    [posted] = [m for m in fd.bot_messages() if results_of(m)]
    [image] = results_of(posted)
    assert fd.cdn_bytes(image) == rig.images.results[-1]  # the real bytes, not an empty re-send
    assert set(buttons(posted)) == {"Reroll", "Edit", "Delete"}
    await poll(lambda: job_rows(rig)[0]["status"] == "done")


async def test_sigterm_while_streaming_says_the_bot_restarted_and_refunds(rig: Rig) -> None:
    rig.images.delay_between_events = 2.0
    await rig.start_bot(SHUTDOWN_GRACE="0.5")
    fd = rig.discord
    h = await fd.inject_interaction(fd.slash("imagine", {"prompt": "a slow glacier"}))
    await h.wait_for(lambda h: "Generating" in _content(h), timeout=15)
    assert await rig.stop_bot() == 0
    assert "bot restarted" in _content(h) and "didn't count against your quota" in _content(h)
    assert "Cancel" not in buttons(h.msg)
    [job] = job_rows(rig)
    assert job["status"] == "cancelled" and job["images_done"] == 0
    await rig.start_bot()
    await _next_request_works(rig)


async def test_sigterm_with_default_settings_exits_within_dockers_stop_timeout(rig: Rig) -> None:
    # A job that would take far longer than any grace: docker stop sends SIGTERM, then SIGKILL after 10 s.
    rig.images.delay_between_events = 60.0
    await rig.start_bot(SHUTDOWN_GRACE=None)  # the shipped default
    fd = rig.discord
    h = await fd.inject_interaction(fd.slash("imagine", {"prompt": "a very slow glacier"}))
    await h.wait_for(lambda h: "Generating" in _content(h), timeout=15)
    started = time.monotonic()
    assert await rig.stop_bot(timeout=15) == 0
    took = time.monotonic() - started
    assert took < 10.0, f"exited {took:.1f} s after SIGTERM"
    assert "bot restarted" in _content(h) and "didn't count against your quota" in _content(h)
    [job] = job_rows(rig)
    assert job["status"] == "cancelled" and job["images_done"] == 0


async def test_sigterm_lets_a_job_that_finishes_within_the_grace_period_deliver(rig: Rig) -> None:
    rig.images.delay_between_events = 0.5
    await rig.start_bot(SHUTDOWN_GRACE="10")
    fd = rig.discord
    h = await fd.inject_interaction(fd.slash("imagine", {"prompt": "a patient turtle"}))
    await h.wait_for(lambda h: "Generating" in _content(h), timeout=15)
    assert await rig.stop_bot() == 0
    assert has_result(h)
    assert job_rows(rig)[0]["status"] == "done"
