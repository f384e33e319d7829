"""The SQLite writer's transactions on the event loop's thread, and its side connection
(``bot/storage/sqlite_side.py``): reads beside the writer, checkpoints off the loop."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from bot.storage import sqlite_side
from bot.storage.db import open_database
from bot.storage.sqlite import DirectSqliteTx, SqliteBackend, SqliteTx
from bot.storage.sqlite_side import side_of
from tests.helpers.waiting import poll


async def test_writes_run_on_the_loop_and_checkpoints_run_beside_them(tmp_path: Path) -> None:
    path = tmp_path / "bot.db"
    async with open_database(path) as conn:
        side = side_of(conn)
        assert side is not None
        backend = SqliteBackend(conn)
        async with conn.execute("PRAGMA wal_autocheckpoint") as cur:
            assert tuple(await cur.fetchone() or ()) == (0,)  # the writer's COMMITs never checkpoint
        for n in range(sqlite_side.CHECKPOINT_EVERY):
            async with backend.transaction(write=True) as tx:
                assert isinstance(tx, DirectSqliteTx)
                await tx.execute("INSERT INTO kv (key, value) VALUES (?, ?)", (f"k{n}", "v"))
        await poll(lambda: side.checkpoints >= 1, what="a checkpoint after the burst of commits")
        # Reads go to the side connection and see every commit.
        async with backend.transaction(write=False) as tx:
            assert isinstance(tx, SqliteTx) and tx.conn is side.reader
            assert (await tx.fetchone("SELECT COUNT(*) FROM kv WHERE key LIKE 'k%'"))[0] == sqlite_side.CHECKPOINT_EVERY
        async with backend.plain() as tx:
            assert isinstance(tx, SqliteTx) and tx.conn is side.reader
    assert side_of(conn) is None
    # Closed: the log was checkpointed and the file holds everything.
    with sqlite3.connect(path) as plain:
        count = plain.execute("SELECT COUNT(*) FROM kv WHERE key LIKE 'k%'").fetchone()[0]
    assert count == sqlite_side.CHECKPOINT_EVERY


async def test_a_write_lock_held_elsewhere_is_waited_for_off_the_loop(tmp_path: Path) -> None:
    path = tmp_path / "bot.db"
    async with open_database(path) as conn:
        backend = SqliteBackend(conn)
        other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        other.execute("BEGIN IMMEDIATE")
        direct = DirectSqliteTx(conn._conn)
        assert direct.try_begin(backend.busy_ms) is False  # busy now: nothing begun, the loop not held
        assert not conn.in_transaction

        async def write() -> None:
            async with backend.transaction(write=True) as tx:
                await tx.execute("INSERT INTO kv (key, value) VALUES ('waited', 'yes')")

        task = asyncio.create_task(write())
        # Barrier: a read answered while the write waits shows the loop is not the one waiting.
        async with backend.plain() as tx:
            assert tuple(await tx.fetchone("SELECT 1") or ()) == (1,)
        assert not task.done()
        other.execute("COMMIT")
        other.close()
        await task
        async with backend.plain() as tx:
            assert (await tx.fetchone("SELECT value FROM kv WHERE key = 'waited'"))[0] == "yes"
        async with conn.execute("PRAGMA busy_timeout") as cur:
            assert tuple(await cur.fetchone() or ()) == (backend.busy_ms,)  # restored after the attempt
