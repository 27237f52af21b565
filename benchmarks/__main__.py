"""`make bench`: the pure-core micro-benchmark, then the load test against the FastAPI baseline
and, where `make e2e-tools` built it, upstream's webhook (docs/performance.md).

python -m benchmarks [all|core|load] [--duration S] [--rounds N] [--bodies small,typical,large]
                     [--concurrency 1,16] [--json OUT] [--server-arg ARG ...] [--no-upstream]
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
    parser.add_argument(
        "--no-upstream",
        action="store_true",
        help="leave out upstream's webhook (the third server, when build/e2e/bin has it)",
    )
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write results as JSON")
    parser.add_argument(
        "--server-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="extra argument for `webhook serve` (repeat), e.g. --server-arg=--log-level=warning",
    )
    return parser


def _reference(
    results: list[LoadResult], server: str
) -> tuple[dict[tuple[str, int, int], float], dict[tuple[str, int], float]]:
    """A server's requests/s by (body, concurrency, round) and median CPU by (body, concurrency)."""
    rate = {
        (r.body, r.connections, r.round): r.wrk.requests_per_second
        for r in results
        if r.server == server
    }
    cpu: dict[tuple[str, int], list[float]] = {}
    for r in results:
        if r.server == server:
            cpu.setdefault((r.body, r.connections), []).append(r.cpu_us_per_request)
    return rate, {key: statistics.median(values) for key, values in cpu.items()}


def load_table(results: list[LoadResult]) -> str:
    """One row per body, concurrency and server: medians over the rounds. A ratio is the
    median of each round's ratio to the reference run next to it (the baseline; upstream's
    webhook where it ran); with several rounds the lowest and highest to the baseline follow."""
    groups: dict[tuple[str, int, str], list[LoadResult]] = {}
    for r in results:
        groups.setdefault((r.body, r.connections, r.server), []).append(r)
    references = {name: _reference(results, name) for name in ("baseline", "upstream")}
    with_upstream = any(r.server == "upstream" for r in results)
    lines = [
        f"{'body':<8} {'conc':>4} {'server':<8} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'errors':>6} {'vs base':>7} {'cpu µs/req':>10} {'cpu vs base':>11}"
        + (f" {'vs up':>6} {'cpu vs up':>9}" if with_upstream else "")
        + "  rounds"
    ]
    for (body, connections, server), runs in sorted(
        groups.items(), key=lambda item: (BODY_NAMES.index(item[0][0]), item[0][1], item[0][2])
    ):
        cpu = statistics.median(r.cpu_us_per_request for r in runs)
        ratios: dict[str, list[float]] = {}
        cpu_ratio: dict[str, float] = {}
        for name, (rate_of, cpu_of) in references.items():
            ratios[name] = [
                r.wrk.requests_per_second / rate_of[(body, connections, r.round)]
                for r in runs
                if rate_of.get((body, connections, r.round))
            ]
            reference_cpu = cpu_of.get((body, connections))
            cpu_ratio[name] = cpu / reference_cpu if reference_cpu else float("nan")

        def median(values: list[float]) -> float:
            return statistics.median(values) if values else float("nan")

        base = ratios["baseline"]
        spread = f"  {min(base):.2f}x-{max(base):.2f}x" if len(base) > 1 else ""
        rate = statistics.median(r.wrk.requests_per_second for r in runs)
        p50 = statistics.median(r.wrk.p50_ms for r in runs)
        p99 = statistics.median(r.wrk.p99_ms for r in runs)
        errors = sum(r.wrk.errors for r in runs)
        upstream_columns = (
            f" {median(ratios['upstream']):>5.2f}x {cpu_ratio['upstream']:>8.2f}x"
            if with_upstream
            else ""
        )
        lines.append(
            f"{body:<8} {connections:>4} {server:<8} {rate:>8.0f} {p50:>7.2f} {p99:>7.2f} "
            f"{errors:>6} {median(base):>6.2f}x {cpu:>10.0f} {cpu_ratio['baseline']:>10.2f}x"
            f"{upstream_columns}  {len(runs)}{spread}"
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
                    with_upstream=not args.no_upstream,
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
