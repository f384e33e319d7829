"""``python -m bot.storage.copy``: an SQLite database copied into an empty PostgreSQL one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bot.rules import RuleStore
from bot.storage.copy import TABLES
from bot.storage.db import kv_get, kv_set, open_database
from bot.storage.postgres import PostgresBackend
from tests.helpers import pgserver
from tests.helpers.stores import GUILD, MOD, USER, Clock, clock, quota_on, reserve

__all__ = ["clock"]  # fixtures used here

ROOT = Path(__file__).resolve().parents[3]


def run_migrate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot.storage.copy", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


async def test_copy_keeps_everything_and_refuses_a_second_time(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "old.db"
    async with open_database(path) as conn:
        src = quota_on(conn, default_daily=5, default_monthly=50, clock=clock)
        await src.moderation.set_budget(GUILD, 3.0, actor_id=MOD)
        await src.moderation.set_timezone(GUILD, "Europe/Berlin", actor_id=MOD)
        await src.moderation.set_role_limit(GUILD, 77, daily=None, monthly=9, actor_id=MOD)
        first = await reserve(src, images=2, cost=0.08)
        await src.ledger.settle(first.job_id, images=2, cost=0)  # a whole REAL: SQLite may store 0 as an integer
        await reserve(src, kind="edit", parent_job_id=first.job_id)
        await src.moderation.reset_user(GUILD, USER, actor_id=MOD)
        await reserve(src, prompt='quote " and, comma')
        await kv_set(conn, "command_sync:1:global", "digest")
        rule = await RuleStore(conn, clock=clock).add(GUILD, "regex", "dr[a@]gon", sfw_only=True, actor_id=MOD)
        before_usage = await src.ledger.usage(GUILD, USER, (77,))
        before_report = await src.reports.report(GUILD)
        before_csv = await src.reports.ledger_csv(GUILD)

    url = await pgserver.server().new_database()
    done = run_migrate(f"sqlite:///{path}", url)
    assert done.returncode == 0, done.stderr
    assert "jobs: 3 row(s) copied, counts match" in done.stdout

    backend = await PostgresBackend.connect(url)
    try:
        dst = quota_on(backend, default_daily=5, default_monthly=50, clock=clock)
        assert await dst.ledger.usage(GUILD, USER, (77,)) == before_usage
        assert await dst.reports.report(GUILD) == before_report
        assert await dst.reports.ledger_csv(GUILD) == before_csv
        actions = [e.action for e in await dst.moderation.audit_log(GUILD)]
        assert actions == ["add_rule", "reset_user", "set_role_limit", "set_timezone", "set_budget"]
        rules = RuleStore(backend, clock=clock)
        assert await rules.list_rules(GUILD) == [rule]  # the prompt rules came along, and their ids go on
        assert (await rules.add(GUILD, "word", "bad", sfw_only=False, actor_id=MOD)).id == rule.id + 1
        assert await kv_get(backend, "command_sync:1:global") == "digest"
        fresh = await reserve(dst)  # identity counters were moved past the copied ids
        assert fresh.job_id == 4

        again = run_migrate(f"sqlite:///{path}", url)
        assert again.returncode == 1 and "not empty" in again.stderr and "jobs: 4" in again.stderr
        async with backend.plain() as tx:
            counts = {t: (await tx.fetchone(f"SELECT COUNT(*) FROM {t}"))[0] for t in TABLES}
        assert counts["jobs"] == 4 and counts["audit_log"] == 6  # nothing added by the refused run
    finally:
        await backend.close()


def test_bad_arguments_are_explained(tmp_path: Path) -> None:
    missing = run_migrate(f"sqlite:///{tmp_path / 'none.db'}", "postgresql://x@127.0.0.1:1/x")
    assert missing.returncode == 2 and "no SQLite database" in missing.stderr
    wrong = run_migrate("mysql://x", "postgresql://x@127.0.0.1:1/x")
    assert wrong.returncode == 2 and "SQLITE_URL" in wrong.stderr
    (tmp_path / "a.db").touch()
    target = run_migrate(f"sqlite:///{tmp_path / 'a.db'}", "sqlite:///b.db")
    assert target.returncode == 2 and "postgresql://" in target.stderr
