"""From what the fakes recorded to the benchmark's figures (pure functions: no I/O, no clocks).

Times are ``time.monotonic()`` from both fakes (one clock on Linux, whatever the process).

* preview latency: the fake API *starts writing* a job's first partial frame → the fake Discord receives
  the first edit of that job's message carrying a preview (normally "frame 1/2"; if frame 1 was skipped,
  the first frame that was shown). Counting from the start of the write charges the bot for reading the
  multi-megabyte event too.
* final latency: the fake API starts writing ``completed`` → the edit carrying ``imagebot-*`` arrives.
* acknowledgement latency: the fake gateway sends a probe interaction while the jobs stream → its
  callback arrives.
* stale frame: an edit showing frame k that arrives after the fake API had finished writing a newer frame
  (k+1, or the completed image) of the same job.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

FRAME = re.compile(r"frame (\d+)/(\d+)")

TARGETS: dict[str, tuple[str, float]] = {  # name: (comparison, target); "calls_per_job" depends on frames
    "preview_p50_ms": ("<=", 80),
    "preview_p99_ms": ("<=", 250),
    "final_p50_ms": ("<=", 150),
    "ack_p99_ms": ("<=", 150),
    "cpu_per_image_s": ("<=", 0.3),
    "peak_rss_mb": ("<=", 250),
    "idle_rss_mb": ("<=", 100),
    "rate_limited": ("<=", 0),
    "stale_frames": ("<=", 0),
}


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def summary_ms(seconds: list[float]) -> dict[str, float | int | None]:
    def ms(v: float | None) -> float | None:
        return None if v is None else round(v * 1000, 1)

    return {
        "n": len(seconds),
        "p50": ms(percentile(seconds, 50)),
        "p90": ms(percentile(seconds, 90)),
        "p99": ms(percentile(seconds, 99)),
        "max": ms(max(seconds) if seconds else None),
    }


def _files(r: dict[str, Any], prefix: str) -> bool:
    return any(name.startswith(prefix) for name in r["files"])


def _frame_shown(r: dict[str, Any]) -> int | None:
    """The frame number a successful preview edit shows, else None."""
    if r["method"] != "PATCH" or r["status"] != 200 or not _files(r, "preview-"):
        return None
    m = FRAME.search(r["content"] or "")
    return int(m.group(1)) if m else None


def _is_final(r: dict[str, Any]) -> bool:
    """The result: edited into the job's message, or (the baseline bot) posted as a follow-up."""
    return (
        r["method"] in ("PATCH", "POST")
        and r["path"].startswith("/webhooks/")
        and r["status"] == 200
        and _files(r, "imagebot-")
    )


@dataclass
class _Tally:
    """What the jobs' edits showed, job by job: latency samples and counts."""

    first_preview: list[float] = field(default_factory=list)
    every_preview: list[float] = field(default_factory=list)
    finals: list[float] = field(default_factory=list)
    calls: list[int] = field(default_factory=list)
    extra_edits: int = 0
    stale: int = 0
    frames_sent: int = 0
    frames_shown: int = 0
    no_preview: int = 0
    delivered: int = 0

    def add_job(self, reqs: list[dict[str, Any]], evs: list[dict[str, Any]]) -> None:
        """One job: the requests of its token (in time order) and the events the fake API wrote for it."""
        partial_ev = {int(e["partial_index"]) + 1: e for e in evs if e["type"].endswith(".partial_image")}
        # the stream's result, or a non-streaming answer (the baseline bot)
        completed = next((e for e in evs if e["type"].endswith(".completed") or e["type"] == "response"), None)
        self.frames_sent += len(partial_ev)
        self.calls.append(len(reqs))
        shown, final_at = self._read_edits(reqs, partial_ev, completed)
        self.frames_shown += len(shown)
        if shown and 1 in partial_ev:
            self.first_preview.append(min(shown.values()) - partial_ev[1]["started"])
        elif partial_ev:
            self.no_preview += 1
        for k, t in shown.items():
            if k in partial_ev:
                self.every_preview.append(t - partial_ev[k]["started"])
        if final_at is not None:
            self.delivered += 1
            if completed is not None:
                self.finals.append(final_at - completed["started"])

    def _read_edits(
        self, reqs: list[dict[str, Any]], partial_ev: dict[int, dict[str, Any]], completed: dict[str, Any] | None
    ) -> tuple[dict[int, float], float | None]:
        """When each frame was first shown, and when the result arrived; counts stale and status-only edits."""
        shown: dict[int, float] = {}
        final_at: float | None = None
        for r in reqs:
            frame = _frame_shown(r)
            if frame is not None:
                shown.setdefault(frame, r["time"])
                newer = [e["time"] for k, e in partial_ev.items() if k > frame]
                if completed is not None:
                    newer.append(completed["time"])
                if newer and r["time"] > min(newer):
                    self.stale += 1
            elif _is_final(r):
                final_at = final_at or r["time"]
            elif r["method"] == "PATCH":
                self.extra_edits += 1  # neither a new frame nor the result: a status-only edit
        return shown, final_at


def _ack_latency(
    by_token: dict[str, list[dict[str, Any]]], handles: list[tuple[str, float]]
) -> tuple[list[float], int]:
    """Seconds from sending each interaction to its callback, and how many got no successful callback."""
    lat: list[float] = []
    failed = 0
    for token, sent in handles:
        cb = next((r for r in by_token.get(token, []) if r["path"].endswith("/callback")), None)
        if cb is None or cb["status"] != 200:
            failed += 1
        if cb is not None:
            lat.append(cb["time"] - sent)
    return lat, failed


def _probe_jobs(by_token: dict[str, list[dict[str, Any]]], probes: list[dict[str, Any]]) -> tuple[int, int]:
    """Probe jobs run like the others: their previews count against the bot's decodes, their results as work.
    Returns (frames shown, results delivered)."""
    shown = 0
    delivered = 0
    for p in probes:
        reqs = by_token.get(p["token"], [])
        shown += len({f for f in map(_frame_shown, reqs) if f is not None})
        delivered += any(_is_final(r) for r in reqs)
    return shown, delivered


def compute(raw: dict[str, Any]) -> dict[str, Any]:
    n = int(raw["jobs"])
    partials = int(raw["partials"])
    token_job = {tok: int(j) for j, tok in raw["job_tokens"].items()}
    by_token: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in sorted(raw["requests"], key=lambda r: r["time"]):
        if r["token"] is not None:
            by_token[r["token"]].append(r)
    events: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for e in raw["events"]:
        events[int(e["job"])].append(e)
    tally = _Tally()
    for token, job in token_job.items():
        tally.add_job(by_token.get(token, []), events.get(job, []))
    probe_lat, probe_failed = _ack_latency(by_token, [(p["token"], p["sent"]) for p in raw["probes"]])
    probe_shown, probe_delivered = _probe_jobs(by_token, raw["probes"])
    job_handles = [(tok, raw["job_sent"][j]) for j, tok in raw["job_tokens"].items()]
    burst_lat, burst_failed = _ack_latency(by_token, job_handles)
    bot = raw["bot"]
    problems = list(raw["problems"])
    if probe_failed:
        problems.append(f"{probe_failed} of {len(raw['probes'])} probe interactions were not acknowledged")
    if burst_failed:
        problems.append(f"{burst_failed} of {n} jobs' interactions were not acknowledged")
    if tally.delivered < n:
        problems.append(f"{n - tally.delivered} of {n} jobs got no result")
    part = {
        "runs": 1,
        "jobs": n,
        "partials": partials,
        "delivered": tally.delivered,
        "wall_s": raw["t_done"] - raw["t0"],
        "samples": {
            "preview": tally.first_preview,
            "preview_all": tally.every_preview,
            "final": tally.finals,
            "ack": probe_lat,
            "burst_ack": burst_lat,
            "bench_lag": raw["bench"]["loop_lag"],
            "fake_api_lag": raw["fake_api"]["loop_lag"],
        },
        "ack_failed": probe_failed,
        "burst_failed": burst_failed,
        "bot_cpu_s": bot["cpu_seconds"],
        "idle_rss_mb": bot["idle_rss_mb"],
        "peak_rss_mb": bot["peak_rss_mb"],
        "threads": {"idle": bot["threads_idle"], "busy": bot["threads_busy"]},
        "calls": tally.calls,
        "status_only_edits": tally.extra_edits,
        "rate_limited": int(raw["rate_limited"]),
        "stale_frames": tally.stale,
        "frames_sent": tally.frames_sent,
        "frames_shown": tally.frames_shown,
        "probe_frames_shown": probe_shown,
        "probe_jobs": len(raw["probes"]),
        "probe_delivered": probe_delivered,
        "jobs_without_preview": tally.no_preview,
        # partial frames the bot decoded (its /metrics, imagebot_image_decodes_total); None if it does not count
        "partial_decodes": (bot.get("stats") or {}).get("decodes", {}).get("partial"),
        "final_decodes": (bot.get("stats") or {}).get("decodes", {}).get("final"),
        "bot_module": bot.get("module", "bot"),
        "bot_loop_lag": bot.get("loop_lag"),
        "bench_cpu_s": raw["bench"]["cpu_seconds"],
        "fake_api_cpu_s": raw["fake_api"]["cpu_seconds"],
        "machine_busy": raw["machine"]["busy"],
        "machine_steal": raw["machine"]["steal"],
        "problems": problems,
    }
    return summarise([part])


def summarise(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """The figures of one or more runs at the same N: latency samples pooled, CPU summed over images,
    memory and calls the worst run's, 429s and stale frames summed."""
    n, partials = parts[0]["jobs"], parts[0]["partials"]
    pool: dict[str, list[float]] = {k: [v for p in parts for v in p["samples"][k]] for k in parts[0]["samples"]}
    delivered = sum(p["delivered"] for p in parts)
    cpu = sum(p["bot_cpu_s"] for p in parts)
    images = delivered + sum(p.get("probe_delivered", 0) for p in parts)  # every image the CPU paid for
    calls = [c for p in parts for c in p["calls"]]
    budget = 2 + partials
    frames_sent = sum(p["frames_sent"] for p in parts)
    frames_shown = sum(p["frames_shown"] for p in parts)
    fig: dict[str, Any] = {
        "jobs": n,
        "runs": len(parts),
        "delivered": delivered,
        "wall_s": round(max(p["wall_s"] for p in parts), 2),
        "preview_latency_ms": summary_ms(pool["preview"]),
        "preview_latency_all_frames_ms": summary_ms(pool["preview_all"]),
        "final_latency_ms": summary_ms(pool["final"]),
        "ack_latency_ms": {**summary_ms(pool["ack"]), "failed": sum(p["ack_failed"] for p in parts)},
        "burst_ack_latency_ms": {**summary_ms(pool["burst_ack"]), "failed": sum(p["burst_failed"] for p in parts)},
        "cpu_per_image_s": round(cpu / max(1, images), 3),
        "probe_jobs": sum(p.get("probe_jobs", 0) for p in parts),
        "bot_cpu_s": round(cpu / len(parts), 2),
        "idle_rss_mb": round(max(p["idle_rss_mb"] for p in parts), 1),
        "peak_rss_mb": round(max(p["peak_rss_mb"] for p in parts), 1),
        "threads": parts[-1]["threads"],
        "calls_per_job": {
            "mean": round(sum(calls) / len(calls), 2) if calls else None,
            "max": max(calls) if calls else None,
            "budget": budget,
        },
        "status_only_edits": sum(p["status_only_edits"] for p in parts),
        "rate_limited": sum(p["rate_limited"] for p in parts),
        "stale_frames": sum(p["stale_frames"] for p in parts),
        "frames": {
            "sent": frames_sent,
            "shown": frames_shown,
            "skipped": frames_sent - frames_shown,
            "shown_with_probes": frames_shown + sum(p.get("probe_frames_shown", 0) for p in parts),
        },
        "jobs_without_preview": sum(p["jobs_without_preview"] for p in parts),
        "bench_loop_lag_ms": summary_ms(pool["bench_lag"]),
        "bench_cpu_s": round(sum(p["bench_cpu_s"] for p in parts) / len(parts), 2),
        "fake_api_loop_lag_ms": summary_ms(pool["fake_api_lag"]),
        "fake_api_cpu_s": round(sum(p["fake_api_cpu_s"] for p in parts) / len(parts), 2),
        "machine_busy_pct": round(100 * sum(p["machine_busy"] for p in parts) / len(parts), 1),
        "machine_steal_pct": round(100 * sum(p["machine_steal"] for p in parts) / len(parts), 1),
        "problems": [x for p in parts for x in p["problems"]],
        "parts": parts,
    }
    values: dict[str, float | None] = {
        "preview_p50_ms": fig["preview_latency_ms"]["p50"],
        "preview_p99_ms": fig["preview_latency_ms"]["p99"],
        "final_p50_ms": fig["final_latency_ms"]["p50"],
        "ack_p99_ms": fig["ack_latency_ms"]["p99"],
        "cpu_per_image_s": fig["cpu_per_image_s"],
        "peak_rss_mb": fig["peak_rss_mb"],
        "idle_rss_mb": fig["idle_rss_mb"],
        "rate_limited": fig["rate_limited"],
        "stale_frames": fig["stale_frames"],
    }
    targets: dict[str, dict[str, Any]] = {}
    for name, (op, target) in TARGETS.items():
        value = values[name]
        targets[name] = {"value": value, "target": f"{op} {target:g}", "met": value is not None and value <= target}
    max_calls = fig["calls_per_job"]["max"]
    targets["calls_per_job_max"] = {
        "value": max_calls,
        "target": f"<= {budget}",
        "met": max_calls is not None and max_calls <= budget,
    }
    fig["targets"] = targets
    decodes = [p.get("partial_decodes") for p in parts]
    fig["partial_decodes"] = None if any(d is None for d in decodes) else sum(d for d in decodes if d is not None)
    fig["bot_module"] = parts[0].get("bot_module", "bot")
    lags: list[dict[str, float]] = [p["bot_loop_lag"] for p in parts if p.get("bot_loop_lag")]
    fig["bot_loop_lag"] = (
        {k: round(sum(x[k] for x in lags), 3) for k in ("samples", "over_50ms", "over_100ms", "late_s")}
        if lags
        else None
    )
    fig["run_medians"] = run_medians(parts)
    return fig


def _per_run(part: dict[str, Any]) -> dict[str, float | None]:
    """The headline figures of one run (latencies in ms)."""

    def ms(key: str, q: float) -> float | None:
        v = percentile(part["samples"][key], q)
        return None if v is None else v * 1000

    return {
        "final_p50_ms": ms("final", 50),
        "final_p99_ms": ms("final", 99),
        "preview_p50_ms": ms("preview", 50),
        "ack_p99_ms": ms("ack", 99),
        "ack_max_ms": ms("ack", 100),
        "burst_ack_p99_ms": ms("burst_ack", 99),
        "cpu_per_job_s": part["bot_cpu_s"] / max(1, part["delivered"] + part.get("probe_delivered", 0)),
        "peak_rss_mb": part["peak_rss_mb"],
        "machine_busy_pct": 100 * part["machine_busy"],
    }


def run_medians(parts: list[dict[str, Any]]) -> dict[str, float | None]:
    """The median over runs of each headline figure (what the burst targets are stated in)."""
    per = [_per_run(p) for p in parts]
    out: dict[str, float | None] = {}
    for key in per[0]:
        values = sorted(v for r in per if (v := r[key]) is not None)
        if not values:
            out[key] = None
            continue
        mid = len(values) // 2
        out[key] = values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2
    return out
