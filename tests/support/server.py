"""Run the real `pod-identity-webhook serve` in a subprocess on free loopback ports."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from webhook.certs import issue


@dataclass(frozen=True)
class CertFiles:
    directory: Path
    ca: Path
    cert: Path
    key: Path


def write_certs(directory: Path, *, days: int = 30) -> CertFiles:
    directory.mkdir(parents=True, exist_ok=True)
    pem = issue(
        common_name="localhost",
        dns_names=["localhost"],
        ip_addresses=["127.0.0.1"],
        days=days,
        ca_days=days,
    )
    files = CertFiles(directory, directory / "ca.crt", directory / "tls.crt", directory / "tls.key")
    files.ca.write_bytes(pem.ca_cert)
    files.cert.write_bytes(pem.cert)
    files.key.write_bytes(pem.key)
    return files


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class RunningWebhook:
    process: subprocess.Popen[bytes]
    url: str  # https://127.0.0.1:PORT
    metrics_url: str  # http://127.0.0.1:PORT
    certs: CertFiles
    log_path: Path
    client_cert: tuple[Path, Path] | None = None  # presented when --client-ca-file is used

    def client(self, **kwargs: object) -> httpx.Client:
        context = ssl.create_default_context(cafile=str(self.certs.ca))
        if self.client_cert is not None:
            context.load_cert_chain(*map(str, self.client_cert))
        return httpx.Client(base_url=self.url, verify=context, timeout=10, **kwargs)  # type: ignore[arg-type]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout=timeout)


@contextlib.contextmanager
def run_webhook(
    tmp_path: Path,
    *args: str,
    certs: CertFiles | None = None,
    wait_ready: bool = True,
    env: dict[str, str] | None = None,
    client_cert: tuple[Path, Path] | None = None,
    command_line: Callable[[int, int, CertFiles], list[str]] | None = None,
) -> Iterator[RunningWebhook]:
    """Start the server with `args` added to TLS and port flags; stop it with SIGTERM after.

    `command_line(port, metrics_port, certs)`, when given, is the whole command instead."""
    certs = certs or write_certs(tmp_path / "certs")
    port, metrics_port = free_port(), free_port()
    log_path = tmp_path / f"webhook-{port}.log"
    command = (
        command_line(port, metrics_port, certs)
        if command_line
        else [
            sys.executable,
            "-m",
            "webhook",
            "serve",
            "--bind-address",
            "127.0.0.1",
            "--port",
            str(port),
            "--metrics-port",
            str(metrics_port),
            "--tls-cert",
            str(certs.cert),
            "--tls-key",
            str(certs.key),
            *args,
        ]
    )
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )
    running = RunningWebhook(
        process,
        f"https://127.0.0.1:{port}",
        f"http://127.0.0.1:{metrics_port}",
        certs,
        log_path,
        client_cert,
    )
    try:
        _wait_listening(running, ready=wait_ready)
        yield running
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_listening(running: RunningWebhook, *, ready: bool, timeout: float = 30) -> None:
    path = "/readyz" if ready else "/healthz"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if running.process.poll() is not None:
            raise RuntimeError(
                f"webhook exited with {running.process.returncode}:\n{running.log()}"
            )
        try:
            if httpx.get(running.metrics_url + path, timeout=1).status_code == 200:
                with running.client() as client:
                    client.get("/healthz")
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"webhook did not become {'ready' if ready else 'live'}:\n{running.log()}")


def serve_expecting_exit(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """Run `serve` with these flags on free ports where start-up is expected to fail."""
    return subprocess.run(
        [sys.executable, "-m", "webhook", "serve", "--port", "0", "--metrics-port", "0", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def shared_webhook(*args: str, doc: str = "") -> Callable[..., Iterator[RunningWebhook]]:
    """A module-scoped fixture: one real server with these flags, shared by the tests of a
    module that only send it requests (each server start costs about a second)."""

    @pytest.fixture(scope="module")
    def fixture(
        tmp_path_factory: pytest.TempPathFactory, cert_files: CertFiles
    ) -> Iterator[RunningWebhook]:
        with run_webhook(tmp_path_factory.mktemp("server"), *args, certs=cert_files) as webhook:
            yield webhook

    fixture.__doc__ = doc or None
    return fixture
