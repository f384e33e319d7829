"""Tables for people, JSON for machines, and a description of the machine the figures come from."""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import Any


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram_gb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram_gb = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass

    def version(dist: str) -> str:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return "?"

    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "ram_gb": ram_gb,
        "python": sys.version.split()[0],
        "kernel": platform.release(),
        "pillow": version("Pillow"),
        "discord.py": version("discord.py"),
        "aiohttp": version("aiohttp"),
    }


def machine_line(m: dict[str, Any]) -> str:
    return (
        f"{m['nproc']} cores ({m['cpu']}), {m['ram_gb']} GB RAM, Python {m['python']}, "
        f"Pillow {m['pillow']}, discord.py {m['discord.py']}, aiohttp {m['aiohttp']}, Linux {m['kernel']}"
    )


def _ms(d: dict[str, Any], key: str) -> str:
    v = d.get(key)
    return "-" if v is None else f"{v:g}"


def _mark(fig: dict[str, Any], *names: str) -> str:
    states = [fig["targets"][n]["met"] for n in names]
    return "yes" if all(states) else "NO"


def rows(fig: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(figure, measured, target, met): the spread profile's targets."""
    pv, fl, ack = fig["preview_latency_ms"], fig["final_latency_ms"], fig["ack_latency_ms"]
    calls = fig["calls_per_job"]
    return [
        (
            "preview latency (first frame)",
            f"p50 {_ms(pv, 'p50')} ms, p99 {_ms(pv, 'p99')} ms",
            "p50 <= 80 ms, p99 <= 250 ms",
            _mark(fig, "preview_p50_ms", "preview_p99_ms"),
        ),
        (
            "final latency",
            f"p50 {_ms(fl, 'p50')} ms, p99 {_ms(fl, 'p99')} ms",
            "p50 <= 150 ms",
            _mark(fig, "final_p50_ms"),
        ),
        (
            "acknowledgement latency",
            f"p50 {_ms(ack, 'p50')} ms, p99 {_ms(ack, 'p99')} ms ({ack['n']} probes, {ack['failed']} failed)",
            "p99 <= 150 ms",
            _mark(fig, "ack_p99_ms"),
        ),
        ("CPU per image", f"{fig['cpu_per_image_s']:g} s ({fig['bot_cpu_s']:g} s total)", "<= 0.3 s",
         _mark(fig, "cpu_per_image_s")),
        (
            "memory (bot RSS)",
            f"peak {fig['peak_rss_mb']:g} MB, idle {fig['idle_rss_mb']:g} MB",
            "peak <= 250 MB, idle <= 100 MB",
            _mark(fig, "peak_rss_mb", "idle_rss_mb"),
        ),
        (
            "Discord calls",
            f"{calls['mean']:g} per job (max {calls['max']}); {fig['rate_limited']} x 429; "
            f"{fig['stale_frames']} stale",
            f"<= {calls['budget']} per job; 0; 0",
            _mark(fig, "calls_per_job_max", "rate_limited", "stale_frames"),
        ),
    ]  # fmt: skip


def table(fig: dict[str, Any]) -> str:
    head = ("figure", "measured", f"target (N={fig['jobs']})", "met")
    body = rows(fig)
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(4)]
    lines = [" | ".join(c.ljust(w) for c, w in zip(head, widths, strict=True))]
    lines.append("-+-".join("-" * w for w in widths))
    lines += [" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in body]
    return "\n".join(lines)


def details(fig: dict[str, Any]) -> str:
    fr = fig["frames"]
    lag, alag = fig["bench_loop_lag_ms"], fig["fake_api_loop_lag_ms"]
    allf = fig["preview_latency_all_frames_ms"]
    burst = fig["burst_ack_latency_ms"]
    return "\n".join(
        [
            f"delivered {fig['delivered']}/{fig['jobs'] * fig['runs']} in {fig['wall_s']:g} s"
            + (f" ({fig['runs']} runs pooled)" if fig["runs"] > 1 else "")
            + f"; frames sent {fr['sent']}, "
            f"shown {fr['shown']}, skipped {fr['skipped']}; status-only edits {fig['status_only_edits']}",
            f"preview latency, every frame shown: p50 {_ms(allf, 'p50')} ms, p99 {_ms(allf, 'p99')} ms; "
            f"the jobs' own acknowledgements (burst of {fig['jobs']}): p50 {_ms(burst, 'p50')} ms, "
            f"max {_ms(burst, 'max')} ms",
            f"bot threads {fig['threads']['idle']} idle / {fig['threads']['busy']} busy; "
            f"bench loop lag p99 {_ms(lag, 'p99')} ms (max {_ms(lag, 'max')}), bench CPU {fig['bench_cpu_s']:g} s; "
            f"fake API loop lag p99 {_ms(alag, 'p99')} ms (max {_ms(alag, 'max')}), CPU {fig['fake_api_cpu_s']:g} s",
            f"machine while the jobs ran: {fig['machine_busy_pct']:g}% of all cores busy (every process), "
            f"{fig['machine_steal_pct']:g}% stolen by the hypervisor",
        ]
    )


def _p50_p99(d: dict[str, Any]) -> str:
    return f"{_ms(d, 'p50')} / {_ms(d, 'p99')}"


SWEEP_ROWS: list[tuple[str, Any]] = [
    ("preview p50 / p99 ms", lambda f: _p50_p99(f["preview_latency_ms"])),
    ("final p50 / p99 ms", lambda f: _p50_p99(f["final_latency_ms"])),
    ("ack p50 / p99 ms", lambda f: _p50_p99(f["ack_latency_ms"])),
    ("CPU s per image", lambda f: f"{f['cpu_per_image_s']:g}"),
    ("peak / idle RSS MB", lambda f: f"{f['peak_rss_mb']:g} / {f['idle_rss_mb']:g}"),
    ("calls per job (max)", lambda f: f"{f['calls_per_job']['mean']:g} ({f['calls_per_job']['max']})"),
    ("429s / stale frames", lambda f: f"{f['rate_limited']} / {f['stale_frames']}"),
    ("frames shown / sent", lambda f: f"{f['frames']['shown']} / {f['frames']['sent']}"),
    ("bench loop lag p99 ms", lambda f: _ms(f["bench_loop_lag_ms"], "p99")),
    ("machine busy / steal %", lambda f: f"{f['machine_busy_pct']:g} / {f['machine_steal_pct']:g}"),
]  # fmt: skip


def sweep_table(figs: list[dict[str, Any]]) -> str:
    head = ["N", *[str(f["jobs"]) for f in figs]]
    body = [[name, *[fn(f) for f in figs]] for name, fn in SWEEP_ROWS]
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
    lines = [" | ".join(c.ljust(w) for c, w in zip(head, widths, strict=True))]
    lines.append("-+-".join("-" * w for w in widths))
    lines += [" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in body]
    return "\n".join(lines)


def one_line(fig: dict[str, Any]) -> str:
    pv, fl, ack = fig["preview_latency_ms"], fig["final_latency_ms"], fig["ack_latency_ms"]
    return (
        f"preview p50/p99 {_ms(pv, 'p50')}/{_ms(pv, 'p99')} ms, final p50 {_ms(fl, 'p50')} ms, "
        f"ack p99 {_ms(ack, 'p99')} ms, CPU {fig['cpu_per_image_s']:g} s/image, peak RSS {fig['peak_rss_mb']:g} MB"
    )


def missed(fig: dict[str, Any]) -> list[str]:
    return [f"{name} = {t['value']} (target {t['target']})" for name, t in fig["targets"].items() if not t["met"]]


# --- the burst profile: ours, the baseline, the ratio ----------------------------------------------


def bot_name(module: str) -> str:
    return "baseline" if module == "bench.baseline" else "ours"


def _num(v: float | None, digits: int = 0) -> str:
    if v is None:
        return "-"
    return f"{v:.{digits}f}"


def _ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or b <= 0:
        return "-"
    return f"{a / b:.2f}x"


def _lag(f: dict[str, Any]) -> str:
    lag = f.get("bot_loop_lag")
    return "-" if not lag else f"{lag['over_50ms']:.0f} / {lag['samples']:.0f} ({lag['late_s']:.2f} s late)"


def _decodes(f: dict[str, Any]) -> str:
    d = f.get("partial_decodes")
    shown = f["frames"].get("shown_with_probes", f["frames"]["shown"])  # probe jobs show previews too
    return f"{d} / {shown}" if d is not None else f"- / {shown}"


# (label, value of a summary, digits, ratio?) -- run medians where the targets are stated in them
BURST_ROWS: list[tuple[str, Any, int, bool]] = [
    ("final p50 ms (median of runs)", lambda f: f["run_medians"]["final_p50_ms"], 0, True),
    ("final p99 ms (median of runs)", lambda f: f["run_medians"]["final_p99_ms"], 0, True),
    ("final p50 / p99 ms (pooled)", lambda f: _p50_p99(f["final_latency_ms"]), 0, False),
    ("ack p99 ms (median of runs)", lambda f: f["run_medians"]["ack_p99_ms"], 1, True),
    ("ack max ms (probes, all runs)", lambda f: f["ack_latency_ms"]["max"], 0, True),
    ("burst's own acks max ms", lambda f: f["burst_ack_latency_ms"]["max"], 0, True),
    ("CPU s per job (median of runs)", lambda f: f["run_medians"]["cpu_per_job_s"], 3, True),
    ("peak RSS MB (worst run)", lambda f: f["peak_rss_mb"], 0, True),
    ("first preview p50 ms", lambda f: f["run_medians"]["preview_p50_ms"], 0, False),
    ("previews shown / jobs", lambda f: f"{f['frames']['shown']} / {f['jobs'] * f['runs']}", 0, False),
    ("partial decodes / previews shown", _decodes, 0, False),
    ("bot loop samples > 50 ms late / all", lambda f: _lag(f), 0, False),
    ("429s / stale frames", lambda f: f"{f['rate_limited']} / {f['stale_frames']}", 0, False),
    ("machine busy % (median of runs)", lambda f: f["run_medians"]["machine_busy_pct"], 0, False),
]  # fmt: skip


def burst_table(ours: dict[str, Any], base: dict[str, Any]) -> str:
    head = [f"N={ours['jobs']}", "ours", "baseline", "ratio"]
    body = []
    for label, fn, digits, ratio in BURST_ROWS:
        a, b = fn(ours), fn(base)
        if isinstance(a, str) or isinstance(b, str):
            body.append([label, str(a), str(b), ""])
        else:
            body.append([label, _num(a, digits), _num(b, digits), _ratio(a, b) if ratio else ""])
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(4)]
    lines = [" | ".join(c.ljust(w) for c, w in zip(head, widths, strict=True))]
    lines.append("-+-".join("-" * w for w in widths))
    lines += [" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in body]
    return "\n".join(lines)


def burst_targets(results: list[dict[str, Any]], size: str = "1024x1024") -> list[tuple[str, str, bool | None]]:
    """(target, measured, met) for the burst profile's targets, from the burst results of ``size``."""
    at = {r["jobs"]: r for r in results if r["size"] == size}
    out: list[tuple[str, str, bool | None]] = []

    def med(n: int, who: str, key: str) -> float | None:
        return at[n][who]["run_medians"][key] if n in at else None

    def ratio_target(n: int, key: str, limit: float, label: str) -> None:
        a, b = med(n, "ours", key), med(n, "baseline", key)
        if a is None or b is None or b <= 0:
            return
        out.append((f"{label} <= {limit:g}x baseline (N={n})", f"{a:.0f} vs {b:.0f} ms = {a / b:.2f}x", a / b <= limit))

    ratio_target(32, "final_p50_ms", 1.0, "final p50")
    ratio_target(32, "final_p99_ms", 1.5, "final p99")
    for n, limit, times in ((32, 100.0, 1.0), (64, 200.0, 2.0)):
        v, b = med(n, "ours", "ack_p99_ms"), med(n, "baseline", "ack_p99_ms")
        if v is not None and b:
            out.append(
                (
                    f"ack p99 <= {limit:g} ms and <= {times:g}x baseline (N={n})",
                    f"{v:.0f} vs {b:.0f} ms = {v / b:.2f}x",
                    v <= limit and v / b <= times,
                )
            )
    worst = [
        max(x for x in (r["ours"]["ack_latency_ms"]["max"], r["ours"]["burst_ack_latency_ms"]["max"]) if x is not None)
        for r in at.values()
    ]
    if worst:
        slowest = max(worst)
        out.append(("no interaction acknowledged after 3 s (every N)", f"slowest {slowest:.0f} ms", slowest < 3000))
    if 32 in at:
        a, b = med(32, "ours", "cpu_per_job_s"), med(32, "baseline", "cpu_per_job_s")
        if a is not None and b:
            out.append(("CPU per job <= 2.0x baseline (N=32)", f"{a:.3f} vs {b:.3f} s = {a / b:.2f}x", a / b <= 2.0))
        pa, pb = at[32]["ours"]["peak_rss_mb"], at[32]["baseline"]["peak_rss_mb"]
        out.append(("peak RSS <= baseline + 60 MB (N=32)", f"{pa:.0f} vs {pb:.0f} MB (+{pa - pb:.0f})", pa <= pb + 60))
    if 32 in at and 64 in at:
        a, b = med(64, "ours", "final_p50_ms"), med(32, "ours", "final_p50_ms")
        if a is not None and b:
            out.append(("final p50 at N=64 <= 2x N=32", f"{a:.0f} vs {b:.0f} ms = {a / b:.2f}x", a <= 2 * b))
    for n, r in sorted(at.items()):
        o = r["ours"]
        decodes_ok = o["partial_decodes"] == o["frames"]["shown_with_probes"]
        ok = o["rate_limited"] == 0 and o["stale_frames"] == 0 and decodes_ok
        out.append(
            (
                f"0 stale, 0 x 429, decodes == previews (N={n})",
                f"{o['stale_frames']} stale, {o['rate_limited']} x 429, {_decodes(o)}",
                ok,
            )
        )
    return out


def burst_target_lines(results: list[dict[str, Any]]) -> str:
    rows = burst_targets(results)
    if not rows:
        return "burst targets: no 1024x1024 results"
    width = max(len(r[0]) for r in rows)
    return "\n".join(f"{name.ljust(width)}  {measured}  {'met' if met else 'MISSED'}" for name, measured, met in rows)
