"""End to end: the Cancel button on a job's progress message (queued, streaming, after a restart, races)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from bot.demo.discord import InteractionHandle
from tests.helpers.e2e import EPHEMERAL, buttons, has_result, job_rows, poll
from tests.plugins.rig import Rig


def _has_cancel(h: InteractionHandle) -> bool:
    return bool(h.original) and "Cancel" in buttons(h.msg)


def _content(h: InteractionHandle) -> str:
    return str((h.original or {}).get("content") or "")


async def _click(
    rig: Rig, custom_id: str, message: dict[str, Any], user: str = "alice", *, as_shown: bool = False
) -> InteractionHandle:
    """Click a button of ``message``; ``as_shown``: of the message as it looked then (a click racing an edit)."""
    fd = rig.discord
    payload = fd.button(custom_id, message, user=user)
    if as_shown:
        payload["message"] = message
    click = await fd.inject_interaction(payload)
    await click.wait_for(lambda c: c.acknowledged, timeout=10)
    return click


def _generations(rig: Rig) -> int:
    return len([r for r in rig.images.requests if r.path.endswith("/images/generations")])


async def test_cancel_while_streaming_closes_the_stream_and_refunds(rig: Rig) -> None:
    rig.images.delay_between_events = 1.0
    await rig.start_bot()
    fd = rig.discord
    h = await fd.inject_interaction(fd.slash("imagine", {"prompt": "a slow sunrise"}))
    await h.wait_for(_has_cancel, timeout=15)
    assert "Generating" in _content(h) or "Queued" in _content(h)

    click = await _click(rig, buttons(h.msg)["Cancel"], h.msg)
    assert click.callback_types == [6]  # a silent acknowledgement: the job's message says what happened
    await h.wait_for(lambda h: "Cancelled by Alice" in _content(h), timeout=15)
    assert "Nothing was charged" in _content(h)
    assert "Cancel" not in buttons(h.msg)  # the progress buttons are gone
    assert not [a for a in h.msg.get("attachments") or [] if a["filename"].startswith("imagebot-")]

    await poll(lambda: rig.images.closed_by_client == 1, timeout=10)  # the stream was closed at the API
    await poll(lambda: job_rows(rig)[0]["status"] == "cancelled")
    [job] = job_rows(rig)
    assert job["images_done"] == 0 and job["cost_actual"] == 0
    assert _generations(rig) == 1

    # The next request works as usual.
    rig.images.delay_between_events = 0.0
    h2 = await fd.inject_interaction(fd.slash("imagine", {"prompt": "a quick sunset"}))
    await h2.wait_for(has_result, timeout=20)


async def test_cancel_while_queued_leaves_the_queue_without_an_api_call(rig: Rig) -> None:
    rig.images.delay_between_events = 1.0
    await rig.start_bot(MAX_CONCURRENT_IMAGES="1")
    fd = rig.discord
    first = await fd.inject_interaction(fd.slash("imagine", {"prompt": "bob's castle"}, user="bob"))
    await poll(lambda: _generations(rig) == 1, timeout=15)
    queued = await fd.inject_interaction(fd.slash("imagine", {"prompt": "alice's garden"}))
    await queued.wait_for(lambda h: _has_cancel(h) and "Queued" in _content(h), timeout=15)

    await _click(rig, buttons(queued.msg)["Cancel"], queued.msg)
    await queued.wait_for(lambda h: "Cancelled by Alice" in _content(h), timeout=15)
    await first.wait_for(has_result, timeout=30)
    assert _generations(rig) == 1  # the cancelled job never reached the API
    rows = {r["prompt"]: r for r in job_rows(rig)}
    assert rows["alice's garden"]["status"] == "cancelled" and rows["alice's garden"]["images_done"] == 0
    await poll(lambda: {r["prompt"]: r["status"] for r in job_rows(rig)}["bob's castle"] == "done")


async def test_only_the_requester_or_a_moderator_may_cancel(rig: Rig) -> None:
    rig.images.delay_between_events = 0.8
    await rig.start_bot()
    fd = rig.discord
    h = await fd.inject_interaction(fd.slash("imagine", {"prompt": "a red door", "count": 2}))
    await h.wait_for(_has_cancel, timeout=15)
    cancel_id = buttons(h.msg)["Cancel"]

    refused = await _click(rig, cancel_id, h.msg, user="bob")
    [note] = refused.followups or [refused.msg]
    assert note["flags"] & EPHEMERAL and "can cancel it" in note["content"]

    await _click(rig, cancel_id, h.msg, user="mod")  # Manage Messages
    await h.wait_for(lambda h: "Cancelled by Mod" in _content(h), timeout=15)
    await poll(lambda: job_rows(rig)[0]["status"] == "cancelled")


async def test_cancel_after_a_restart_says_the_job_has_ended(rig: Rig) -> None:
    """The bot was killed mid-job: the message still shows Cancel; the restarted bot no longer runs the job."""
    rig.images.delay_between_events = 2.0
    await rig.start_bot()
    fd = rig.discord
    h = await fd.inject_interaction(fd.slash("imagine", {"prompt": "a lantern"}))
    await h.wait_for(_has_cancel, timeout=15)
    await rig.kill_bot()
    await rig.start_bot()
    after = await _click(rig, buttons(h.msg)["Cancel"], h.msg)
    [note] = after.followups or [after.msg]
    assert note["flags"] & EPHEMERAL and "already ended" in note["content"]
    [job] = job_rows(rig)
    assert job["status"] == "crashed" and job["images_done"] == 0  # refunded by the crash recovery


@pytest.mark.parametrize("click_after", ["partial_image", "completed"])
async def test_cancel_racing_the_final_event_ends_in_one_consistent_state(rig: Rig, click_after: str) -> None:
    """Cancel clicked the moment the API writes the last partial frame, or the completed event: delivered and
    charged, or cancelled and refunded, never both and never neither."""
    rig.images.delay_between_events = 0.5
    await rig.start_bot()
    fd = rig.discord
    h = await fd.inject_interaction(fd.slash("imagine", {"prompt": "a racing snail"}))
    await h.wait_for(_has_cancel, timeout=15)
    progress = copy.deepcopy(h.msg)
    wanted = 1 if click_after == "partial_image" else None

    def written() -> bool:
        return any(
            e.type.endswith("." + click_after) and (wanted is None or e.partial_index == wanted)
            for e in rig.images.events
        )

    await poll(written, timeout=15)
    await _click(rig, buttons(progress)["Cancel"], progress, as_shown=True)
    await h.wait_for(lambda h: has_result(h) or "Cancelled" in _content(h), timeout=20)
    await poll(lambda: job_rows(rig)[0]["status"] in ("done", "cancelled"))
    [job] = job_rows(rig)
    if click_after == "partial_image":
        assert job["status"] == "cancelled"  # half a second before the result: the cancel wins
    if job["status"] == "done":
        assert has_result(h) and job["images_done"] == 1
    else:
        assert "Cancelled" in _content(h) and not has_result(h) and job["images_done"] == 0
