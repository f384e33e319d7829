"""Stopping a child process the way a supervisor does: SIGTERM, a grace period, then SIGKILL. Shared by the
playground's bot process, the test rig and the benchmark."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal


async def terminate(proc: asyncio.subprocess.Process, grace: float, *, pid: int | None = None) -> int:
    """SIGTERM to ``pid`` (default: ``proc`` itself, e.g. another when ``proc`` is a wrapper such as py-spy
    that ends with its child), wait up to ``grace`` seconds, then SIGKILL ``proc``. Returns its exit code."""
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid if pid is None else pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), grace)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return proc.returncode
