"""Upstream's webhook as the benchmark's third server (docs/performance.md, "Against upstream").

Upstream reads ServiceAccounts only from a cluster (an informer), so it gets the real control
plane of the e2e suite (tests/e2e/controlplane.py) holding the benchmark's 10,000
ServiceAccounts; it is started only when build/e2e/bin has upstream's reference build and the
control plane (`make e2e-tools`). Ours keeps reading the same ServiceAccounts from the file:
both look them up in memory, and the API server is idle while wrk runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import ssl
import subprocess
import time
import urllib.request
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(os.environ.get("E2E_BIN", ROOT / "build" / "e2e" / "bin"))
PINS = ROOT / "hack" / "e2e" / "versions.env"
CONTROL_PLANE = ("etcd", "kube-apiserver", "kubectl")


def reference_binary() -> tuple[Path | None, str]:
    """Upstream's reference build, else its tag's build (the two differ only in the admission
    envelope, docs/upstream.md "Side by side"), with what it is; or None and why."""
    pins = dict(
        line.split("=", 1)
        for line in PINS.read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )
    builds = [
        (pins["UPSTREAM_REFERENCE_NAME"], pins["UPSTREAM_REFERENCE_VERSION"]),
        (pins["UPSTREAM_NAME"], pins["UPSTREAM_VERSION"]),
    ]
    missing = [n for n in CONTROL_PLANE if not os.access(BIN / n, os.X_OK)]
    present = [(n, v) for n, v in builds if os.access(BIN / n, os.X_OK)]
    if missing or not present:
        return None, (
            f"upstream left out: {', '.join(missing or [n for n, _ in builds])} not in {BIN} "
            "(`make e2e-tools` builds them)"
        )
    name, version = present[0]
    instead = "" if name == builds[0][0] else f", as {builds[0][0]} is not built"
    return BIN / name, f"{name} ({version}{instead})"


def create_accounts(kubectl: list[str], service_accounts: str) -> None:
    """Namespaces and ServiceAccounts in lists of a thousand, with `kubectl create`."""
    documents = [d for d in yaml.safe_load_all(service_accounts) if d]
    namespaces = sorted({d["metadata"]["namespace"] for d in documents})
    batches = [
        [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}} for n in namespaces]
    ]
    batches += [documents[i : i + 1000] for i in range(0, len(documents), 1000)]
    for items in batches:
        listed = json.dumps({"apiVersion": "v1", "kind": "List", "items": items})
        subprocess.run(
            [*kubectl, "create", "-f", "-", "-o", "name"],
            input=listed.encode(),
            check=True,
            stdout=subprocess.DEVNULL,
            timeout=300,
        )


def wait_mutating(url: str, body: bytes, deadline: float) -> None:
    """Until upstream's informer has the body's ServiceAccount (a patch comes back)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    while time.monotonic() < deadline:
        request = urllib.request.Request(
            url, data=body, headers={"Content-Type": "application/json"}, method="POST"
        )
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(request, timeout=2, context=context) as response,
        ):
            if json.loads(response.read()).get("response", {}).get("patch"):
                return
        time.sleep(0.2)
    raise SystemExit(f"upstream did not mutate {url}'s body in time")


def command(
    binary: Path, kubeconfig: Path, cert: Path, key: Path, ports: tuple[int, int]
) -> list[str]:
    """Upstream's flags for the benchmark: out of cluster, this pair, the region ours gets."""
    return [
        str(binary),
        "--in-cluster=false",
        f"--kubeconfig={kubeconfig}",
        f"--tls-cert={cert}",
        f"--tls-key={key}",
        f"--port={ports[0]}",
        f"--metrics-port={ports[1]}",
        "--aws-default-region=us-west-2",
        "--logtostderr=true",
    ]
