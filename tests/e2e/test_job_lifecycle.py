"""End to end: when a job is charged, and what happens when a step between reserving and delivering fails.

Faults are injected where they happen in production: in the database (a trigger that makes the
``reserved -> running`` update fail) and at the fake Discord (errors answered to the result's upload).
"""

from __future__ import annotations

import asyncio
import sqlite3

from tests.conftest import Rig
from tests.helpers.e2e import EPHEMERAL, has_result, job_rows, poll


def _add_trigger(rig: Rig, sql: str) -> None:
    con = sqlite3.connect(rig.db_path)
    try:
        con.execute(sql)
        con.commit()
    finally:
        con.close()


async def test_a_failure_marking_the_job_running_stops_every_image_before_the_api(rig: Rig) -> None:
    await rig.start_bot()
    _add_trigger(
        rig,
        "CREATE TRIGGER fail_start BEFORE UPDATE OF status ON jobs WHEN NEW.status = 'running' "
        "BEGIN SELECT RAISE(ABORT, 'injected: disk I/O error'); END",
    )
    rig.allow_tracebacks = True  # the unexpected database error is logged with its traceback
    fd = rig.discord
    h = await fd.inject_interaction(fd.slash("imagine", {"prompt": "three ravens", "count": 3}))
    await h.wait_for(lambda h: h.original and "❌" in (h.original.get("content") or ""), timeout=20)

    assert [r for r in rig.images.requests if r.path.endswith("/images/generations")] == []
    assert "injected" not in h.msg["content"]  # raw exception text never reaches the user
    await poll(lambda: job_rows(rig)[0]["status"] != "reserved")
    [job] = job_rows(rig)
    assert job["status"] == "failed" and job["images_done"] == 0

    # The quota was given back: /quota me shows nothing used today.
    me = await fd.inject_interaction(fd.slash("quota", {}, subcommand="me"))
    await me.wait_for(lambda h: h.original is not None)
    assert me.msg["flags"] & EPHEMERAL and "**Today**: 0 used" in me.msg["content"]


async def test_the_next_job_works_after_the_fault_is_gone(rig: Rig) -> None:
    await rig.start_bot()
    _add_trigger(
        rig,
        "CREATE TRIGGER fail_start BEFORE UPDATE OF status ON jobs WHEN NEW.status = 'running' "
        "BEGIN SELECT RAISE(ABORT, 'injected'); END",
    )
    rig.allow_tracebacks = True
    fd = rig.discord
    h = await fd.inject_interaction(fd.slash("imagine", {"prompt": "a boat"}))
    await h.wait_for(lambda h: h.original and "❌" in (h.original.get("content") or ""), timeout=20)
    _add_trigger(rig, "DROP TRIGGER fail_start")
    h2 = await fd.inject_interaction(fd.slash("imagine", {"prompt": "a boat"}))
    await h2.wait_for(has_result, timeout=20)
    await poll(lambda: job_rows(rig)[-1]["status"] == "done")


async def test_a_slow_database_delays_the_acknowledgement_and_costs_one_reservation(rig: Rig) -> None:
    await rig.start_bot()
    fd = rig.discord
    loop = asyncio.get_running_loop()
    # The test holds SQLite's write lock from its own connection: the bot's reservation waits for it
    # (its busy timeout is 5 s), as it would behind a slow disk or another process's long transaction.
    con = sqlite3.connect(rig.db_path, isolation_level=None)
    try:
        con.execute("BEGIN IMMEDIATE")
        asked = loop.time()
        h = await fd.inject_interaction(fd.slash("imagine", {"prompt": "a lighthouse in fog"}))
        await h.wait_for(lambda x: x.callbacks, timeout=10)
        waited = loop.time() - asked
        # Acknowledged publicly while the reservation still waits: no refusal to make, nothing written yet.
        assert h.callback_types == [5] and h.followups == []
        assert 1.0 < waited < 3.0, waited  # about ACK_AFTER (1.5 s); Discord drops it after 3 s
        assert job_rows(rig) == []
    finally:
        con.execute("COMMIT")
        con.close()
    await h.wait_for(has_result, timeout=20)
    await poll(lambda: job_rows(rig)[-1]["status"] == "done")
    # The one reservation went through: one job row, charged once, nothing refunded.
    [job] = job_rows(rig)
    assert job["status"] == "done" and job["images_reserved"] == 1 and job["images_done"] == 1
    assert " refunded " not in rig.log_text()
