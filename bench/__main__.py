"""``python -m bench`` (or ``./imagebot bench``): load-test the real bot against the fakes.

    ./imagebot bench                       # 32 simultaneous /imagine jobs, 1536x1024, 2 partial frames
    ./imagebot bench --jobs 8
    ./imagebot bench --sweep               # N = 1, 8, 32, 64 (or --sweep 1,4,16)
    ./imagebot bench --smoke               # N=4, a burst at N=4 and a 2-round long run, short: exits non-zero
                                           # only if a run itself is broken
    ./imagebot bench --burst               # the rush: N=32 jobs whose frames come at 0.4/0.7 s, the result at 1 s,
                                           # 1024x1024 and 1536x1024, against a bot that does not stream
    ./imagebot bench --burst --sweep 8,32,64 --repeat 3
    ./imagebot bench --long-run            # one bot through 12 rounds of 30 jobs (previews, edits, cancels):
                                           # memory, threads, open files and latency per round, slopes
    ./imagebot bench reservations          # reservation latency of the quota store (bench/quota_latency.py)

Prints a table per run (and one for the sweep) and writes everything to ``--json``. The exit status is 1
when a run is broken (the bot did not start or crashed, a job got no result, a fake saw an invalid request,
a Traceback in the bot log), never because a figure missed its target.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import burst, longrun, metrics, report
from bench.run import BenchError, ImagesAPIProcess, LoadOptions, run_load

DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "last.json"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    p.add_argument("--jobs", type=int, default=32, help="simultaneous /imagine jobs (default 32)")
    p.add_argument(
        "--sweep",
        nargs="?",
        const="1,8,32,64",
        default=None,
        metavar="N,N,...",
        help="run several N one after the other (default list 1,8,32,64)",
    )
    p.add_argument("--smoke", action="store_true", help="N=4 with short delays: a quick check that nothing is broken")
    p.add_argument(
        "--burst",
        action="store_true",
        help="the burst profile: frames at 0.4/0.7 s, result at 1.0 s, ours against bench/baseline.py\n"
        "(sizes: --burst-sizes; N: --jobs, or --sweep whose default list is then 8,32,64)",
    )
    p.add_argument(
        "--long-run",
        action="store_true",
        help="one bot process through --rounds rounds of --round-jobs jobs (imagine, edit, cancel); what grows",
    )
    p.add_argument("--rounds", type=int, default=12, help="long run: rounds (default 12)")
    p.add_argument("--warmup", type=int, default=2, help="long run: first rounds left out of the slopes (default 2)")
    p.add_argument("--round-jobs", type=int, default=30, help="long run: jobs per round (default 30)")
    p.add_argument("--burst-sizes", default=",".join(burst.SIZES), metavar="WxH,...", help="burst profile sizes")
    p.add_argument(
        "--json", type=Path, default=DEFAULT_JSON, help=f"where to write the results (default {DEFAULT_JSON})"
    )
    p.add_argument("--size", default="1536x1024")
    p.add_argument("--partials", type=int, default=2, help="partial frames per image (default 2)")
    p.add_argument("--pool", type=int, default=4, help="distinct pictures the fake API cycles through (default 4)")
    p.add_argument("--delay-first", type=float, default=3.0, help="mean seconds to the first frame (default 3)")
    p.add_argument("--delay-between", type=float, default=1.5, help="mean seconds between events (default 1.5)")
    p.add_argument("--jitter", type=float, default=0.5, help="delays vary uniformly by ± this fraction (default 0.5)")
    p.add_argument(
        "--probe-interval",
        type=float,
        default=0.2,
        help="mean seconds between probes (an /imagine of a new member) during the rush (default 0.2)",
    )
    p.add_argument("--repeat", type=int, default=1, help="runs per N; latency samples are pooled (default 1)")
    p.add_argument("--seed", type=int, default=1, help="seed of the fake API's delays (default 1)")
    p.add_argument("--env", action="append", default=[], metavar="KEY=VALUE", help="extra setting for the bot")
    p.add_argument("--keep", action="store_true", help="keep the work directory (bot logs, databases)")
    p.add_argument(
        "--profile",
        type=Path,
        default=None,
        metavar="DIR",
        help="run the bot under py-spy (pip install py-spy); raw samples per run into DIR",
    )
    args = p.parse_args(argv)  # fmt: skip
    if args.burst and args.sweep == "1,8,32,64":
        args.sweep = ",".join(str(n) for n in burst.NS)
    if args.smoke:
        args.jobs, args.sweep, args.pool = 4, None, 2
        args.delay_first, args.delay_between = 1.0, 0.6
        args.burst_sizes = burst.SIZES[0]  # and a burst at N=4 against the baseline, so neither can rot
    return args


async def main_async(args: argparse.Namespace) -> int:
    sizes = [int(x) for x in args.sweep.split(",")] if args.sweep else [args.jobs]
    bot_env = dict(item.split("=", 1) for item in args.env)
    workdir = Path(tempfile.mkdtemp(prefix="imagebot-bench-"))
    info = report.machine()
    print(f"machine: {report.machine_line(info)}", flush=True)
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    if args.burst and not args.smoke:
        return await burst_main(args, sizes, bot_env, workdir, info)
    if args.long_run and not args.smoke:
        return await long_main(args, bot_env, workdir, info)
    api = ImagesAPIProcess(
        size=args.size, partials=args.partials, pool=args.pool, delay_first=args.delay_first,
        delay_between=args.delay_between, jitter=args.jitter, log_path=workdir / "fakeapi.log",
    )  # fmt: skip
    sweep = Sweep()
    started = time.monotonic()
    try:
        await api.start()
        print(f"fake Images API ready ({args.pool} pictures per stage drawn in {api.prewarm_seconds:g} s)", flush=True)
        for n in sizes:
            await sweep.run_size(args, api, n, bot_env, workdir)
    finally:
        await api.stop()
    broken = sweep.broken
    long: dict[str, Any] | None = None
    if args.smoke:  # and a long run of two small rounds, so that it cannot rot either
        long, long_broken = await _long(args, bot_env, workdir, longrun.LongRunOptions(rounds=2, per_round=4))
        broken = broken or long_broken
        burst_results, _, burst_broken = await burst.run_burst(
            args, [args.jobs], args.burst_sizes.split(","), workdir, bot_env
        )
        broken = broken or burst_broken or not burst_results
        smoke_burst = [
            {**r, "ours": _without_parts(r["ours"]), "baseline": _without_parts(r["baseline"])} for r in burst_results
        ]
    figs = sweep.summaries
    if len(figs) > 1:
        print("\n== sweep ==")
        print(report.sweep_table(figs))
    out = {
        "machine": info,
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "seconds": round(time.monotonic() - started, 1),
        "summaries": sweep.summaries,
        "runs": sweep.runs,
    }
    if args.smoke:
        out["burst"] = smoke_burst
        out["long_run"] = long
    return _finish(args, out, workdir, ok=not broken and len(sweep.runs) == len(sizes) * args.repeat)


@dataclass
class Sweep:
    """The runs of a sweep so far: each run's figures, each N's summary, and whether a run broke."""

    runs: list[dict[str, Any]] = field(default_factory=list)
    summaries: list[dict[str, Any]] = field(default_factory=list)
    broken: bool = False
    run_id: int = 0

    async def run_size(
        self, args: argparse.Namespace, api: ImagesAPIProcess, n: int, bot_env: dict[str, str], workdir: Path
    ) -> None:
        """``--repeat`` runs of N simultaneous jobs, then their pooled table."""
        print(f"\n== N={n}: {n} simultaneous /imagine {args.size}, {args.partials} partial frames ==", flush=True)
        figs_n = []
        for rep in range(args.repeat):
            self.run_id += 1
            opts = LoadOptions(
                jobs=n, size=args.size, partials=args.partials, probe_interval=args.probe_interval,
                bot_env=bot_env, workdir=workdir, seed=args.seed + rep,
                profile=args.profile / f"bot-n{n}-{rep + 1}.txt" if args.profile else None,
            )  # fmt: skip
            try:
                raw = await run_load(self.run_id, api, opts)
            except BenchError as exc:
                print(f"run broken: {exc}", file=sys.stderr, flush=True)
                self.broken = True
                continue
            fig = metrics.compute(raw)
            self.runs.append({"jobs": n, "figures": fig, "raw": raw})
            figs_n.append(fig)
            if args.repeat > 1:
                print(f"run {rep + 1}/{args.repeat}: {report.one_line(fig)}", flush=True)
            if fig["problems"]:
                self.broken = True
                print("PROBLEMS: " + "; ".join(fig["problems"]) + f"\n(bot log: {raw['log_path']})", flush=True)
        if not figs_n:
            return
        fig = metrics.summarise([p for f in figs_n for p in f["parts"]])
        self.summaries.append(fig)
        print(report.table(fig))
        print(report.details(fig))
        misses = report.missed(fig)
        print("targets missed: " + ("; ".join(misses) if misses else "none"), flush=True)


def _finish(args: argparse.Namespace, out: dict[str, Any], workdir: Path, *, ok: bool) -> int:
    """Write the results; keep the work directory of a broken run (or with --keep). The exit status."""
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=1))
    print(f"\nresults: {args.json}")
    if not ok:
        print(f"work directory kept for inspection: {workdir}", file=sys.stderr)
        return 1
    if args.keep:
        print(f"work directory: {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


async def burst_main(
    args: argparse.Namespace, ns: list[int], bot_env: dict[str, str], workdir: Path, info: dict[str, Any]
) -> int:
    started = time.monotonic()
    results, runs, broken = await burst.run_burst(args, ns, args.burst_sizes.split(","), workdir, bot_env)
    for size in args.burst_sizes.split(","):
        mine = [r for r in results if r["size"] == size]
        if len(mine) > 1:
            print(f"\n== burst sweep, {size} ==")
            for r in mine:
                print(report.burst_table(r["ours"], r["baseline"]) + "\n")
    print("\n== burst targets (1024x1024; ratios to the baseline measured in the same run) ==")
    print(report.burst_target_lines(results))
    out = {
        "machine": info,
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "seconds": round(time.monotonic() - started, 1),
        "burst": [{**r, "ours": _without_parts(r["ours"]), "baseline": _without_parts(r["baseline"])} for r in results],
        "burst_targets": [{"target": t, "measured": m, "met": ok} for t, m, ok in report.burst_targets(results)],
        "runs": runs,
    }
    expected = len(ns) * len(args.burst_sizes.split(","))
    return _finish(args, out, workdir, ok=not broken and len(results) == expected)


async def _long(
    args: argparse.Namespace, bot_env: dict[str, str], workdir: Path, opts: longrun.LongRunOptions
) -> tuple[dict[str, Any] | None, bool]:
    """Run the long run against its own fake Images API. Returns (its result, broken?)."""
    print(f"\n== long run: {opts.rounds} rounds of {opts.per_round} jobs ==", flush=True)
    opts.bot_env, opts.size = bot_env, "1024x1024"
    api = ImagesAPIProcess(
        size=opts.size, partials=2, pool=args.pool, delay_first=0.5, delay_between=0.4, jitter=0.3,
        log_path=workdir / "fakeapi-long.log",
    )  # fmt: skip
    try:
        await api.start()
        result = await longrun.run_long(api, opts, workdir / "long")
    except BenchError as exc:
        print(f"long run broken: {exc}", file=sys.stderr, flush=True)
        return None, True
    finally:
        await api.stop()
    print(longrun.report(result), flush=True)
    if result["problems"]:
        print("PROBLEMS: " + "; ".join(result["problems"]) + f"\n(bot log: {result['log_path']})", flush=True)
    return result, bool(result["problems"])


async def long_main(args: argparse.Namespace, bot_env: dict[str, str], workdir: Path, info: dict[str, Any]) -> int:
    started = time.monotonic()
    opts = longrun.LongRunOptions(rounds=args.rounds, per_round=args.round_jobs, warmup=args.warmup)
    result, broken = await _long(args, bot_env, workdir, opts)
    out = {
        "machine": info,
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "seconds": round(time.monotonic() - started, 1),
        "long_run": result,
    }
    return _finish(args, out, workdir, ok=not broken and result is not None)


def _without_parts(fig: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in fig.items() if k != "parts"}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["reservations"]:  # ./imagebot bench reservations [...]: the quota store alone
        from bench import quota_latency

        return quota_latency.main(argv[1:])
    args = parse_args(argv)
    try:
        return asyncio.run(main_async(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
