"""One benchmark run: fake Discord (here), fake Images API (its own process), the real bot (its own process).

``run_load`` starts a fresh fake Discord and a fresh bot (fresh database), injects ``jobs`` simultaneous
``/imagine`` interactions from as many synthetic users and, from that moment until the last of them has its
result, a probe: another ``/imagine`` from a member not seen before, every ~``probe_interval`` seconds, timed
from the gateway sending the interaction to the bot's callback reaching the fake Discord (what a person sees
as "thinking…" appearing). Probe jobs run to their result like any other (their load is part of the rush)
but are not counted in the jobs' figures. Returns what the fakes recorded, plus the bot's CPU, memory and
the counters of its ``/metrics``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import re
import shutil
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bench.lag import LagMonitor
from bot.demo.discord import FakeDiscord, InteractionHandle
from bot.demo.discord.payloads import FakeUser
from bot.demo.processes import terminate

REPO_ROOT = Path(__file__).resolve().parents[1]
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024

SUBJECTS = (
    "a lighthouse on a cliff in a winter storm, oil painting",
    "a red fox asleep in autumn leaves, macro photograph",
    "a busy night market in the rain, neon reflections",
    "an isometric cutaway of a cosy library with a cat",
    "a hot air balloon over terraced rice fields at dawn",
    "a brass steam locomotive crossing a stone viaduct",
    "a watercolour map of an imaginary archipelago",
    "a robot gardener watering tomatoes on a balcony",
)
PROMPT_TAG = re.compile(r"^bench run (\d+) job (\d+):")
SYNTHETIC_USER_BASE = 1_600_000_000_000_000_000
PROBE_USER_BASE = 1_700_000_000_000_000_000
PROBE_SUBJECT = "a paper boat on a puddle, probe"


class BenchError(RuntimeError):
    """The run itself broke (the bot did not start, crashed, or jobs never finished)."""


@dataclass
class LoadOptions:
    jobs: int
    size: str = "1536x1024"
    partials: int = 2
    probe_interval: float = 0.2  # mean seconds between probe interactions while jobs stream
    webhook_limit: tuple[int, float] = (5, 2.0)  # per interaction token: 5 edits per 2 s, as Discord reports
    settle: float = 1.0  # seconds to keep recording after the last result
    timeout: float = 120.0
    bot_env: dict[str, str] = field(default_factory=dict)
    workdir: Path = Path("/tmp")
    profile: Path | None = None  # run the bot under py-spy, raw samples to this file
    seed: int = 1  # of the fake API's delays and of the probes' timing
    bot_module: str = "bot"  # "bench.baseline": the non-streaming bot the burst profile compares against


# --- the fake Images API process ----------------------------------------------------------------


class ImagesAPIProcess:
    """``python -m bench.imagesapi`` as a child process, spoken to over its stdin/stdout."""

    def __init__(self, *, size: str, partials: int, pool: int, delay_first: float, delay_between: float,
                 jitter: float, log_path: Path, delay_response: float | None = None) -> None:  # fmt: skip
        self.args = [
            "--size", size, "--partials", str(partials), "--pool", str(pool), "--delay-first", str(delay_first),
            "--delay-between", str(delay_between), "--jitter", str(jitter),
        ]  # fmt: skip
        if delay_response is not None:
            self.args += ["--delay-response", str(delay_response)]
        self.log_path = log_path
        self.proc: asyncio.subprocess.Process | None = None
        self.base_url = ""
        self.pid = 0
        self.prewarm_seconds = 0.0
        self._lock = asyncio.Lock()

    async def start(self, timeout: float = 120.0) -> None:  # noqa: ASYNC109
        env = _child_env()
        with self.log_path.open("ab") as log:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bench.imagesapi", *self.args,
                cwd=REPO_ROOT, env=env, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=log, limit=64 * 1024 * 1024,
            )  # fmt: skip
        try:
            hello = await asyncio.wait_for(self._read(), timeout)
        except (TimeoutError, BenchError) as exc:
            await self.stop()
            raise BenchError(f"the fake Images API did not start: {exc}\n{_tail(self.log_path)}") from None
        self.base_url = hello["base_url"]
        self.pid = int(hello["pid"])
        self.prewarm_seconds = float(hello["prewarm_seconds"])

    async def _read(self) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdout is not None
        line = await self.proc.stdout.readline()
        if not line:
            raise BenchError("the fake Images API process exited")
        return json.loads(line)

    async def seed(self, seed: int) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        async with self._lock:
            self.proc.stdin.write(f"seed {seed}\n".encode())
            await self.proc.stdin.drain()
            await asyncio.wait_for(self._read(), 30)

    async def dump(self) -> dict[str, Any]:
        """Events, loop-lag samples and CPU seconds since the previous dump."""
        assert self.proc is not None and self.proc.stdin is not None
        async with self._lock:
            self.proc.stdin.write(b"dump\n")
            await self.proc.stdin.drain()
            return await asyncio.wait_for(self._read(), 30)

    async def stop(self) -> None:
        proc = self.proc
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(Exception):
            assert proc.stdin is not None
            proc.stdin.write(b"quit\n")
            await proc.stdin.drain()
        try:
            await asyncio.wait_for(proc.wait(), 5)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()


# --- the bot process ------------------------------------------------------------------------------


class BotProcess:
    """The real bot (``python -m bot``), as the e2e rig starts it, plus /proc readings."""

    def __init__(
        self,
        fd: FakeDiscord,
        images_base: str,
        workdir: Path,
        extra_env: dict[str, str],
        profile: Path | None = None,
        module: str = "bot",
    ) -> None:
        self.fd = fd
        self.images_base = images_base
        self.workdir = workdir
        self.extra_env = extra_env
        self.profile = profile
        self.module = module
        self.log_path = workdir / "bot.log"
        self.metrics_port = _free_port()  # the bot's /metrics (our bot only; the baseline has none)
        self.proc: asyncio.subprocess.Process | None = None
        self._pid: int | None = None

    def env(self) -> dict[str, str]:
        env = _child_env()
        env.update(
            {
                "DISCORD_TOKEN": self.fd.token,
                "OPENAI_API_KEY": "sk-bench",
                "OPENAI_BASE_URL": self.images_base,
                "DISCORD_API_BASE": self.fd.api_base,
                "DISCORD_GATEWAY_URL": self.fd.gateway_url,
                "DATABASE_URL": f"sqlite:///{self.workdir / 'bot.storage.db'}",
                "SYNC_COMMANDS": "always",
                "LOG_LEVEL": "WARNING",
                "DEFAULT_DAILY_LIMIT": "unlimited",
                "DEFAULT_MONTHLY_LIMIT": "unlimited",
                "BOT_USER_DAILY_LIMIT": "unlimited",  # the shipped caps would stop a 64-job run
                "BOT_MONTHLY_BUDGET_USD": "unlimited",
                "IMAGEBOT_ENV_FILE": str(self.workdir / "no.env"),  # never read the developer's .env
                "HEALTH_ADDRESS": f"127.0.0.1:{self.metrics_port}",
            }
        )
        env.update(self.extra_env)
        return env

    async def start(self, timeout: float = 30.0) -> None:  # noqa: ASYNC109
        cwd = self.workdir / "cwd"
        cwd.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", self.module]
        if self.profile is not None:  # py-spy runs the bot as its child (attaching needs privileges)
            spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
            command = [spy, "record", "--threads", "--idle", "--nonblocking", "-r", "100", "-f", "raw",
                       "-o", str(self.profile), "--", *command]  # fmt: skip
        with self.log_path.open("ab") as log:
            self.proc = await asyncio.create_subprocess_exec(
                *command, cwd=cwd, env=self.env(), stdin=asyncio.subprocess.DEVNULL,
                stdout=log, stderr=asyncio.subprocess.STDOUT,
            )  # fmt: skip
        fd = self.fd
        deadline = time.monotonic() + timeout

        def ready() -> bool:
            return bool(fd.identifies) and any(
                r.method == "PUT" and r.path.endswith("/commands") and r.status == 200 for r in fd.requests
            )

        while not ready():
            if self.proc.returncode is not None:
                raise BenchError(f"the bot exited with code {self.proc.returncode} at start\n{_tail(self.log_path)}")
            if time.monotonic() > deadline:
                raise BenchError(f"the bot was not ready after {timeout:g}s\n{_tail(self.log_path)}")
            await asyncio.sleep(0.05)

    @property
    def pid(self) -> int:
        """The bot's own pid (under --profile, the child of py-spy)."""
        assert self.proc is not None
        if self.profile is None:
            return self.proc.pid
        if self._pid is None:
            children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
            self._pid = int(children[0])
        return self._pid

    def _pids(self) -> list[int]:
        """The bot and its child processes (preview workers, if it runs any), from /proc."""
        pids = [self.pid]
        with contextlib.suppress(OSError):
            for tid in os.listdir(f"/proc/{self.pid}/task"):
                children = Path(f"/proc/{self.pid}/task/{tid}/children").read_text().split()
                pids.extend(int(c) for c in children)
        return pids

    def cpu_seconds(self) -> float:
        """utime + stime of the bot process (all its threads) and of its live children, from /proc/<pid>/stat."""
        total = 0
        for pid in self._pids():
            with contextlib.suppress(OSError):
                stat = Path(f"/proc/{pid}/stat").read_text()
                fields = stat[stat.rindex(")") + 2 :].split()
                total += int(fields[11]) + int(fields[12])
        return total / CLOCK_TICKS

    def memory_mb(self) -> dict[str, float]:
        """VmRSS (now) and VmHWM (peak so far) in MB, from /proc/<pid>/status, summed over the bot and its
        children (with children, the summed peaks overstate the peak of the sum)."""
        out: dict[str, float] = {"VmRSS": 0.0, "VmHWM": 0.0}
        for pid in self._pids():
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    key, _, value = line.partition(":")
                    if key in ("VmRSS", "VmHWM"):
                        out[key] += int(value.split()[0]) / 1024
        return out

    def threads(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/task"))

    async def stop(self, timeout: float = 15.0) -> int | None:  # noqa: ASYNC109
        if self.proc is None:
            return None
        pid = None
        with contextlib.suppress(OSError, IndexError):  # the bot under py-spy, which ends with its child
            pid = self.pid
        return await terminate(self.proc, timeout, pid=pid)

    async def stats(self) -> dict[str, Any]:
        """What the bot counted, from its ``/metrics``: ``{"decodes": {"partial": n, "final": n}}``; empty
        for a bot that serves no metrics (the baseline)."""
        if self.module != "bot":
            return {}
        try:
            async with aiohttp.ClientSession() as session:
                url = f"http://127.0.0.1:{self.metrics_port}/metrics"
                async with session.get(url, timeout=aiohttp.ClientTimeout(total=10)) as resp:
                    text = await resp.text()
        except (aiohttp.ClientError, TimeoutError):
            return {}
        decodes = {m.group(1): int(float(m.group(2))) for m in DECODES.finditer(text)}
        lag = {m.group(1): float(m.group(2)) for m in LAG_BUCKETS.finditer(text)}
        lag.update({m.group(1): float(m.group(2)) for m in LAG_TOTALS.finditer(text)})
        return {"decodes": decodes, "loop_lag": lag} if decodes else {}

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


DECODES = re.compile(r'^imagebot_image_decodes_total\{kind="(\w+)"\} (\S+)$', re.M)
LAG_BUCKETS = re.compile(r'^imagebot_event_loop_lag_seconds_bucket\{le="([^"]+)"\} (\S+)$', re.M)
LAG_TOTALS = re.compile(r"^imagebot_event_loop_lag_seconds_(count|sum) (\S+)$", re.M)


def loop_lag_between(before: dict[str, Any], after: dict[str, Any]) -> dict[str, float] | None:
    """The bot's own loop-lag samples taken between two readings of its /metrics: how many, how many
    more than 50 and 100 ms late, and the seconds late in all."""
    a, b = after.get("loop_lag") or {}, before.get("loop_lag") or {}
    if "count" not in a:
        return None

    def d(key: str) -> float:
        return a.get(key, 0.0) - b.get(key, 0.0)

    n = d("count")
    return {"samples": n, "over_50ms": n - d("0.05"), "over_100ms": n - d("0.1"), "late_s": round(d("sum"), 3)}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _child_env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DISCORD_", "OPENAI_", "IMAGEBOT_")) and k != "DATABASE_URL"
    }
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _tail(path: Path, lines: int = 40) -> str:
    if not path.exists():
        return ""
    text = path.read_text(errors="replace").splitlines()[-lines:]
    return f"----- {path.name} (tail) -----\n" + "\n".join(text)


# --- driving the load -----------------------------------------------------------------------------


def _request_record(r: Any) -> dict[str, Any]:
    content = r.json.get("content") if isinstance(r.json, dict) else None
    return {
        "time": r.time,
        "method": r.method,
        "path": r.path,
        "token": r.token,
        "status": r.status,
        "files": [f.filename for f in r.files],
        "content": content,
    }


class _Tracker:
    """Which job tokens have their final image, scanning ``fd.requests`` incrementally (cheap to poll)."""

    def __init__(self, fd: FakeDiscord, tokens: set[str]) -> None:
        self.fd = fd
        self.pending = set(tokens)
        self._seen = 0

    def update(self) -> None:
        requests = self.fd.requests
        end = len(requests)
        i = self._seen
        while i < end:
            r = requests[i]
            if r.status is None:
                break  # not answered yet: look again next time
            if (
                r.token in self.pending
                and r.method in ("PATCH", "POST")  # the result edited in, or (the baseline) a follow-up
                and r.path.startswith("/webhooks/")
                and r.status == 200
                and any(f.filename.startswith("imagebot-") for f in r.files)
            ):
                self.pending.discard(r.token)
            i += 1
        self._seen = i


async def _probe(fd: FakeDiscord, run_id: int, k: int, size: str) -> InteractionHandle:
    """A member not seen before asks for an image: the whole command path (checks, reservation, the
    acknowledgement), not a shortcut that skips what people wait for."""
    user = FakeUser(PROBE_USER_BASE + run_id * 10_000 + k, f"probe{k}", f"Probe {k}")
    payload = fd.slash("imagine", {"prompt": f"bench run {run_id} probe {k}: {PROBE_SUBJECT}", "size": size}, user=user)
    return await fd.inject_interaction(payload)


async def _inject_jobs(fd: FakeDiscord, run_id: int, opts: LoadOptions) -> dict[int, InteractionHandle]:
    """The rush: ``opts.jobs`` members each ask for an image at once."""
    users = [FakeUser(SYNTHETIC_USER_BASE + i, f"bench{i}", f"Bench {i}") for i in range(opts.jobs)]
    handles: dict[int, InteractionHandle] = {}
    for i in range(opts.jobs):
        prompt = f"bench run {run_id} job {i}: {SUBJECTS[i % len(SUBJECTS)]}"
        payload = fd.slash("imagine", {"prompt": prompt, "size": opts.size}, user=users[i])
        handles[i] = await fd.inject_interaction(payload)
    return handles


async def _rush(
    fd: FakeDiscord,
    bot: BotProcess,
    run_id: int,
    opts: LoadOptions,
    handles: dict[int, InteractionHandle],
    deadline: float,
    problems: list[str],
) -> list[InteractionHandle]:
    """Until every job has its result (or the deadline, or the bot's death: a problem), a probe every
    ~``probe_interval`` seconds. Returns the probes."""
    tracker = _Tracker(fd, {h.token for h in handles.values()})
    probes: list[InteractionHandle] = []
    rng = random.Random(opts.seed)
    next_probe = time.monotonic()  # from the first moment of the rush
    while True:
        tracker.update()
        if not tracker.pending:
            return probes
        now = time.monotonic()
        if now > deadline:
            problems.append(f"{len(tracker.pending)} of {opts.jobs} jobs had no result after {opts.timeout:g}s")
            return probes
        if bot.proc is not None and bot.proc.returncode is not None:
            problems.append(f"the bot exited with code {bot.proc.returncode} during the run")
            return probes
        if now >= next_probe:
            probes.append(await _probe(fd, run_id, len(probes), opts.size))
            next_probe = now + opts.probe_interval * rng.uniform(0.5, 1.5)
        await asyncio.sleep(0.01)


async def _probe_results(
    fd: FakeDiscord, probes: list[InteractionHandle], deadline: float, problems: list[str]
) -> None:
    """Wait for the probe jobs' results too (unless the run is already broken): a problem if some never come."""
    probe_tracker = _Tracker(fd, {h.token for h in probes})
    while probe_tracker.pending and time.monotonic() < deadline and not problems:
        probe_tracker.update()
        await asyncio.sleep(0.02)
    if probe_tracker.pending and not problems:
        problems.append(f"{len(probe_tracker.pending)} of {len(probes)} probe jobs had no result")


def _afterwards(bot: BotProcess, code: int | None, fd: FakeDiscord, api_after: dict[str, Any]) -> list[str]:
    """What went wrong that shows only once the run is over: the exit code, the log, invalid requests."""
    problems = []
    if code not in (0, None):
        problems.append(f"the bot exited with code {code}")
    if "Traceback" in bot.log_text():
        problems.append("Traceback in the bot log")
    problems.extend(f"fake Discord: {e}" for e in fd.validation_errors[:5])
    problems.extend(f"fake Images API: {e}" for e in api_after["validation_errors"][:5])
    return problems


async def run_load(run_id: int, api: ImagesAPIProcess, opts: LoadOptions) -> dict[str, Any]:
    """One run at ``opts.jobs`` simultaneous jobs. Returns raw records (see ``bench.metrics.compute``)."""
    n = opts.jobs
    workdir = opts.workdir / f"n{n}-run{run_id}"
    workdir.mkdir(parents=True, exist_ok=True)
    fd = FakeDiscord()
    await fd.start()
    fd.enforce_webhook_limits(*opts.webhook_limit)
    env = {
        "PARTIAL_IMAGES": str(opts.partials),
        "MAX_CONCURRENT_IMAGES": str(max(8, n)),
        **opts.bot_env,
    }
    bot = BotProcess(fd, api.base_url, workdir, env, opts.profile, opts.bot_module)
    lag = LagMonitor()
    lag.start()
    problems: list[str] = []
    try:
        await api.dump()  # forget events of earlier runs
        await bot.start()
        await asyncio.sleep(1.5)  # let start-up settle: this is the idle figure
        idle = bot.memory_mb()
        threads_idle = bot.threads()

        await api.seed(opts.seed * 1000 + n)
        stats_before = await bot.stats()
        cpu_before = bot.cpu_seconds()
        api_before = await api.dump()
        bench_cpu_before = _own_cpu()
        machine_before = _machine_cpu()
        t0 = time.monotonic()
        handles = await _inject_jobs(fd, run_id, opts)
        deadline = t0 + opts.timeout
        probes = await _rush(fd, bot, run_id, opts, handles, deadline, problems)
        t_done = time.monotonic()
        machine_after = _machine_cpu()
        await _probe_results(fd, probes, deadline, problems)  # before the bot is stopped
        await asyncio.sleep(opts.settle)
        t_end = time.monotonic()
        cpu_after = bot.cpu_seconds()
        bench_cpu_after = _own_cpu()
        busy = bot.memory_mb()
        threads_busy = bot.threads()
        stats = await bot.stats()
        api_after = await api.dump()
    finally:
        await lag.stop()
        code = await bot.stop()
        await fd.stop()
    problems += _afterwards(bot, code, fd, api_after)

    events = [e for e in api_before["events"] + api_after["events"] if _run_of(e["prompt"]) == run_id]
    api_lag = [lag for t, lag in api_after["lag"] if t0 <= t <= t_done]
    return {
        "jobs": n,
        "partials": opts.partials,
        "size": opts.size,
        "t0": t0,
        "t_done": t_done,
        "t_end": t_end,
        "job_tokens": {str(i): h.token for i, h in handles.items()},
        "job_sent": {str(i): h.created for i, h in handles.items()},
        "probes": [{"kind": "imagine-new-member", "token": h.token, "sent": h.created} for h in probes],
        "events": [
            {
                "job": _job_of(e["prompt"]),
                "type": e["type"],
                "partial_index": e["partial_index"],
                "time": e["time"],
                "started": e["started"],
            }
            for e in events
        ],
        "requests": [_request_record(r) for r in fd.requests if r.time >= t0 - 0.001],
        "rate_limited": fd.rate_limited_count,
        "bot": {
            "cpu_seconds": cpu_after - cpu_before,
            "idle_rss_mb": idle.get("VmRSS", 0.0),
            "peak_rss_mb": busy.get("VmHWM", 0.0),
            "end_rss_mb": busy.get("VmRSS", 0.0),
            "threads_idle": threads_idle,
            "threads_busy": threads_busy,
            "exit_code": code,
            "module": opts.bot_module,
            "stats": stats,
            "loop_lag": loop_lag_between(stats_before, stats),
        },
        "bench": {
            "cpu_seconds": bench_cpu_after - bench_cpu_before,
            "loop_lag": lag.between(t0, t_done),
        },
        "machine": {
            # share of all cores' time, while the jobs ran: busy (every process), and stolen by the host
            "busy": (machine_after[0] - machine_before[0]) / max(1, machine_after[2] - machine_before[2]),
            "steal": (machine_after[1] - machine_before[1]) / max(1, machine_after[2] - machine_before[2]),
        },
        "fake_api": {
            "cpu_seconds": api_after["cpu"] - api_before["cpu"],
            "loop_lag": api_lag,
        },
        "problems": problems,
        "log_path": str(bot.log_path),
    }


def _machine_cpu() -> tuple[int, int, int]:
    """(busy, steal, total) jiffies of the whole machine, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    busy = user + nice + system + irq + softirq
    return busy, steal, busy + idle + iowait + steal


def _own_cpu() -> float:
    t = os.times()
    return t.user + t.system


def _run_of(prompt: str) -> int | None:
    m = PROMPT_TAG.match(prompt)
    return int(m.group(1)) if m else None


def _job_of(prompt: str) -> int:
    m = PROMPT_TAG.match(prompt)
    assert m is not None
    return int(m.group(2))
