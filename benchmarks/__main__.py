"""`make bench`: the pure-core micro-benchmark, then the load test against the FastAPI baseline.

python -m benchmarks [all|core|load] [--duration S] [--bodies small,typical,large]
                     [--concurrency 1,16] [--json OUT] [--server-arg ARG ...]
"""

from __future__ import annotations

import argparse
import dataclasses
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("what", nargs="?", choices=("all", "core", "load"), default="all")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run (5)")
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
    baseline = {(r.body, r.connections): r for r in results if r.server == "baseline"}
    lines = [
        f"{'body':<8} {'conc':>4} {'server':<8} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'errors':>6} {'vs base':>7} {'cpu µs/req':>10} {'cpu vs base':>11}"
    ]
    for r in sorted(results, key=lambda r: (BODY_NAMES.index(r.body), r.connections, r.server)):
        base = baseline.get((r.body, r.connections))
        ratio = r.wrk.requests_per_second / base.wrk.requests_per_second if base else float("nan")
        cpu_ratio = (
            r.cpu_us_per_request / base.cpu_us_per_request
            if base and base.cpu_us_per_request
            else float("nan")
        )
        lines.append(
            f"{r.body:<8} {r.connections:>4} {r.server:<8} {r.wrk.requests_per_second:>8.0f} "
            f"{r.wrk.p50_ms:>7.2f} {r.wrk.p99_ms:>7.2f} {r.wrk.errors:>6} {ratio:>6.2f}x "
            f"{r.cpu_us_per_request:>10.0f} {cpu_ratio:>10.2f}x"
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
        print(f"\nload: wrk over keep-alive HTTPS, {args.duration:g} s per run, server on core 0:")
        with tempfile.TemporaryDirectory(prefix="webhook-bench-") as tmp:
            try:
                results = run_load(
                    Path(tmp),
                    bodies=args.bodies,
                    concurrencies=args.concurrency,
                    seconds=args.duration,
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
