"""Helpers shared by the end-to-end tests: reading what the fake Discord recorded and the bot's database."""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any

from bot.demo.discord import InteractionHandle
from tests.plugins.rig import Rig

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


async def poll(predicate: Any, timeout: float = 10.0) -> None:  # noqa: ASYNC109
    """Wait for something outside the fakes (e.g. the bot's database) to become true."""
    for _ in range(int(timeout / 0.05)):
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


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
