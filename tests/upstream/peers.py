"""The servers compared side by side: upstream's binaries from build/e2e/bin and this webhook.

Each runs as a real process with the same flags against the same kube-apiserver (upstream reads
ServiceAccounts only through an informer, so ours does too here: `--kubeconfig`). Upstream has
no `--bind-address`; it listens on every interface of the port it is given, and the suite only
talks to 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import os
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.e2e.controlplane import BIN, ControlPlane
from tests.support.server import CertFiles, free_port

MODULE_PINS = Path(__file__).resolve().parents[2] / "hack" / "e2e" / "versions.env"
V1 = "admission.k8s.io/v1"
V1BETA1 = "admission.k8s.io/v1beta1"


def pins() -> dict[str, str]:
    """The assignments of hack/e2e/versions.env (the one place upstream's versions are pinned)."""
    values = {}
    for line in MODULE_PINS.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and not line.startswith("#"):
            values[key.strip()] = value.strip()
    return values


@dataclass(frozen=True)
class PeerBinary:
    """One upstream build: its name in build/e2e/bin, the module version it was built from, and
    the admission versions it answers in a form kube-apiserver takes (docs/upstream.md)."""

    label: str
    path: Path
    version: str
    admission_versions: tuple[str, ...]


def upstream_binaries() -> tuple[list[PeerBinary], list[str]]:
    """The upstream builds present, and a sentence for each one that is missing."""
    values = pins()
    wanted = [
        (values["UPSTREAM_NAME"], values["UPSTREAM_VERSION"], (V1BETA1, V1)),
        (values["UPSTREAM_REFERENCE_NAME"], values["UPSTREAM_REFERENCE_VERSION"], (V1, V1BETA1)),
    ]
    present, missing = [], []
    for name, version, speaks in wanted:
        path = BIN / name
        if os.access(path, os.X_OK):
            present.append(
                PeerBinary(name.removeprefix("upstream-webhook-"), path, version, speaks)
            )
        else:
            missing.append(f"{path} is missing (`make e2e-tools` builds it; {version})")
    return present, missing


@dataclass
class Peer:
    """A running server: what it is, where it answers, and its log."""

    label: str
    url: str
    metrics_url: str
    admission_versions: tuple[str, ...]
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])


def _wait(peer: Peer, certs: CertFiles, timeout: float = 60) -> None:
    """Until /healthz answers on the webhook port and the metrics port answers (upstream's
    readiness); the caller then waits for the ServiceAccounts to be seen."""
    context = ssl.create_default_context(cafile=str(certs.ca))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if peer.process.poll() is not None:
            raise RuntimeError(f"{peer.label} exited {peer.process.returncode}:\n{peer.log()}")
        with contextlib.suppress(httpx.HTTPError):
            webhook = httpx.get(peer.url + "/healthz", verify=context, timeout=1)
            metrics = httpx.get(peer.metrics_url + "/metrics", timeout=1)
            if webhook.status_code == 200 and metrics.status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{peer.label} did not answer within {timeout:.0f} s:\n{peer.log()}")


@contextlib.contextmanager
def _process(
    label: str,
    command: list[str],
    port: int,
    metrics_port: int,
    speaks: tuple[str, ...],
    certs: CertFiles,
    directory: Path,
    env: dict[str, str] | None = None,
) -> Iterator[Peer]:
    log_path = directory / f"{label}-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **(env or {})},
        )
    peer = Peer(
        label,
        f"https://127.0.0.1:{port}",
        f"http://127.0.0.1:{metrics_port}",
        speaks,
        process,
        log_path,
    )
    try:
        _wait(peer, certs)
        yield peer
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def common_flags(plane: ControlPlane, certs: CertFiles, port: int, metrics_port: int) -> list[str]:
    """The flags both webhooks take the same way: out of cluster, this plane, this pair."""
    return [
        "--in-cluster=false",
        f"--kubeconfig={plane.admin_kubeconfig}",
        f"--tls-cert={certs.cert}",
        f"--tls-key={certs.key}",
        f"--port={port}",
        f"--metrics-port={metrics_port}",
        "--logtostderr=true",
    ]


@contextlib.contextmanager
def run_upstream(
    binary: PeerBinary,
    plane: ControlPlane,
    certs: CertFiles,
    directory: Path,
    flags: Sequence[str],
    env: dict[str, str] | None = None,
) -> Iterator[Peer]:
    port, metrics_port = free_port(), free_port()
    command = [str(binary.path), *common_flags(plane, certs, port, metrics_port), *flags]
    with _process(
        binary.label, command, port, metrics_port, binary.admission_versions, certs, directory, env
    ) as peer:
        yield peer


@contextlib.contextmanager
def run_ours(
    plane: ControlPlane,
    certs: CertFiles,
    directory: Path,
    flags: Sequence[str],
    env: dict[str, str] | None = None,
) -> Iterator[Peer]:
    port, metrics_port = free_port(), free_port()
    command = [
        sys.executable,
        "-m",
        "webhook",
        "serve",
        *common_flags(plane, certs, port, metrics_port),
        # ours only: loopback instead of every interface (upstream has no such flag)
        "--bind-address=127.0.0.1",
        "--metrics-bind-address=127.0.0.1",
        *flags,
    ]
    speaks = (V1, V1BETA1)
    with _process("ours", command, port, metrics_port, speaks, certs, directory, env) as peer:
        yield peer
