"""Floods against the real server on 127.0.0.1, each bounded in count and time: the server's
peak memory stays under the Deployment's 256 Mi, and a good client keeps being answered.
The numbers they print are in docs/production.md ("Bounds")."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from tests.hostile.server_support import (
    BODIES,
    MEMORY_LIMIT_BYTES,
    SERVICE_ACCOUNTS,
    address,
    peak_rss_bytes,
    raise_open_files,
    request,
    tls_context,
)
from tests.support.server import CertFiles, RunningWebhook, run_webhook

pytestmark = pytest.mark.slow

MiB = 1024 * 1024


class GoodClient(threading.Thread):
    """kube-apiserver's part: a keep-alive connection opened before the attack, one typical
    admission every 50 ms, each one's latency recorded."""

    def __init__(self, webhook: RunningWebhook) -> None:
        super().__init__(daemon=True)
        self.client = webhook.client()
        self.client.get("/healthz")  # connected before the attack starts
        self.body = (BODIES / "typical.json").read_bytes()
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        try:
            while not self.stopping.is_set():
                started = time.monotonic()
                try:
                    answer = self.client.post(
                        "/mutate", content=self.body, headers={"Content-Type": "application/json"}
                    )
                except Exception as exc:  # any failure is the finding
                    self.failures.append(repr(exc))
                    return
                self.latencies.append(time.monotonic() - started)
                if answer.status_code != 200:
                    self.failures.append(f"{answer.status_code}")
                    return
                self.stopping.wait(0.05)
        finally:
            self.client.close()

    def stop(self) -> str:
        self.stopping.set()
        self.join(timeout=30)
        assert self.failures == []
        assert self.latencies, "the good client sent nothing"
        return f"good client worst {max(self.latencies) * 1000:.0f} ms over {len(self.latencies)}"


@contextlib.contextmanager
def _attacked(
    tmp_path: Path, cert_files: CertFiles
) -> Iterator[tuple[RunningWebhook, GoodClient, int]]:
    """The server with default bounds, its peak memory before the attack, and a good client."""
    with run_webhook(
        tmp_path, "--service-accounts-file", SERVICE_ACCOUNTS, certs=cert_files
    ) as webhook:
        before = peak_rss_bytes(webhook.process.pid)
        good = GoodClient(webhook)
        good.start()
        yield webhook, good, before


async def _pipeline(running: RunningWebhook, body: bytes, *, count: int, until: float) -> int:
    """One connection sending `count` requests back to back while reading what comes back."""
    host, port = address(running)
    reader, writer = await asyncio.open_connection(
        host, port, ssl=tls_context(running.certs), server_hostname=host
    )
    received = 0

    async def drain_answers() -> None:
        nonlocal received
        while chunk := await reader.read(65536):
            received += len(chunk)

    draining = asyncio.create_task(drain_answers())
    one = request(body)
    try:
        for _ in range(count):
            if time.monotonic() > until:
                break
            writer.write(one)
            await writer.drain()
        await asyncio.wait_for(asyncio.shield(draining), max(0.1, until - time.monotonic()))
    except (TimeoutError, OSError):
        pass
    finally:
        draining.cancel()
        writer.close()
    return received


def test_100_connections_pipelining_300_large_bodies_stay_under_256mi(
    tmp_path: Path, cert_files: CertFiles
) -> None:
    body = (BODIES / "large.json").read_bytes()

    async def flood(running: RunningWebhook) -> list[int]:
        until = time.monotonic() + 40
        return await asyncio.gather(
            *(_pipeline(running, body, count=300, until=until) for _ in range(100)),
            return_exceptions=False,
        )

    with _attacked(tmp_path, cert_files) as (webhook, good, before):
        received = asyncio.run(flood(webhook))
        peak = peak_rss_bytes(webhook.process.pid)
        good_result = good.stop()
    print(
        f"pipelining flood: peak RSS {before / MiB:.0f} -> {peak / MiB:.0f} MiB, "
        f"{sum(received) / MiB:.0f} MiB of answers, {good_result}"
    )
    assert sum(received) > 0
    assert peak < MEMORY_LIMIT_BYTES
    assert max(good.latencies) < 1.0


def test_5000_connections_that_never_start_tls_stay_under_256mi(
    tmp_path: Path, cert_files: CertFiles
) -> None:
    raise_open_files(5000 + 512 + 200)  # this process's sockets, and the server's (inherited)
    with _attacked(tmp_path, cert_files) as (webhook, good, before):
        held: list[socket.socket] = []
        try:
            started = time.monotonic()
            for _ in range(5000):
                if time.monotonic() - started > 30:
                    break
                sock = socket.socket()
                sock.setblocking(False)
                sock.connect_ex(address(webhook))
                held.append(sock)
            time.sleep(3)  # all accepted (or refused) by now
            peak = peak_rss_bytes(webhook.process.pid)
        finally:
            good_result = good.stop()
            for sock in held:
                sock.close()
        time.sleep(0.5)
        with webhook.client() as client:
            answer = client.post(
                "/mutate",
                content=(BODIES / "typical.json").read_bytes(),
                headers={"Content-Type": "application/json"},
            )
        assert answer.status_code == 200
    print(
        f"5000 idle connections: peak RSS {before / MiB:.0f} -> {peak / MiB:.0f} MiB, {good_result}"
    )
    assert len(held) == 5000
    assert peak < MEMORY_LIMIT_BYTES
    assert max(good.latencies) < 1.0


def _giant_pod(containers: int) -> bytes:
    review = orjson.loads((BODIES / "small.json").read_bytes())
    review["request"]["object"]["spec"]["containers"] = [
        {"name": f"c{n}", "image": "i"} for n in range(containers)
    ]
    return orjson.dumps(review)


def test_a_good_client_is_answered_within_1s_while_three_clients_send_giant_pods(
    tmp_path: Path, cert_files: CertFiles
) -> None:
    giant = _giant_pod(100_000)
    assert len(giant) > 2 * MiB
    typical = (BODIES / "typical.json").read_bytes()
    stop = threading.Event()
    giants_answered = [0, 0, 0]

    failures: list[str] = []

    def send_giants(webhook: RunningWebhook, index: int) -> None:
        with webhook.client() as client:
            while not stop.is_set():
                answer = client.post(
                    "/mutate", content=giant, headers={"Content-Type": "application/json"}
                )
                if answer.status_code != 200:
                    failures.append(f"{answer.status_code}: {answer.text[:200]}")
                    return
                giants_answered[index] += 1

    with run_webhook(
        tmp_path, "--service-accounts-file", SERVICE_ACCOUNTS, certs=cert_files
    ) as webhook:
        attackers = [
            threading.Thread(target=send_giants, args=(webhook, index), daemon=True)
            for index in range(3)
        ]
        for thread in attackers:
            thread.start()
        latencies = []
        try:
            with webhook.client() as client:
                time.sleep(1)  # the giants are flowing
                ended = time.monotonic() + 15
                while time.monotonic() < ended:
                    started = time.monotonic()
                    answer = client.post(
                        "/mutate", content=typical, headers={"Content-Type": "application/json"}
                    )
                    latencies.append(time.monotonic() - started)
                    assert answer.json()["response"]["patchType"] == "JSONPatch"
                    time.sleep(0.05)
        finally:
            stop.set()
            for thread in attackers:
                thread.join(timeout=30)
        peak = peak_rss_bytes(webhook.process.pid)
        with webhook.client() as client:
            answer = client.post(
                "/mutate", content=giant, headers={"Content-Type": "application/json"}
            )
        giant_answer = answer.json()["response"]
    print(
        f"giant pods: good client worst {max(latencies) * 1000:.0f} ms over {len(latencies)} "
        f"requests, {sum(giants_answered)} giants answered, peak RSS {peak / MiB:.0f} MiB"
    )
    assert failures == []
    assert "patch" not in giant_answer
    assert any("containers" in warning for warning in giant_answer["warnings"])
    assert sum(giants_answered) >= 3
    assert max(latencies) < 1.0
    assert peak < MEMORY_LIMIT_BYTES
