"""Shutdown and request limits of the real server: SIGTERM with requests in flight, body size,
JSON depth and the per-request time budget."""

from __future__ import annotations

import signal
import socket
import ssl
import time
from pathlib import Path

import httpx
import orjson
import pytest

from tests.support.admission import APP_FLAGS, review
from tests.support.server import CertFiles, RunningWebhook, run_webhook, shared_webhook
from tests.support.serverlog import assert_each_server_named_once_per_event

JSON = {"Content-Type": "application/json"}


def _connect(webhook: RunningWebhook) -> ssl.SSLSocket:
    """A TLS connection, handshake done, that has not sent a byte of a request."""
    return _finish_tls(webhook, _tcp(webhook))


def _head(body: bytes) -> bytes:
    return (
        f"POST /mutate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()


def _open_request(webhook: RunningWebhook, body: bytes, sent: int) -> ssl.SSLSocket:
    """A TLS connection that has sent the headers and the first `sent` bytes of the body."""
    conn = _connect(webhook)
    conn.sendall(_head(body) + body[:sent])
    return conn


def _read_response(conn: ssl.SSLSocket) -> tuple[int, bytes]:
    data = b""
    while True:
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
        head, sep, rest = data.partition(b"\r\n\r\n")
        if sep:
            length = next(
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            if len(rest) >= length:
                return int(head.split(b" ", 2)[1]), rest[:length]
    raise AssertionError(f"connection closed before a whole response: {data!r}")


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_each_servers_start_and_stop_is_logged_once_naming_the_server(
    log_format: str, tmp_path: Path, cert_files: CertFiles
) -> None:
    with run_webhook(
        tmp_path, *APP_FLAGS, f"--log-format={log_format}", certs=cert_files
    ) as webhook:
        assert webhook.stop(signal.SIGTERM) == 0
    log = webhook.log()
    if log_format == "json":
        entries = [orjson.loads(line) for line in log.splitlines()]
        log = "\n".join(f"x {e['logger']}: {e['message']}" for e in entries)
        servers = [e["server"] for e in entries if e["logger"] == "uvicorn"]
        assert servers == ["webhook", "metrics"] * 3
    assert_each_server_named_once_per_event(log, webhook.url, webhook.metrics_url)


def test_sigterm_answers_every_request_in_flight_then_exits_and_refuses_new_ones(
    tmp_path: Path, cert_files: CertFiles
) -> None:
    with run_webhook(
        tmp_path, *APP_FLAGS, "--shutdown-grace-period", "5s", certs=cert_files
    ) as webhook:
        bodies = [orjson.dumps(review("team-a", "app")) for _ in range(8)]
        # Each request is half sent: the server has accepted it and waits for the rest.
        conns = [_open_request(webhook, body, len(body) // 2) for body in bodies]
        time.sleep(0.3)
        signalled = time.monotonic()
        webhook.process.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        with pytest.raises(httpx.ConnectError), webhook.client() as late:
            late.get("/healthz")
        answers = []
        for conn, body in zip(conns, bodies, strict=True):
            conn.sendall(body[len(body) // 2 :])
            answers.append(_read_response(conn))
            conn.close()
        code = webhook.process.wait(timeout=10)
        exited_after = time.monotonic() - signalled
    assert [status for status, _ in answers] == [200] * len(bodies)
    assert all(
        orjson.loads(payload)["response"]["patchType"] == "JSONPatch" for _, payload in answers
    )
    assert code == 0
    assert exited_after < 5
    assert "received SIGTERM: finishing in-flight requests" in webhook.log()
    # admission lines are written in batches: the ones answered last are written at exit
    assert webhook.log().count("admission path=/mutate") == len(bodies)


def _tcp(webhook: RunningWebhook) -> socket.socket:
    """A connection the server has accepted, its TLS handshake not begun."""
    port = int(webhook.url.rsplit(":", 1)[1])
    return socket.create_connection(("127.0.0.1", port), timeout=10)


def _finish_tls(webhook: RunningWebhook, raw: socket.socket) -> ssl.SSLSocket:
    context = ssl.create_default_context(cafile=str(webhook.certs.ca))
    return context.wrap_socket(raw, server_hostname="127.0.0.1")


@pytest.mark.parametrize(
    "tls_before_sigterm", [True, False], ids=["handshake-done", "handshake-under-way"]
)
def test_sigterm_answers_a_connection_that_had_not_sent_its_request_yet(
    tmp_path: Path, cert_files: CertFiles, tls_before_sigterm: bool
) -> None:
    with run_webhook(
        tmp_path, *APP_FLAGS, "--shutdown-grace-period", "5s", certs=cert_files
    ) as webhook:
        body = orjson.dumps(review("team-a", "app"))
        conn = _connect(webhook) if tls_before_sigterm else _tcp(webhook)
        time.sleep(0.3)
        signalled = time.monotonic()
        webhook.process.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        late = conn if isinstance(conn, ssl.SSLSocket) else _finish_tls(webhook, conn)
        late.sendall(_head(body) + body)
        status, payload = _read_response(late)
        closed = late.recv(1) == b""  # answered with Connection: close, then closed
        late.close()
        code = webhook.process.wait(timeout=10)
        exited_after = time.monotonic() - signalled
    assert status == 200 and orjson.loads(payload)["response"]["patchType"] == "JSONPatch"
    assert closed
    assert code == 0
    assert exited_after < 2


def test_sigterm_exits_within_the_grace_period_when_a_client_never_finishes(
    tmp_path: Path, cert_files: CertFiles
) -> None:
    with run_webhook(
        tmp_path, *APP_FLAGS, "--shutdown-grace-period", "300ms", certs=cert_files
    ) as webhook:
        body = orjson.dumps(review("team-a", "app"))
        stalled = _open_request(webhook, body, 10)
        time.sleep(0.3)
        signalled = time.monotonic()
        webhook.process.send_signal(signal.SIGTERM)
        webhook.process.wait(timeout=10)
        exited_after = time.monotonic() - signalled
        stalled.close()
    assert exited_after < 1.5


limited = shared_webhook(
    *APP_FLAGS,
    "--max-request-bytes",
    "65536",
    "--service-account-lookup-grace-period",
    "5s",
    "--request-time-budget",
    "300ms",
)


def test_body_over_the_cap_is_413_with_the_limit_named(limited: RunningWebhook) -> None:
    body = review("team-a", "app")
    body["request"]["object"]["metadata"]["annotations"] = {"filler": "x" * 70000}
    content = orjson.dumps(body)
    with limited.client() as client:
        answer = client.post("/mutate", content=content, headers=JSON)
    assert answer.status_code == 413
    assert answer.json()["response"]["status"] == {
        "code": 413,
        "message": f"body of {len(content)} bytes is over the limit of 65536",
    }


def test_nesting_deeper_than_the_cap_is_400_with_a_message(limited: RunningWebhook) -> None:
    deep = b'{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":' + (
        b"[" * 2000 + b"]" * 2000 + b"}"
    )
    with limited.client() as client:
        answer = client.post("/mutate", content=deep, headers=JSON)
    assert answer.status_code == 400
    assert answer.json()["response"]["status"]["message"] == (
        "body is nested deeper than 1024 levels; a Pod is never that deep"
    )


def test_deep_but_allowed_unknown_field_survives_and_the_pod_is_mutated(
    limited: RunningWebhook,
) -> None:
    body = review("team-a", "app")
    body["request"]["object"]["spec"]["x-vendor"] = "DEEP"
    # orjson cannot write 1000 levels (its writer stops at 254), so splice them in as bytes
    content = orjson.dumps(body).replace(b'"DEEP"', b"[" * 1000 + b"]" * 1000)
    with limited.client() as client:
        answer = client.post("/mutate", content=content, headers=JSON)
    assert answer.status_code == 200
    assert answer.json()["response"]["patchType"] == "JSONPatch"


def test_decision_over_the_time_budget_is_allowed_unchanged_with_a_warning_and_counted(
    limited: RunningWebhook,
) -> None:
    # The ServiceAccount does not exist: the lookup would wait the 5s grace period.
    started = time.monotonic()
    with limited.client() as client:
        answer = client.post(
            "/mutate", content=orjson.dumps(review("team-a", "gone")), headers=JSON
        )
    elapsed = time.monotonic() - started
    assert answer.status_code == 200
    response = answer.json()["response"]
    assert response["allowed"] is True
    assert "patch" not in response
    assert response["warnings"] == [
        "pod-identity-webhook: not mutated, the admission took longer than 0.3s; "
        "the pod has no AWS credentials from the webhook"
    ]
    assert elapsed < 2
    metrics = httpx.get(limited.metrics_url + "/metrics").text
    assert "pod_identity_webhook_time_budget_exceeded_total 1" in metrics
    assert "took longer than the time budget of 0.3s" in limited.log()
    assert "is not shorter than --request-time-budget" in limited.log()


@pytest.mark.parametrize(
    "where",
    ["kind", "annotation-key"],
)
def test_a_huge_value_in_an_error_is_not_quoted_in_the_answer_or_the_log(
    limited: RunningWebhook, where: str
) -> None:
    body = review("team-a", "app")
    huge = "K" * 30000
    if where == "kind":
        body["kind"] = huge
    else:
        body["request"]["object"]["metadata"]["annotations"] = {huge: 1}
    with limited.client() as client:
        answer = client.post("/mutate", content=orjson.dumps(body), headers=JSON)
    assert answer.status_code == 400
    message = answer.json()["response"]["status"]["message"]
    assert "KKK" not in message
    assert message.startswith(("body is not an AdmissionReview", "request.object.metadata"))
    assert "K" * 600 not in limited.log()


def test_a_body_sent_too_slowly_gets_408_within_the_budget(limited: RunningWebhook) -> None:
    body = orjson.dumps(review("team-a", "app"))
    conn = _open_request(limited, body, len(body) // 2)
    started = time.monotonic()
    status, payload = _read_response(conn)
    conn.close()
    assert status == 408
    assert orjson.loads(payload)["response"]["status"] == {
        "code": 408,
        "message": "the body did not arrive within the time budget of 0.3s",
    }
    assert time.monotonic() - started < 2
