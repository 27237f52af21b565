"""--metrics-bind-address keeps /metrics (and /debug/alpha/cache) off the admission address."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.hostile.server_support import SERVICE_ACCOUNTS
from tests.support.server import CertFiles, free_port


def _refused(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=2).close()
    except OSError:
        return True
    return False


def test_metrics_listen_only_on_the_metrics_bind_address(
    tmp_path: Path, cert_files: CertFiles
) -> None:
    port, metrics_port = free_port(), free_port()
    command = [
        sys.executable, "-m", "webhook", "serve",
        "--bind-address", "127.0.0.2", "--port", str(port),
        "--metrics-bind-address", "127.0.0.1", "--metrics-port", str(metrics_port),
        "--tls-cert", str(cert_files.cert), "--tls-key", str(cert_files.key),
        "--service-accounts-file", SERVICE_ACCOUNTS, "--enable-debugging-handlers",
    ]  # fmt: skip
    with (tmp_path / "webhook.log").open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, (tmp_path / "webhook.log").read_text()
            try:
                metrics = httpx.get(f"http://127.0.0.1:{metrics_port}/debug/alpha/cache")
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, (tmp_path / "webhook.log").read_text()
                time.sleep(0.05)
        assert metrics.status_code == 200
        assert "payments/checkout-api" in metrics.text
        assert _refused("127.0.0.2", metrics_port)
        assert not _refused("127.0.0.2", port)
        assert _refused("127.0.0.1", port)
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_help_says_where_the_metrics_and_the_debug_cache_are_served() -> None:
    shown = subprocess.run(
        [sys.executable, "-m", "webhook", "serve", "--help"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    text = " ".join(shown.stdout.split())
    assert "--metrics-bind-address" in text
    assert "default: --bind-address" in text
    assert "/debug/alpha/cache" in text
