"""What the server attacks share: raw TLS connections, request bytes, the server's peak memory."""

from __future__ import annotations

import resource
import socket
import ssl
import time
from pathlib import Path

from tests.conftest import ROOT
from tests.support.server import CertFiles, RunningWebhook

BODIES = ROOT / "benchmarks" / "bodies"
SERVICE_ACCOUNTS = str(BODIES / "serviceaccount.yaml")
MEMORY_LIMIT_BYTES = 256 * 1024 * 1024  # the Deployment's limit


def address(running: RunningWebhook) -> tuple[str, int]:
    host, port = running.url.removeprefix("https://").split(":")
    return host, int(port)


def tls_context(certs: CertFiles) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(certs.ca))


def tls_socket(running: RunningWebhook, *, timeout: float = 10) -> ssl.SSLSocket:
    host, port = address(running)
    raw = socket.create_connection((host, port), timeout=timeout)
    return tls_context(running.certs).wrap_socket(raw, server_hostname=host)


def request(body: bytes, path: str = "/mutate") -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: webhook\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def peak_rss_bytes(pid: int) -> int:
    """VmHWM: the most resident memory the process has had."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmHWM in /proc/{pid}/status")


def raise_open_files(wanted: int) -> None:
    """Let this process (and the server it starts, which inherits it) open `wanted` files."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(max(soft, wanted), hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    if target < wanted:
        raise AssertionError(f"RLIMIT_NOFILE hard limit {hard} is under the {wanted} needed")


def seconds_until_closed(sock: socket.socket, *, limit: float) -> float:
    """How long until the peer closes `sock` (EOF or reset); `limit` if it never does."""
    started = time.monotonic()
    sock.settimeout(0.2)
    while time.monotonic() - started < limit:
        try:
            if not sock.recv(4096):
                break
        except TimeoutError:
            continue
        except (ssl.SSLError, OSError):
            break
    return time.monotonic() - started
