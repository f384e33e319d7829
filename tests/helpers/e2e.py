"""Helpers shared by the end-to-end tests: reading what the fake Discord recorded and the bot's database,
waiting for a state (``poll``), and checking that nothing else happened (``barrier``)."""

from __future__ import annotations

import sqlite3
from typing import Any

from bot.demo.discord import FakeDiscord, InteractionHandle
from tests.helpers.waiting import poll
from tests.plugins.rig import Rig

__all__ = [
    "EPHEMERAL",
    "barrier",
    "buttons",
    "db",
    "files_of",
    "final_files",
    "has_result",
    "job_rows",
    "poll",
    "results_of",
]

EPHEMERAL = 64  # message flag


def files_of(message: dict[str, Any] | None) -> list[dict[str, Any]]:
    return list((message or {}).get("attachments") or [])


def results_of(message: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The result images of a message (previews excluded)."""
    return [a for a in files_of(message) if a["filename"].startswith("imagebot-")]


def final_files(h: InteractionHandle) -> list[dict[str, Any]]:
    return results_of(h.original)


def has_result(h: InteractionHandle) -> bool:
    """The interaction's message shows result images and its buttons."""
    return bool(final_files(h)) and bool((h.original or {}).get("components"))


def buttons(message: dict[str, Any]) -> dict[str, str]:
    """label -> custom_id of every button on a message."""
    return {
        c.get("label"): c.get("custom_id")
        for row in message.get("components") or []
        for c in row.get("components") or []
        if c.get("type") == 2
    }


def answered(h: InteractionHandle) -> bool:
    """The bot has answered the interaction: a message, or a deferral followed by its edit or a follow-up."""
    if not h.callbacks:
        return False
    return h.callbacks[0]["type"] != 5 or bool(h.edits) or bool(h.followups)


async def barrier(
    fd: FakeDiscord,
    *,
    user: str = "alice",
    channel_id: int | None = None,
    timeout: float = 10,  # noqa: ASYNC109
) -> InteractionHandle:
    """Prove the bot has handled what the test sent before, so that a "nothing else happened" check means
    something: send a cheap probe (``/quota me``) and wait for its answer.

    Gateway events reach the bot in order on one connection and discord.py starts their handlers in that
    order, so once the probe is answered, everything sent before it has been received and handled at least
    as far as its first wait. A fixed sleep proves nothing on a slow machine; the barrier waits exactly as
    long as the bot needs. The probe goes to the other channel by default (``channel_id`` to choose), so its
    own answer does not mix with the messages the test checks in the main channel. Returns the probe."""
    channel = fd.other_channel_id if channel_id is None else channel_id
    probe = await fd.inject_interaction(fd.slash("quota", subcommand="me", user=user, channel_id=channel))
    await probe.wait_for(answered, timeout=timeout)
    return probe


def db(rig: Rig, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
    """Rows from the bot's SQLite database (read while the bot runs: WAL allows it)."""
    con = sqlite3.connect(rig.db_path)
    con.row_factory = sqlite3.Row
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


def job_rows(rig: Rig) -> list[sqlite3.Row]:
    return db(rig, "SELECT * FROM jobs ORDER BY id")
