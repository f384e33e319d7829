"""Money survives a database hiccup: a settle that fails on a locked database is retried with backoff and
the job is charged exactly once; the person keeps the image meanwhile."""

from __future__ import annotations

import sqlite3

from bot.demo.discord import InteractionHandle
from tests.conftest import Rig
from tests.helpers.e2e import final_files, has_result, job_rows, poll


def content(h: InteractionHandle) -> str:
    return str((h.original or {}).get("content") or "")


async def test_a_settle_on_a_locked_database_is_retried_and_charged_once(rig: Rig) -> None:
    rig.images.delay_first_event = 1.0  # time to take the lock once the job runs
    await rig.start_bot(PARTIAL_IMAGES="0")
    rig.allow_tracebacks = True  # the instance lease's renewal fails too while the database is locked, logged so
    fd = rig.discord
    h = await fd.inject_interaction(fd.slash("imagine", {"prompt": "a locked vault"}))
    await poll(lambda: [j["status"] for j in job_rows(rig)] == ["running"])
    # Another writer holds the database past the bot's busy timeout (5 s): its writes fail with "locked".
    blocker = sqlite3.connect(rig.db_path, isolation_level=None, timeout=1)
    try:
        blocker.execute("BEGIN EXCLUSIVE")
        await rig.wait_for_log("settling job 1 failed", timeout=30)
        assert has_result(h), content(h)  # the person already has the image
        assert job_rows(rig)[0]["status"] == "running"
    finally:
        blocker.execute("COMMIT")
        blocker.close()
    await poll(lambda: job_rows(rig)[0]["status"] == "done", timeout=20)
    [job] = job_rows(rig)
    assert job["images_done"] == 1 and job["cost_actual"] > 0
    assert len(final_files(h)) == 1
    log = rig.log_text()
    assert log.count("settling job 1 failed") >= 1 and "settling job 1 failed" + " 8 times" not in log
    assert "giving up" not in log.replace("recording job 1's message failed 2 times; giving up", "")
    assert log.count("already recorded by an earlier attempt") == 0
