"""End to end: a button's custom id names a job; the bot checks the job belongs where the button was clicked.

The payloads here are forged the way a hostile client could: the message they carry has the button, but the
click comes from another channel or another server.
"""

from __future__ import annotations

import copy
from typing import Any

from bot.demo.discord import InteractionHandle
from tests.helpers.e2e import EPHEMERAL, buttons, has_result, job_rows
from tests.plugins.rig import Rig


async def _result(rig: Rig) -> InteractionHandle:
    fd = rig.discord
    h = await fd.inject_interaction(fd.slash("imagine", {"prompt": "a private prompt of server one"}))
    await h.wait_for(has_result, timeout=20)
    return h


def _forged(rig: Rig, custom_id: str, message: dict[str, Any], **changes: str) -> dict[str, Any]:
    payload = rig.discord.button(custom_id, message, user="bob")
    payload["message"] = copy.deepcopy(message)
    for key, value in changes.items():
        payload[key] = value
        if key == "channel_id":
            payload["message"]["channel_id"] = value
            payload["channel"] = {**payload.get("channel", {}), "id": value}
    return payload


async def _refusal(rig: Rig, payload: dict[str, Any]) -> str:
    h = await rig.discord.inject_interaction(payload)
    await h.wait_for(lambda h: h.original is not None or h.followups, timeout=10)
    [note] = h.followups or [h.msg]
    assert note["flags"] & EPHEMERAL
    return str(note["content"])


async def test_reroll_of_a_job_from_another_channel_is_refused_and_charges_nobody(rig: Rig) -> None:
    await rig.start_bot()
    h = await _result(rig)
    reroll = buttons(h.msg)["Reroll"]
    other = str(rig.discord.world.other_channel_id)
    text = await _refusal(rig, _forged(rig, reroll, h.msg, channel_id=other))
    assert "doesn't belong" in text
    assert len(job_rows(rig)) == 1  # nothing reserved for the clicker
    assert len([r for r in rig.images.requests if r.path.endswith("/generations")]) == 1


async def test_buttons_naming_another_servers_job_are_refused(rig: Rig) -> None:
    await rig.start_bot()
    h = await _result(rig)
    foreign_guild = str(rig.discord.world.guild_id + 1)
    for label in ("Reroll", "Delete"):
        text = await _refusal(rig, _forged(rig, buttons(h.msg)[label], h.msg, guild_id=foreign_guild))
        assert "doesn't belong" in text
    assert len(job_rows(rig)) == 1
    assert not rig.discord.requests_to("DELETE", r"/messages/")  # nothing was deleted


async def test_delete_of_someone_elses_result_is_refused_without_manage_messages(rig: Rig) -> None:
    await rig.start_bot()
    h = await _result(rig)
    text = await _refusal(rig, rig.discord.button(buttons(h.msg)["Delete"], h.msg, user="bob"))
    assert "can delete it" in text
    assert not rig.discord.requests_to("DELETE", r"/messages/")
