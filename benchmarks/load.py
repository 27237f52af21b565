"""Load test: the real webhook and the FastAPI baseline, each on one pinned core, driven by wrk."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from benchmarks import upstream
from benchmarks.accounts import body_path, service_accounts_yaml
from benchmarks.wrk import WrkResult, run_wrk
from tests.e2e.controlplane import binary as peer
from tests.e2e.controlplane import run_control_plane
from webhook.certs import issue

ACCOUNTS = 10_000
SERVER_CPU = 0
LOAD_CPU = 1


@dataclass(frozen=True)
class LoadResult:
    server: str  # webhook, baseline or upstream
    body: str
    connections: int
    wrk: WrkResult
    # Server CPU time (user + system) over the run divided by the requests: unlike requests/s,
    # barely moved by other processes competing for the machine.
    cpu_us_per_request: float
    round: int = 1


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc (0 where there is no /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _pinned(command: list[str], cpu: int | None) -> list[str]:
    if cpu is None or not shutil.which("taskset") or (os.cpu_count() or 1) < 2:
        return command
    return ["taskset", "-c", str(cpu), *command]


def write_inputs(workdir: Path, accounts: int = ACCOUNTS) -> tuple[Path, Path, Path]:
    """ServiceAccounts file and a serving certificate for 127.0.0.1."""
    sa_file = workdir / "serviceaccounts.yaml"
    sa_file.write_text(service_accounts_yaml(accounts))
    pem = issue(
        common_name="localhost",
        dns_names=["localhost"],
        ip_addresses=["127.0.0.1"],
        days=2,
        ca_days=2,
    )
    cert, key = workdir / "tls.crt", workdir / "tls.key"
    cert.write_bytes(pem.cert)
    key.write_bytes(pem.key)
    return sa_file, cert, key


# Readiness polls only: the certificate is the benchmark's own, on loopback.
_UNVERIFIED = ssl.create_default_context()
_UNVERIFIED.check_hostname = False
_UNVERIFIED.verify_mode = ssl.CERT_NONE


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited with {process.returncode}:\n{log.read_text()[-2000:]}")
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(url, timeout=1, context=_UNVERIFIED) as response,
        ):
            if response.status == 200:
                return
        time.sleep(0.1)
    raise SystemExit(f"server not ready at {url} within 60 s:\n{log.read_text()[-2000:]}")


@contextlib.contextmanager
def _running(
    command: list[str], ready_url: str, log: Path, cpu: int | None
) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as output:
        process = subprocess.Popen(_pinned(command, cpu), stdout=output, stderr=output)
    try:
        _wait_ready(ready_url, process, log)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def webhook_server(
    workdir: Path, sa_file: Path, cert: Path, key: Path, *, server_args: tuple[str, ...] = ()
) -> Iterator[tuple[str, int]]:
    port, metrics_port = _free_port(), _free_port()
    command = [
        sys.executable,
        "-m",
        "webhook",
        "serve",
        "--service-accounts-file",
        str(sa_file),
        "--bind-address",
        "127.0.0.1",
        "--port",
        str(port),
        "--metrics-port",
        str(metrics_port),
        "--tls-cert",
        str(cert),
        "--tls-key",
        str(key),
        "--aws-default-region",
        "us-west-2",
        *server_args,
    ]
    ready = f"http://127.0.0.1:{metrics_port}/readyz"
    with _running(command, ready, workdir / "webhook.log", SERVER_CPU) as process:
        yield f"https://127.0.0.1:{port}/mutate", process.pid


@contextlib.contextmanager
def baseline_server(workdir: Path, cert: Path, key: Path) -> Iterator[tuple[str, int]]:
    """benchmarks/baseline.py on uvicorn with the webhook's settings: uvloop, httptools, TLS."""
    port = _free_port()
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "benchmarks.baseline:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--ssl-certfile",
        str(cert),
        "--ssl-keyfile",
        str(key),
        "--no-access-log",
        "--no-server-header",
        "--lifespan",
        "off",
        "--log-level",
        "warning",
    ]
    ready = f"https://127.0.0.1:{port}/readyz"
    with _running(command, ready, workdir / "baseline.log", SERVER_CPU) as process:
        yield f"https://127.0.0.1:{port}/mutate", process.pid


@contextlib.contextmanager
def upstream_server(
    workdir: Path, binary: Path, cert: Path, key: Path, accounts: int = ACCOUNTS
) -> Iterator[tuple[str, int]]:
    """The e2e control plane (unpinned; idle while wrk runs) with the same ServiceAccounts, and
    upstream's webhook pinned to the servers' core (benchmarks/upstream.py)."""
    with run_control_plane(workdir / "plane", controller_manager=False) as plane:
        start = time.monotonic()
        kubectl = [str(peer("kubectl")), f"--kubeconfig={plane.admin_kubeconfig}"]
        upstream.create_accounts(kubectl, service_accounts_yaml(accounts))
        print(
            f"  upstream: {accounts} ServiceAccounts created in the control plane in "
            f"{time.monotonic() - start:.0f} s",
            flush=True,
        )
        port, metrics_port = _free_port(), _free_port()
        command = upstream.command(binary, plane.admin_kubeconfig, cert, key, (port, metrics_port))
        ready = f"http://127.0.0.1:{metrics_port}/metrics"
        with _running(command, ready, workdir / "upstream.log", SERVER_CPU) as process:
            url = f"https://127.0.0.1:{port}/mutate"
            upstream.wait_mutating(url, body_path("small").read_bytes(), time.monotonic() + 60)
            yield url, process.pid


WARM_UP_SECONDS = 1.0


def run_load(
    workdir: Path,
    *,
    bodies: tuple[str, ...],
    concurrencies: tuple[int, ...],
    seconds: float,
    rounds: int = 1,
    server_args: tuple[str, ...] = (),
    log: Callable[[str], None] = print,
    with_upstream: bool = True,
) -> list[LoadResult]:
    """The servers run at once, pinned to the same core (the idle ones cost nothing): the
    baseline, ours and, where build/e2e/bin has it, upstream's reference build; each
    (body, concurrency) is measured `rounds` times, alternating the order the servers go in, so
    that a busy moment on the machine hits all and the per-round ratios stay fair."""
    sa_file, cert, key = write_inputs(workdir)
    results: list[LoadResult] = []

    def measure(server: str, url: str, pid: int, name: str, connections: int, round_: int) -> None:
        cpu_before = _cpu_seconds(pid)
        outcome = run_wrk(
            url,
            body_path(name),
            connections=connections,
            seconds=seconds,
            cpu=LOAD_CPU,
            workdir=workdir,
        )
        cpu_us = (_cpu_seconds(pid) - cpu_before) * 1e6 / max(outcome.requests, 1)
        log(
            f"  {server:<8} {name:<8} c={connections:<3} {outcome.requests_per_second:>9.0f} req/s"
            f"  p50 {outcome.p50_ms:.2f} ms  p99 {outcome.p99_ms:.2f} ms  errors {outcome.errors}"
            f"  cpu {cpu_us:.0f} µs/req" + (f"  (round {round_})" if rounds > 1 else "")
        )
        results.append(LoadResult(server, name, connections, outcome, cpu_us, round_))

    with contextlib.ExitStack() as stack:
        servers = {
            "baseline": stack.enter_context(baseline_server(workdir, cert, key)),
            "webhook": stack.enter_context(
                webhook_server(workdir, sa_file, cert, key, server_args=server_args)
            ),
        }
        if with_upstream:
            binary, about = upstream.reference_binary()
            if binary is None:
                log(f"  {about}")
            else:
                log(f"  upstream: {about}")
                servers["upstream"] = stack.enter_context(
                    upstream_server(workdir, binary, cert, key)
                )
        for url, _ in servers.values():  # first requests are slower (imports, caches): not measured
            run_wrk(
                url,
                body_path(bodies[0]),
                connections=max(concurrencies),
                seconds=WARM_UP_SECONDS,
                cpu=LOAD_CPU,
                workdir=workdir,
            )
        for name in bodies:
            for connections in concurrencies:
                for round_ in range(1, rounds + 1):
                    order = list(servers) if round_ % 2 else list(reversed(servers))
                    for server in order:
                        url, pid = servers[server]
                        measure(server, url, pid, name, connections, round_)
    return results
