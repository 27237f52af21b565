"""The benchmark harness works: the core micro-benchmark runs and wrk's report is read right."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.__main__ import build_parser, load_table
from benchmarks.accounts import (
    BODIES,
    BODY_NAMES,
    OWN_BODIES,
    SHARED_BODIES,
    service_accounts_yaml,
)
from benchmarks.core import build_mutator, format_table, measure
from benchmarks.load import LoadResult
from benchmarks.wrk import WrkError, WrkResult, parse_wrk

WRK_OUTPUT = """\
Running 3s test @ https://127.0.0.1:43211/mutate
  2 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.71ms  812.40us  21.03ms   88.12%
    Req/Sec     2.98k   201.33     3.30k    71.67%
  Latency Distribution
     50%    2.58ms
     75%    2.90ms
     90%    3.41ms
     99%    1.20s
  17803 requests in 3.00s, 21.48MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 4
Requests/sec:   5932.71
Transfer/sec:      7.16MB
"""


def test_parse_wrk_reads_rate_percentiles_and_errors() -> None:
    result = parse_wrk(WRK_OUTPUT)
    assert result == WrkResult(
        requests=17803, requests_per_second=5932.71, p50_ms=2.58, p99_ms=1200.0, errors=7
    )


def test_parse_wrk_microsecond_latency_and_no_errors() -> None:
    output = WRK_OUTPUT.replace("     50%    2.58ms", "     50%  812.00us")
    output = output.replace("  Socket errors: connect 0, read 2, write 0, timeout 1\n", "")
    output = output.replace("  Non-2xx or 3xx responses: 4\n", "")
    result = parse_wrk(output)
    assert result.p50_ms == pytest.approx(0.812)
    assert result.errors == 0


def test_parse_wrk_rejects_a_report_without_percentiles() -> None:
    with pytest.raises(WrkError, match="latency percentiles"):
        parse_wrk("unable to connect to 127.0.0.1:1 Connection refused\n")


def test_core_benchmark_runs_and_mutates_every_body() -> None:
    mutator = build_mutator(accounts=50)
    timings = measure(number=3, repeat=2, mutator=mutator)
    assert [(t.body, t.what) for t in timings] == [
        (body, what) for body in ("small", "typical", "large") for what in ("core", "request")
    ]
    assert all(t.ops > 0 and 0 < t.min_us <= t.median_us for t in timings)
    assert "typical" in format_table(timings)


def test_service_accounts_file_holds_the_bodies_account_and_the_count() -> None:
    text = service_accounts_yaml(10)
    assert text.count("kind: ServiceAccount") == 10
    assert "name: checkout-api" in text and "namespace: payments" in text


def test_load_table_shows_ratio_to_the_baseline() -> None:
    def result(server: str, rate: float) -> LoadResult:
        return LoadResult(server, "typical", 16, WrkResult(100, rate, 1.0, 2.0, 0), 1e6 / rate)

    table = load_table([result("baseline", 2000.0), result("webhook", 3000.0)])
    last = table.splitlines()[-1]
    assert "webhook" in last and "1.50x" in last and "0.67x" in last


def test_load_table_takes_the_median_of_each_rounds_ratio() -> None:
    def result(server: str, rate: float, round_: int, errors: int = 0) -> LoadResult:
        wrk = WrkResult(100, rate, 1.0, 2.0 * round_, errors)
        return LoadResult(server, "typical", 16, wrk, 1e6 / rate, round_)

    # the machine was twice as fast in round 2: per-round ratios 1.2, 1.0 and 1.5
    results = [
        result("baseline", 1000.0, 1),
        result("webhook", 1200.0, 1),
        result("webhook", 2000.0, 2),
        result("baseline", 2000.0, 2),
        result("baseline", 1000.0, 3),
        result("webhook", 1500.0, 3, errors=2),
    ]
    rows = {line.split()[2]: line for line in load_table(results).splitlines()[1:]}
    assert " 1.20x " in rows["webhook"]  # the median ratio, not a ratio of medians (1.50x)
    assert rows["webhook"].endswith("3  1.00x-1.50x")
    assert rows["webhook"].split()[3] == "1500"  # median req/s
    assert rows["webhook"].split()[5] == "4.00"  # median p99
    assert rows["webhook"].split()[6] == "2"  # errors summed over the rounds
    assert " 1.00x " in rows["baseline"]


def test_options_reject_unknown_bodies_and_bad_concurrency(
    capsys: pytest.CaptureFixture[str],
) -> None:
    parser = build_parser()
    assert parser.parse_args(
        ["load", "--bodies", "typical", "--concurrency", "1,16"]
    ).concurrency == (1, 16)
    assert parser.parse_args(["load", "--rounds", "5"]).rounds == 5
    assert parser.parse_args([]).rounds == 3
    for argv in (
        ["--bodies", "huge"],
        ["--concurrency", "0"],
        ["--concurrency", "x"],
        ["--rounds", "0"],
        ["--rounds", "many"],
    ):
        with pytest.raises(SystemExit):
            parser.parse_args(argv)
    assert "expected numbers" in capsys.readouterr().err


@pytest.mark.skipif(
    not SHARED_BODIES.is_dir(), reason="../shared/admission is not beside the project"
)
def test_the_projects_copy_of_the_bodies_matches_the_shared_ones() -> None:
    for name in (*BODY_NAMES, "serviceaccount"):
        suffix = ".yaml" if name == "serviceaccount" else ".json"
        shared = (SHARED_BODIES / name).with_suffix(suffix).read_bytes()
        assert (OWN_BODIES / name).with_suffix(suffix).read_bytes() == shared, name
    assert BODIES == SHARED_BODIES


def test_load_table_shows_ratio_to_upstream_when_it_ran() -> None:
    def result(server: str, rate: float) -> LoadResult:
        return LoadResult(server, "typical", 16, WrkResult(100, rate, 1.0, 2.0, 0), 1e6 / rate)

    table = load_table(
        [result("baseline", 2000.0), result("upstream", 4000.0), result("webhook", 3000.0)]
    )
    header, *rows = table.splitlines()
    assert "vs up" in header and "cpu vs up" in header
    webhook = next(row for row in rows if " webhook " in row)
    # 3000/4000 requests/s, and 333/250 µs of CPU per request
    assert " 0.75x " in webhook and " 1.33x " in webhook
    assert "vs up" not in load_table([result("baseline", 2000.0), result("webhook", 3000.0)])


def test_upstream_is_the_reference_build_else_the_tag_else_left_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from benchmarks import upstream

    monkeypatch.setattr(upstream, "BIN", tmp_path)

    def executable(name: str) -> None:
        (tmp_path / name).write_text("#!/bin/sh\n")
        (tmp_path / name).chmod(0o755)

    binary, why = upstream.reference_binary()
    assert binary is None and "etcd" in why and "make e2e-tools" in why
    for name in ("etcd", "kube-apiserver", "kubectl"):
        executable(name)
    assert upstream.reference_binary()[0] is None
    executable("upstream-webhook-v0.6.17")
    binary, why = upstream.reference_binary()
    assert binary == tmp_path / "upstream-webhook-v0.6.17" and "is not built" in why
    executable("upstream-webhook-3bf80a34")
    binary, why = upstream.reference_binary()
    assert binary == tmp_path / "upstream-webhook-3bf80a34" and "3bf80a348116" in why
