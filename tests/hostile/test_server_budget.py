"""The time budget on both admission paths: a body that never comes gets 408, a decision that
takes too long is allowed unchanged, and either answer leaves before the budget runs out."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest

from tests.conftest import ROOT
from tests.hostile.server_support import BODIES, tls_socket
from tests.support.server import CertFiles, RunningWebhook, run_webhook, shared_webhook

BUDGET_SECONDS = 0.5
SOURCES = (
    "--service-accounts-file",
    str(BODIES / "serviceaccount.yaml"),
    "--fargate-profiles",
    str(ROOT / "examples" / "fargate-profiles.yaml"),
)


budgeted = shared_webhook(
    *SOURCES,
    "--service-account-lookup-grace-period",
    "10s",
    "--request-time-budget",
    f"{BUDGET_SECONDS}s",
)


def _answer(webhook: RunningWebhook, head: bytes, body: bytes = b"") -> tuple[float, bytes]:
    with tls_socket(webhook) as sock:
        started = time.monotonic()
        sock.sendall(head + body)
        received = b""
        while b"\r\n\r\n" not in received or not received.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
            if received.startswith(b"HTTP/1.1 100 Continue\r\n\r\n"):
                received = received.removeprefix(b"HTTP/1.1 100 Continue\r\n\r\n")
        return time.monotonic() - started, received


@pytest.mark.parametrize("path", ["/mutate", "/mutate-fargate"])
@pytest.mark.parametrize("expect", [False, True], ids=["half-a-body", "expect-100-continue"])
def test_a_body_that_does_not_arrive_gets_408_before_the_budget(
    budgeted: RunningWebhook, path: str, expect: bool
) -> None:
    body = (BODIES / "typical.json").read_bytes()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: webhook\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n" + ("Expect: 100-continue\r\n" if expect else "") + "\r\n"
    ).encode()
    seconds, answer = _answer(budgeted, head, b"" if expect else body[: len(body) // 2])
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert b"did not arrive within the time budget of 0.5s" in answer
    assert seconds < BUDGET_SECONDS


def test_a_decision_over_budget_is_answered_before_the_budget(budgeted: RunningWebhook) -> None:
    review = orjson.loads((BODIES / "typical.json").read_bytes())
    review["request"]["object"]["spec"]["serviceAccountName"] = "missing"  # waits for the lookup
    body = orjson.dumps(review)
    head = (
        "POST /mutate HTTP/1.1\r\nHost: webhook\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    seconds, answer = _answer(budgeted, head, body)
    assert answer.startswith(b"HTTP/1.1 200 ")
    assert b"took longer than 0.5s" in answer
    assert BUDGET_SECONDS * 0.7 < seconds < BUDGET_SECONDS


def test_sigterm_with_a_stalled_fargate_request_exits_within_the_budget(
    tmp_path: Path, cert_files: CertFiles
) -> None:
    with run_webhook(
        tmp_path,
        *SOURCES,
        "--request-time-budget",
        "1s",
        "--shutdown-grace-period",
        "20s",
        certs=cert_files,
    ) as webhook:
        sock = tls_socket(webhook)
        sock.sendall(
            b"POST /mutate-fargate HTTP/1.1\r\nHost: webhook\r\nContent-Type: application/json"
            b"\r\nContent-Length: 100\r\nExpect: 100-continue\r\n\r\n"
        )
        time.sleep(0.2)
        started = time.monotonic()
        assert webhook.stop(timeout=15) == 0
        sock.close()
    assert time.monotonic() - started < 5
