"""The doctor's database check names the path the bot's user cannot write: the file, or its folder (where
SQLite creates its -wal and -shm files). The container runs as uid 10001; a volume created by root is the
classic first-day failure. Checked for another user's uid (from owner, group and mode bits) and, when the
tests do not run as root, for this process's own user too (``os.access``)."""

from __future__ import annotations

import io
import os
import sqlite3
from pathlib import Path

import pytest

from bot.ops.doctor import check_database, writable_by
from bot.ops.doctor_api import Report

OTHER = 65534 if os.getuid() != 65534 else 65533  # a user who owns none of these files


def run(path: Path, uid: int | None) -> str:
    out = io.StringIO()
    check_database(path, Report(out), uid=uid)
    return out.getvalue().strip()


def make(tmp_path: Path) -> tuple[Path, Path]:
    folder = tmp_path / "data"
    folder.mkdir()
    file = folder / "imagebot.db"
    sqlite3.connect(file).close()
    return folder, file


def test_a_folder_another_user_cannot_write_is_named(tmp_path: Path) -> None:
    folder, file = make(tmp_path)
    folder.chmod(0o755)
    file.chmod(0o666)
    line = run(file, OTHER)
    assert line.startswith("FAIL database: ") and f"{folder} (its folder) is not writable by" in line
    assert f"(uid {OTHER})" in line and f"chown -R {OTHER} {folder}" in line and "10001" in line


def test_a_file_another_user_cannot_write_is_named(tmp_path: Path) -> None:
    folder, file = make(tmp_path)
    folder.chmod(0o777)
    file.chmod(0o644)
    line = run(file, OTHER)
    assert line.startswith("FAIL database: ") and f"{file} (the database file) is not writable" in line


def test_a_missing_file_in_a_folder_another_user_cannot_write(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir(mode=0o755)
    line = run(folder / "imagebot.db", OTHER)
    assert f"cannot create {folder / 'imagebot.db'}: {folder} is not writable by the user the bot runs as" in line


def test_writable_for_that_user_passes_the_permission_check(tmp_path: Path) -> None:
    folder, file = make(tmp_path)
    folder.chmod(0o777)
    file.chmod(0o666)
    assert writable_by(file, OTHER) and writable_by(folder, OTHER, search=True)
    assert "not writable" not in run(file, OTHER)
    assert writable_by(file, 0)  # root writes anything


@pytest.mark.skipif(os.getuid() == 0, reason="root may write read-only files: covered above for another uid")
def test_this_users_read_only_folder(tmp_path: Path) -> None:
    folder, file = make(tmp_path)
    folder.chmod(0o555)
    try:
        line = run(file, None)
        assert f"{folder} (its folder) is not writable" in line
    finally:
        folder.chmod(0o755)
