"""`make bench`: the pure-core micro-benchmark, then the load test against the FastAPI baseline.

python -m benchmarks [all|core|load] [--duration S] [--rounds N] [--bodies small,typical,large]
                     [--concurrency 1,16] [--json OUT] [--server-arg ARG ...]
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import orjson

from benchmarks.accounts import BODY_NAMES
from benchmarks.core import TARGET_TYPICAL_CORE_US, format_table, measure
from benchmarks.load import LoadResult, run_load
from benchmarks.wrk import WrkError, wrk_path


def _names(text: str) -> tuple[str, ...]:
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [name for name in names if name not in BODY_NAMES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"bodies {unknown or text!r}: choose from {BODY_NAMES}")
    return names


def _counts(text: str) -> tuple[int, ...]:
    try:
        counts = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"concurrency {text!r}: expected numbers like 1,16"
        ) from exc
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"concurrency {text!r}: expected numbers >= 1")
    return counts


def _rounds(text: str) -> int:
    try:
        rounds = int(text)
    except ValueError:
        rounds = 0
    if rounds < 1:
        raise argparse.ArgumentTypeError(f"rounds {text!r}: expected a number >= 1")
    return rounds


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("what", nargs="?", choices=("all", "core", "load"), default="all")
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per wrk run (3)")
    parser.add_argument(
        "--rounds",
        type=_rounds,
        default=3,
        help="runs per body and concurrency, alternating with the baseline; medians shown (3)",
    )
    parser.add_argument("--bodies", type=_names, default=BODY_NAMES, help="small,typical,large")
    parser.add_argument("--concurrency", type=_counts, default=(1, 16), help="1,16")
    parser.add_argument("--number", type=int, default=2000, help="core: calls per repeat")
    parser.add_argument("--repeat", type=int, default=5, help="core: repeats (min and median)")
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write results as JSON")
    parser.add_argument(
        "--server-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="extra argument for `webhook serve` (repeat), e.g. --server-arg=--log-level=warning",
    )
    return parser


def load_table(results: list[LoadResult]) -> str:
    """One row per body, concurrency and server: medians over the rounds. The ratio is the
    median of each round's ratio to the baseline run next to it; with several rounds the
    lowest and highest follow it."""
    groups: dict[tuple[str, int, str], list[LoadResult]] = {}
    for r in results:
        groups.setdefault((r.body, r.connections, r.server), []).append(r)
    baseline_rate = {
        (r.body, r.connections, r.round): r.wrk.requests_per_second
        for r in results
        if r.server == "baseline"
    }
    baseline_cpu = {
        (body, connections): statistics.median(r.cpu_us_per_request for r in runs)
        for (body, connections, server), runs in groups.items()
        if server == "baseline"
    }
    lines = [
        f"{'body':<8} {'conc':>4} {'server':<8} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'errors':>6} {'vs base':>7} {'cpu µs/req':>10} {'cpu vs base':>11}  rounds"
    ]
    for (body, connections, server), runs in sorted(
        groups.items(), key=lambda item: (BODY_NAMES.index(item[0][0]), item[0][1], item[0][2])
    ):
        ratios = [
            r.wrk.requests_per_second / baseline_rate[(body, connections, r.round)]
            for r in runs
            if baseline_rate.get((body, connections, r.round))
        ]
        ratio = statistics.median(ratios) if ratios else float("nan")
        spread = f"  {min(ratios):.2f}x-{max(ratios):.2f}x" if len(ratios) > 1 else ""
        cpu = statistics.median(r.cpu_us_per_request for r in runs)
        base_cpu = baseline_cpu.get((body, connections))
        cpu_ratio = cpu / base_cpu if base_cpu else float("nan")
        rate = statistics.median(r.wrk.requests_per_second for r in runs)
        p50 = statistics.median(r.wrk.p50_ms for r in runs)
        p99 = statistics.median(r.wrk.p99_ms for r in runs)
        errors = sum(r.wrk.errors for r in runs)
        lines.append(
            f"{body:<8} {connections:>4} {server:<8} {rate:>8.0f} {p50:>7.2f} {p99:>7.2f} "
            f"{errors:>6} {ratio:>6.2f}x {cpu:>10.0f} {cpu_ratio:>10.2f}x  {len(runs)}{spread}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    report: dict[str, Any] = {}
    if args.what in ("all", "core"):
        print("pure core, µs per pod (10,000 ServiceAccounts in the store):", flush=True)
        timings = measure(args.bodies, number=args.number, repeat=args.repeat)
        print(format_table(timings))
        typical = [t for t in timings if t.body == "typical" and t.what == "core"]
        if typical:
            verdict = "meets" if typical[0].min_us < TARGET_TYPICAL_CORE_US else "MISSES"
            print(
                f"typical core {typical[0].min_us:.1f} µs {verdict} the {TARGET_TYPICAL_CORE_US:.0f} µs target"
            )
        report["core"] = [dataclasses.asdict(t) for t in timings]
    if args.what in ("all", "load"):
        try:
            wrk_path()
        except WrkError as exc:
            print(f"benchmarks: {exc}", file=sys.stderr)
            return 2
        print(
            f"\nload: wrk over keep-alive HTTPS, {args.duration:g} s per run, "
            f"{args.rounds} round(s), servers on core 0:"
        )
        with tempfile.TemporaryDirectory(prefix="webhook-bench-") as tmp:
            try:
                results = run_load(
                    Path(tmp),
                    bodies=args.bodies,
                    concurrencies=args.concurrency,
                    seconds=args.duration,
                    rounds=args.rounds,
                    server_args=tuple(args.server_arg),
                )
            except WrkError as exc:
                print(f"benchmarks: {exc}", file=sys.stderr)
                return 1
        print()
        print(load_table(results))
        report["load"] = [
            {
                "server": r.server,
                "body": r.body,
                "connections": r.connections,
                "round": r.round,
                "cpu_us_per_request": r.cpu_us_per_request,
                **dataclasses.asdict(r.wrk),
            }
            for r in results
        ]
    if args.json:
        args.json.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
