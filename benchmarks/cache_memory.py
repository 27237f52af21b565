"""Memory and time to load 100,000 ServiceAccounts through the real list path.

The fake API server runs in a child process (so its objects do not count); this process
lists through the real kubernetes client and ResourceWatch code into a ServiceAccountStore.
Bytes per ServiceAccount = traced memory held after the load minus before, over the count.
Run: python -m benchmarks.cache_memory [COUNT]
"""

from __future__ import annotations

import asyncio
import gc
import multiprocessing
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

COUNT = 100_000
TARGET_BYTES_PER_SA = 300
TARGET_SECONDS = 10.0


def service_account(i: int) -> dict[str, Any]:
    namespace = f"team-{i % 400:03d}"
    annotations = {
        "kubectl.kubernetes.io/last-applied-configuration": '{"apiVersion":"v1","kind":"ServiceAccount"}'
        * 3,
        "meta.helm.sh/release-name": f"release-{i % 50}",
    }
    if i % 10 == 0:
        annotations["eks.amazonaws.com/role-arn"] = (
            f"arn:aws:iam::111122223333:role/{namespace}-app-{i}"
        )
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {
            "name": f"app-{i}",
            "namespace": namespace,
            "uid": f"00000000-0000-0000-0000-{i:012d}",
            "creationTimestamp": "2024-01-01T00:00:00Z",
            "labels": {
                "app.kubernetes.io/name": f"app-{i}",
                "app.kubernetes.io/managed-by": "Helm",
            },
            "annotations": annotations,
            "managedFields": [
                {
                    "manager": "helm",
                    "operation": "Update",
                    "apiVersion": "v1",
                    "time": "2024-01-01T00:00:00Z",
                    "fieldsType": "FieldsV1",
                    "fieldsV1": {"f:metadata": {"f:labels": {"f:app.kubernetes.io/name": {}}}},
                }
            ],
        },
        "secrets": [{"name": f"app-{i}-token"}],
    }


def serve(count: int, ready: Any, port_out: Any) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.support.fakeapi import SERVICE_ACCOUNTS, FakeApiServer

    api = FakeApiServer()
    api.load(SERVICE_ACCOUNTS, (service_account(i) for i in range(count)))
    api.start()
    port_out.value = api.port
    ready.set()
    while True:
        time.sleep(3600)


async def load(kubeconfig: Path, count: int) -> tuple[float, Any]:
    from webhook.assembly.webhook import assemble
    from webhook.flags.settings import Settings

    service = assemble(Settings(kubeconfig=kubeconfig, resync_period=3600))
    service.load_sources()
    started = time.perf_counter()
    await service.start()
    while len(service.store) < count:
        await asyncio.sleep(0.01)
    seconds = time.perf_counter() - started
    await service.stop()
    return seconds, service


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else COUNT
    ready = multiprocessing.Event()
    port = multiprocessing.Value("i", 0)
    server = multiprocessing.Process(target=serve, args=(count, ready, port), daemon=True)
    server.start()
    ready.wait(120)
    from tests.support.fakeapi import FakeApiServer

    fake = FakeApiServer()
    fake.port = port.value
    kubeconfig = fake.write_kubeconfig(Path(tempfile.mkdtemp()) / "kubeconfig")

    # Timed run, untraced (tracemalloc slows allocation down several times).
    seconds, service = asyncio.run(load(kubeconfig, count))
    del service
    gc.collect()

    # Memory run: baseline = this process with everything imported and one load already done.
    rss_before = rss_bytes()
    tracemalloc.start()
    gc.collect()
    before = tracemalloc.get_traced_memory()[0]
    _, service = asyncio.run(load(kubeconfig, count))
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    rss_after = rss_bytes()
    held = after - before
    per_sa = held / count
    roles = sum(1 for identity in service.store.snapshot().values() if identity.role_arn)
    server.terminate()

    print(f"ServiceAccounts loaded      {count:>12,} ({roles:,} with a role)")
    print(
        f"load time                   {seconds:>12.2f} s   target < {TARGET_SECONDS:.0f} s  ({seconds / TARGET_SECONDS:.2f}x of target)"
    )
    print(f"rate                        {count / seconds:>12,.0f} ServiceAccounts/s")
    print(f"held after load (traced)    {held:>12,} bytes")
    print(
        f"bytes per ServiceAccount    {per_sa:>12.1f}     target < {TARGET_BYTES_PER_SA}  ({per_sa / TARGET_BYTES_PER_SA:.2f}x of target)"
    )
    print(
        f"RSS growth (info)           {rss_after - rss_before:>12,} bytes ({(rss_after - rss_before) / count:.1f}/SA)"
    )
    ok = seconds < TARGET_SECONDS and per_sa < TARGET_BYTES_PER_SA
    print("PASS" if ok else "FAIL")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
