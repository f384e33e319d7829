"""End to end: when a job is charged, and what happens when a step between reserving and delivering fails.

Faults are injected where they happen in production: in the database (a trigger that makes the
``reserved -> running`` update fail) and at the fake Discord (errors answered to the result's upload).
"""

from __future__ import annotations

import sqlite3

from tests.helpers.e2e import EPHEMERAL, has_result, job_rows, poll
from tests.plugins.rig import Rig


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
