"""The long run: one bot process through a few hundred jobs, in rounds, watching what grows.

Each round starts ``per_round`` jobs at once from members not seen before: ``/imagine`` with previews, every
``edit_every``-th an ``/edit`` of a fresh ~1.3 MB upload (its inputs go to the recent-edits cache), and every
``cancel_every``-th cancelled with its Cancel button while it streams. When every job of the round has ended
(a result, or "Cancelled"), the bot's resident memory (all its processes), threads and open files are read
from /proc, with the round's final latency (command sent → result on Discord). After ``warmup`` rounds, the
slope of each per 1000 jobs is a least-squares fit over the remaining rounds.
"""

from __future__ import annotations

import asyncio
import io
import os
import random
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from bench.run import BenchError, BotProcess, ImagesAPIProcess, _Tracker
from bot.demo.discord import FakeDiscord, InteractionHandle
from bot.demo.discord.payloads import FakeUser

USER_BASE = 1_800_000_000_000_000_000


@dataclass
class LongRunOptions:
    rounds: int = 12
    per_round: int = 30
    edit_every: int = 4  # every 4th job is an /edit
    cancel_every: int = 10  # every 10th job is cancelled while it streams
    warmup: int = 2  # rounds left out of the slopes
    settle: float = 1.0  # seconds after a round before reading /proc (let freed memory go back)
    timeout: float = 120.0  # per round
    bot_env: dict[str, str] | None = None
    size: str = "1024x1024"


def _upload(seed: int) -> bytes:
    """A ~1.3 MB PNG that does not compress (what a photo costs as an edit input)."""
    rng = random.Random(seed)
    im = Image.frombytes("RGB", (760, 580), rng.randbytes(760 * 580 * 3))
    buf = io.BytesIO()
    im.save(buf, "PNG", compress_level=1)
    return buf.getvalue()


def _open_files(bot: BotProcess) -> int:
    total = 0
    for pid in bot._pids():
        try:
            total += len(os.listdir(f"/proc/{pid}/fd"))
        except OSError:
            continue
    return total


def _threads(bot: BotProcess) -> int:
    total = 0
    for pid in bot._pids():
        try:
            total += len(os.listdir(f"/proc/{pid}/task"))
        except OSError:
            continue
    return total


def slope_per_1000(xs: list[float], ys: list[float]) -> float | None:
    """Least-squares slope of ys over xs, times 1000 (xs in jobs)."""
    if len(xs) < 2:
        return None
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    if den == 0:
        return None
    return 1000 * sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den


async def _cancel_when_streaming(fd: FakeDiscord, h: InteractionHandle, user: FakeUser, deadline: float) -> bool:
    """Press the job's Cancel button once a preview is on its message. False if it ended first."""
    while time.monotonic() < deadline:
        msg = h.original or {}
        files = [a["filename"] for a in msg.get("attachments") or []]
        if any(f.startswith("imagebot-") for f in files):
            return False  # the result came first
        cancel = next(
            (
                c["custom_id"]
                for row in msg.get("components") or []
                for c in row.get("components") or []
                if c.get("label") == "Cancel"
            ),
            None,
        )
        if cancel is not None and any(f.startswith("preview") for f in files):
            await fd.inject_interaction(fd.button(cancel, msg, user=user))
            return True
        await asyncio.sleep(0.02)
    return False


def _ended(h: InteractionHandle) -> bool:
    content = str((h.original or {}).get("content") or "")
    return "Cancelled" in content


async def _start_round(
    fd: FakeDiscord, opts: LongRunOptions, upload: bytes, first_job: int
) -> list[tuple[InteractionHandle, FakeUser, str]]:
    """A round's jobs, each from a member of its own: imagines, every ``edit_every``-th an edit of an upload,
    every ``cancel_every``-th to be cancelled once it streams."""
    handles: list[tuple[InteractionHandle, FakeUser, str]] = []
    for i in range(opts.per_round):
        job_no = first_job + i
        user = FakeUser(USER_BASE + job_no, f"long{job_no}", f"Long {job_no}")
        prompt = f"long run job {job_no}: a lantern in the fog"
        if i % opts.edit_every == opts.edit_every - 1:
            att = fd.add_attachment(upload, f"photo{job_no}.png", "image/png")
            payload = fd.slash("edit", {"prompt": prompt}, attachments={"image": att}, user=user)
            kind = "edit"
        else:
            payload = fd.slash("imagine", {"prompt": prompt, "size": opts.size}, user=user)
            kind = "imagine"
        if i % opts.cancel_every == opts.cancel_every - 1:
            kind = "cancel"
        handles.append((await fd.inject_interaction(payload), user, kind))
    return handles


async def _wait_round(
    fd: FakeDiscord,
    bot: BotProcess,
    handles: list[tuple[InteractionHandle, FakeUser, str]],
    deadline: float,
    r: int,
) -> tuple[dict[str, float], bool]:
    """Until every job has its result or was cancelled: each result's seconds from its interaction, and
    whether the deadline came first. Raises ``BenchError`` if the bot dies."""
    tracker = _Tracker(fd, {h.token for h, _, _ in handles})
    finals: dict[str, float] = {}
    while time.monotonic() < deadline:
        tracker.update()
        now = time.monotonic()
        for h, _, _ in handles:
            if h.token not in tracker.pending and h.token not in finals:
                finals[h.token] = now - h.created
        if all(h.token in finals or _ended(h) for h, _, _ in handles):
            return finals, False
        if bot.proc is not None and bot.proc.returncode is not None:
            raise BenchError(f"the bot exited with code {bot.proc.returncode} in round {r + 1}")
        await asyncio.sleep(0.02)
    return finals, True


def _round_record(r: int, jobs_total: int, finals: dict[str, float], cancelled: int, bot: BotProcess) -> dict[str, Any]:
    lat = sorted(finals.values())
    return {
        "round": r + 1,
        "jobs_total": jobs_total,
        "results": len(finals),
        "cancelled": cancelled,
        "final_p50_ms": round(1000 * statistics.median(lat), 1) if lat else None,
        "rss_mb": round(bot.memory_mb()["VmRSS"], 1),
        "threads": _threads(bot),
        "open_files": _open_files(bot),
        "bench_rss_mb": round(_own_rss_mb(), 1),  # the harness's own memory, to tell its growth from the bot's
    }


def _own_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def run_long(api: ImagesAPIProcess, opts: LongRunOptions, workdir: Path) -> dict[str, Any]:
    await asyncio.to_thread(workdir.mkdir, parents=True, exist_ok=True)
    fd = FakeDiscord()
    await fd.start()
    fd.enforce_webhook_limits(5, 2.0)
    env = {"PARTIAL_IMAGES": "2", "MAX_CONCURRENT_IMAGES": str(max(8, opts.per_round)), **(opts.bot_env or {})}
    bot = BotProcess(fd, api.base_url, workdir, env)
    rounds: list[dict[str, Any]] = []
    problems: list[str] = []
    upload = _upload(1)
    job_no = 0
    try:
        await bot.start()
        await asyncio.sleep(opts.settle)
        start_rss = bot.memory_mb()["VmRSS"]
        for r in range(opts.rounds):
            handles = await _start_round(fd, opts, upload, job_no)
            job_no += len(handles)
            deadline = time.monotonic() + opts.timeout
            cancels = [
                asyncio.ensure_future(_cancel_when_streaming(fd, h, u, deadline))
                for h, u, k in handles
                if k == "cancel"
            ]
            finals, timed_out = await _wait_round(fd, bot, handles, deadline, r)
            if timed_out:
                problems.append(f"round {r + 1}: jobs still running after {opts.timeout:g}s")
            cancelled = sum(await asyncio.gather(*cancels)) if cancels else 0
            await asyncio.sleep(opts.settle)
            rounds.append(_round_record(r, job_no, finals, cancelled, bot))
            print(_round_line(rounds[-1]), flush=True)
            fd.forget_records()  # every round's jobs have ended: nothing left to wait for in them
    finally:
        code = await bot.stop()
        await fd.stop()
    log = bot.log_text()
    if code not in (0, None):
        problems.append(f"the bot exited with code {code}")
    if "Traceback" in log:
        problems.append("Traceback in the bot log")
    problems.extend(f"fake Discord: {e}" for e in fd.validation_errors[:5])
    return {"start_rss_mb": start_rss, "rounds": rounds, "slopes": slopes(rounds, opts.warmup), "problems": problems,
            "log_path": str(bot.log_path)}  # fmt: skip


def slopes(rounds: list[dict[str, Any]], warmup: int) -> dict[str, float | None]:
    """Per 1000 jobs, after the warm-up rounds: MB of RSS, threads, open files, ms of final p50."""
    kept = rounds[warmup:] if len(rounds) - warmup >= 2 else rounds
    xs = [float(r["jobs_total"]) for r in kept]
    out: dict[str, float | None] = {}
    for key in ("rss_mb", "threads", "open_files", "final_p50_ms"):
        ys = [r[key] for r in kept]
        out[key] = None if any(y is None for y in ys) else slope_per_1000(xs, [float(y) for y in ys])
    first = [r["final_p50_ms"] for r in kept[:2] if r["final_p50_ms"] is not None]
    last = [r["final_p50_ms"] for r in kept[-2:] if r["final_p50_ms"] is not None]
    out["final_p50_last_vs_first"] = statistics.fmean(last) / statistics.fmean(first) if first and last else None
    return out


def _round_line(r: dict[str, Any]) -> str:
    return (
        f"round {r['round']:>2}: {r['jobs_total']:>4} jobs, {r['results']} results, {r['cancelled']} cancelled, "
        f"final p50 {r['final_p50_ms']} ms, RSS {r['rss_mb']} MB, {r['threads']} threads, "
        f"{r['open_files']} open files"
    )


def report(result: dict[str, Any]) -> str:
    s = result["slopes"]

    def fmt(v: float | None, unit: str) -> str:
        return "-" if v is None else f"{v:+.1f} {unit}"

    ratio = s["final_p50_last_vs_first"]
    return "\n".join(
        [
            "long run, per 1000 jobs after warm-up:",
            f"  resident memory {fmt(s['rss_mb'], 'MB')} (target <= +10 MB)",
            f"  threads {fmt(s['threads'], '')}, open files {fmt(s['open_files'], '')} (target: no growth)",
            f"  final p50 {fmt(s['final_p50_ms'], 'ms')}; last rounds / first rounds "
            + ("-" if ratio is None else f"{ratio:.2f}x")
            + " (target within 10%)",
        ]
    )
