"""Drive a server with wrk over keep-alive HTTPS and read wrk's report."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

_LUA = """\
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
wrk.body = f:read("*all")
f:close()
"""

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


class WrkError(RuntimeError):
    pass


@dataclass(frozen=True)
class WrkResult:
    requests: int
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int  # socket errors (connect, read, write, timeout) plus non-2xx/3xx responses


def _ms(value: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value)
    if match is None:
        raise WrkError(f"cannot read the latency {value!r} in wrk's report")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_wrk(output: str) -> WrkResult:
    """Read requests, requests/s, p50, p99 and errors out of `wrk --latency` output."""
    total = re.search(r"^\s*(\d+) requests in", output, re.MULTILINE)
    rate = re.search(r"^Requests/sec:\s*([\d.]+)", output, re.MULTILINE)
    p50 = re.search(r"^\s*50%\s+(\S+)", output, re.MULTILINE)
    p99 = re.search(r"^\s*99%\s+(\S+)", output, re.MULTILINE)
    if total is None or rate is None or p50 is None or p99 is None:
        raise WrkError(
            f"wrk's report lacks requests, Requests/sec or latency percentiles:\n{output}"
        )
    errors = 0
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    if socket_errors:
        errors += sum(int(n) for n in socket_errors.groups())
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if non_2xx:
        errors += int(non_2xx.group(1))
    return WrkResult(
        requests=int(total.group(1)),
        requests_per_second=float(rate.group(1)),
        p50_ms=_ms(p50.group(1)),
        p99_ms=_ms(p99.group(1)),
        errors=errors,
    )


def wrk_path() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise WrkError("wrk is not installed; `make bench` installs it (apt-get install wrk)")
    return path


def run_wrk(
    url: str, body: Path, *, connections: int, seconds: float, cpu: int | None, workdir: Path
) -> WrkResult:
    script = workdir / "post.lua"
    script.write_text(_LUA)
    threads = 1 if connections == 1 else 2
    command = [
        wrk_path(),
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(round(seconds), 1)}s",
        "--latency",
        "-s",
        str(script),
        url,
    ]
    if cpu is not None and shutil.which("taskset"):
        command = ["taskset", "-c", str(cpu), *command]
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        env={"BENCH_BODY": str(body), "PATH": "/usr/bin:/bin"},
        timeout=seconds + 30,
        check=False,
    )
    if done.returncode != 0:
        raise WrkError(f"wrk failed ({done.returncode}): {done.stderr.strip() or done.stdout}")
    return parse_wrk(done.stdout)
