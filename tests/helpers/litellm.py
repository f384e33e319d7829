"""The real LiteLLM proxy (PyPI ``litellm``), installed once into its own venv and started on 127.0.0.1.

``litellm[proxy]==1.110.2`` cannot be installed from the index (its extra pins ``litellm-proxy``,
``litellm-proxy-extras`` and ``litellm-enterprise`` versions the index lacks), but the proxy's code ships in the
base wheel: ``litellm==1.110.2`` plus the modules the proxy imports at start, listed here, runs it. 1.107.0 was
a compromised release: the version is pinned exactly and checked after the install.

The venv lives in ``.venv/litellm-proxy``, beside the project's own venv (ignored by git, Docker and the
linters; ``IMAGEBOT_LITELLM_VENV`` moves it), and is reused while its stamp matches these requirements. An
install that fails (no index) fails the tests that need it: they never skip.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
LITELLM_VERSION = "1.110.2"
REQUIREMENTS = (
    f"litellm=={LITELLM_VERSION}",
    # The [proxy] extra's requirements that its server imports at start (lower bounds as the extra states them).
    "fastapi>=0.136.3,<1.0",
    "starlette>=1.0.1,<2.0",
    "uvicorn>=0.33.0,<1.0",
    "uvloop>=0.22.1,<1.0",
    "gunicorn>=23.0.0,<28.0",
    "orjson>=3.11.6,<4.0",
    "apscheduler>=3.11.2,<4.0",
    "python-multipart>=0.0.27,<1.0",
    "backoff>=2.2.1,<3.0",
    "pyyaml>=6.0.3,<7.0",
    "pyjwt>=2.13.0,<3.0",
    "cryptography>=49.0.0,<52.0",
    "websockets>=15.0.1,<16.0",
    "fastapi-sso>=0.19.0,<1.0",
    "mcp>=2.3.0,<3",
    "expression>=5.6.0,<6.0",
    "semver>=3.0.4,<4",
    "soundfile>=0.12.1,<1.0",
    "redis",
)
INSTALL_TIMEOUT = 900.0
START_TIMEOUT = 120.0
MASTER_KEY = "sk-litellm-master-0123456789"
UPSTREAM_KEY = "sk-upstream-0123456789"
COOLDOWN_SECONDS = 5  # LiteLLM's default, written out so the tests know how long a cooldown lasts


def venv_dir() -> Path:
    return Path(os.environ.get("IMAGEBOT_LITELLM_VENV") or REPO_ROOT / ".venv" / "litellm-proxy")


def _stamp() -> str:
    return hashlib.sha256("\n".join((sys.version, *REQUIREMENTS)).encode()).hexdigest()[:16]


_install_error: RuntimeError | None = None


def preinstall() -> None:
    """Install before the tests run (``tests/conftest.py``), outside any test's timeout; a failure is kept and
    raised by every test that needs the proxy."""
    global _install_error
    try:
        ensure_litellm()
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        _install_error = exc if isinstance(exc, RuntimeError) else RuntimeError(f"installing LiteLLM failed: {exc}")


def ensure_litellm() -> Path:
    """The ``litellm`` executable of a venv holding the proxy, installed on first use (under a file lock, so
    parallel test processes install once)."""
    if _install_error is not None:
        raise _install_error
    venv = venv_dir()
    venv.parent.mkdir(parents=True, exist_ok=True)
    exe = venv / "bin" / "litellm"
    stamp = venv / ".imagebot-stamp"
    with open(f"{venv}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if exe.exists() and stamp.exists() and stamp.read_text().strip() == _stamp():
            return exe
        started = time.monotonic()
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True, timeout=120)
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
        try:
            done = subprocess.run(
                [*pip, *REQUIREMENTS], capture_output=True, text=True, timeout=INSTALL_TIMEOUT, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise RuntimeError(f"installing LiteLLM {LITELLM_VERSION} took over {INSTALL_TIMEOUT:g}s") from exc
        if done.returncode != 0:
            raise RuntimeError(
                f"installing LiteLLM {LITELLM_VERSION} failed (is PyPI reachable?):\n{done.stderr[-3000:]}"
            )
        version = subprocess.run(
            [str(venv / "bin" / "python"), "-c", "import importlib.metadata as m; print(m.version('litellm'))"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        if version != LITELLM_VERSION:
            raise RuntimeError(f"installed litellm {version}, wanted {LITELLM_VERSION}")
        stamp.write_text(_stamp())
        print(f"installed LiteLLM {version} in {time.monotonic() - started:.0f}s", file=sys.stderr)
        return exe


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiteLLMProxy:
    """One proxy process with one model group, ``model``, served by an OpenAI-compatible ``upstream``."""

    def __init__(self, exe: Path, workdir: Path, upstream: str, models: tuple[str, ...]) -> None:
        self.exe = exe
        self.workdir = workdir
        self.upstream = upstream
        self.models = models
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.log_path = workdir / "litellm.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def config(self) -> str:
        entries = "".join(
            f"  - model_name: {m}\n    litellm_params:\n      model: openai/{m}\n"
            f"      api_base: {self.upstream}\n      api_key: {UPSTREAM_KEY}\n"
            for m in self.models
        )
        return (
            f"model_list:\n{entries}"
            f"router_settings:\n  cooldown_time: {COOLDOWN_SECONDS}\n"
            f"general_settings:\n  master_key: {MASTER_KEY}\n"
        )

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        cfg = self.workdir / "litellm.yaml"
        cfg.write_text(self.config())
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "LITELLM_", "DATABASE_URL"))}
        # Offline: the model cost map shipped in the wheel, no telemetry.
        env.update({"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_TELEMETRY": "False", "NO_DOCS": "True"})
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [str(self.exe), "--config", str(cfg), "--host", "127.0.0.1", "--port", str(self.port)],
            cwd=self.workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + START_TIMEOUT
        url = f"http://127.0.0.1:{self.port}/health/liveliness"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the LiteLLM proxy exited with {self.proc.returncode}:\n{self.log_tail()}")
            with contextlib.suppress(OSError, urllib.error.URLError):
                with urllib.request.urlopen(url, timeout=2) as resp:
                    if resp.status == 200:
                        return
            time.sleep(0.25)
        self.stop()
        raise RuntimeError(f"the LiteLLM proxy did not answer within {START_TIMEOUT:g}s:\n{self.log_tail()}")

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
