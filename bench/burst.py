"""The burst profile: a rush of fast jobs, our bot against a bot that does not stream.

N ``/imagine`` requests at once, each answered with its first partial frame 0.4 s after the request, the
second at 0.7 s and the result at 1.0 s (no jitter), at 1024x1024 and 1536x1024. In the same run, against the
same fakes, N, seed and probes, the baseline bot (``bench/baseline.py``: one non-streaming call whose answer
also comes at 1.0 s, decode, upload as a follow-up). The two bots alternate which goes first from one repeat
to the next so that a change in the machine's load does not favour either. Every figure is reported as ours,
the baseline's, and the ratio: the machine is shared, absolute figures are noisy, ratios much less so.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from bench import metrics, report
from bench.run import BenchError, ImagesAPIProcess, LoadOptions, run_load

SIZES = ("1024x1024", "1536x1024")
NS = (8, 32, 64)
# first partial frame 0.4 s after the request, then every 0.3 s: 0.4, 0.7, result at 1.0 s
TIMING = {"delay_first": 0.4, "delay_between": 0.3, "jitter": 0.0, "delay_response": 1.0}
BOTS = ("bot", "bench.baseline")


async def run_burst(
    args: argparse.Namespace, ns: list[int], sizes: list[str], workdir: Path, bot_env: dict[str, str]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], bool]:
    """Returns (one entry per size and N with both bots' summaries, every run, broken?)."""
    results: list[dict[str, Any]] = []
    runs: list[dict[str, Any]] = []
    broken = False
    run_id = 0
    for size in sizes:
        api = ImagesAPIProcess(
            size=size, partials=2, pool=args.pool, log_path=workdir / f"fakeapi-burst-{size}.log", **TIMING
        )
        try:
            await api.start()
            for n in ns:
                print(f"\n== burst N={n}, {size}: ours and the baseline, {args.repeat} run(s) each ==", flush=True)
                parts: dict[str, list[dict[str, Any]]] = {b: [] for b in BOTS}
                for rep in range(args.repeat):
                    for module in BOTS if rep % 2 == 0 else BOTS[::-1]:
                        run_id += 1
                        opts = LoadOptions(
                            jobs=n, size=size, partials=2, probe_interval=args.probe_interval,
                            bot_env=bot_env if module == "bot" else {}, workdir=workdir / "burst",
                            seed=args.seed + rep, bot_module=module,
                            profile=args.profile / f"{report.bot_name(module)}-{size}-n{n}-{rep + 1}.txt"
                            if args.profile else None,
                        )  # fmt: skip
                        try:
                            raw = await run_load(run_id, api, opts)
                        except BenchError as exc:
                            print(f"run broken ({module}): {exc}", file=sys.stderr, flush=True)
                            broken = True
                            continue
                        fig = metrics.compute(raw)
                        runs.append(
                            {"profile": "burst", "bot": module, "jobs": n, "size": size, "figures": fig, "raw": raw}
                        )
                        parts[module].extend(fig["parts"])
                        print(f"run {rep + 1} {report.bot_name(module)}: {report.one_line(fig)}", flush=True)
                        if fig["problems"]:
                            broken = True
                            print("PROBLEMS: " + "; ".join(fig["problems"]) + f"\n(log: {raw['log_path']})", flush=True)
                if not all(parts.values()):
                    continue
                ours, base = (metrics.summarise(parts[b]) for b in BOTS)
                results.append({"jobs": n, "size": size, "ours": ours, "baseline": base})
                print(report.burst_table(ours, base), flush=True)
        finally:
            await api.stop()
    return results, runs, broken
