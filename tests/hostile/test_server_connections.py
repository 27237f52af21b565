"""Connections a client holds open: the cap at accept, the TLS handshake deadline, the deadline
for a complete request (slowloris included), oversized heads. Short deadlines via the flags;
the defaults are checked in the settings and, in the slow suite, end to end."""

from __future__ import annotations

import contextlib
import resource
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.hostile.server_support import (
    SERVICE_ACCOUNTS,
    address,
    request,
    seconds_until_closed,
    tls_socket,
)
from tests.support.server import CertFiles, RunningWebhook, run_webhook, shared_webhook
from webhook.cli import build_parser
from webhook.flags.shared import settings_from_args
from webhook.server.transport.acceptor import SPARE_FILE_DESCRIPTORS, ensure_file_descriptors


def test_default_deadlines_are_10s_for_tls_and_30s_for_a_request() -> None:
    args = build_parser().parse_args(["serve"])
    settings = settings_from_args(args)
    assert settings.tls_handshake_timeout == 10.0
    assert settings.request_read_timeout == 30.0
    assert settings.max_connections == 512


short_deadlines = shared_webhook(
    "--service-accounts-file",
    SERVICE_ACCOUNTS,
    "--tls-handshake-timeout",
    "1s",
    "--request-read-timeout",
    "1s",
)


def test_a_connection_that_never_starts_tls_is_closed_at_the_handshake_deadline(
    short_deadlines: RunningWebhook,
) -> None:
    with socket.create_connection(address(short_deadlines), timeout=5) as idle:
        assert seconds_until_closed(idle, limit=5) < 3


@pytest.mark.parametrize("trickle", [False, True], ids=["silent", "one-byte-at-a-time"])
def test_a_connection_without_a_complete_request_is_closed_at_the_read_deadline(
    short_deadlines: RunningWebhook, trickle: bool
) -> None:
    with tls_socket(short_deadlines) as sock:
        started = time.monotonic()
        closed = False
        if trickle:
            head = b"POST /mutate HTTP/1.1\r\nHost: webhook\r\nX-Slow: " + b"a" * 100
            for byte in head:
                try:
                    sock.sendall(bytes([byte]))
                except OSError:
                    closed = True
                    break
                time.sleep(0.05)
                if time.monotonic() - started > 5:
                    break
        if not closed:
            seconds_until_closed(sock, limit=5)
        assert time.monotonic() - started < 3.5


def test_connections_past_the_cap_are_closed_before_tls_and_good_clients_come_back(
    tmp_path: Path, cert_files: CertFiles
) -> None:
    body = (Path(SERVICE_ACCOUNTS).parent / "typical.json").read_bytes()
    with run_webhook(
        tmp_path,
        "--service-accounts-file",
        SERVICE_ACCOUNTS,
        "--max-connections",
        "5",
        certs=cert_files,
    ) as webhook:
        held = [socket.create_connection(address(webhook), timeout=5) for _ in range(5)]
        try:
            time.sleep(0.3)  # the server has accepted them
            with socket.create_connection(address(webhook), timeout=5) as refused:
                # closed at accept: no ServerHello, whatever the client sends
                refused.sendall(b"\x16\x03\x01\x00\x05hello")
                assert seconds_until_closed(refused, limit=3) < 1
        finally:
            for sock in held:
                sock.close()
        time.sleep(0.3)
        with webhook.client() as client:
            answer = client.post(
                "/mutate", content=body, headers={"Content-Type": "application/json"}
            )
        assert answer.status_code == 200
        assert "refused 1 new connection(s) at accept" in webhook.log()


# The default caps, shared by the tests that only send requests.
defaults = shared_webhook("--service-accounts-file", SERVICE_ACCOUNTS)


@pytest.mark.parametrize(
    ("extra_headers", "expected"),
    [
        (b"X-Big: " + b"a" * 1024 * 1024 + b"\r\n", b"over the limit of 32768 bytes"),
        (b"".join(b"X-%d: 1\r\n" % n for n in range(101)), b"more than 100 request headers"),
    ],
    ids=["1MB-header", "101-headers"],
)
def test_an_oversized_request_head_is_refused_with_431(
    defaults: RunningWebhook, extra_headers: bytes, expected: bytes
) -> None:
    with tls_socket(defaults) as sock:
        head = b"POST /mutate HTTP/1.1\r\nHost: webhook\r\n" + extra_headers + b"\r\n"
        try:
            for start in range(0, len(head), 16384):
                sock.sendall(head[start : start + 16384])
        except OSError:
            pass  # refused before the whole head was sent
        answer = b""
        sock.settimeout(5)
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except OSError:
            pass
    assert answer.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n"), answer[:200]
    assert answer.endswith(expected)


@pytest.mark.parametrize(
    "caps",
    [
        (),
        ("--max-pipelined-requests", "0"),
        ("--max-concurrent-requests", "1", "--max-inflight-request-bytes", "1024"),
    ],
    ids=["defaults", "no-read-ahead", "one-request-at-a-time"],
)
def test_pipelined_requests_past_the_caps_are_all_answered_in_order(
    tmp_path: Path, cert_files: CertFiles, caps: tuple[str, ...], defaults: RunningWebhook
) -> None:
    body = (Path(SERVICE_ACCOUNTS).parent / "large.json").read_bytes()
    with contextlib.ExitStack() as stack:
        webhook = (
            stack.enter_context(
                run_webhook(
                    tmp_path, "--service-accounts-file", SERVICE_ACCOUNTS, *caps, certs=cert_files
                )
            )
            if caps
            else defaults
        )
        sock = stack.enter_context(tls_socket(webhook))
        sock.sendall(request(body) * 20)
        received = b""
        while received.count(b"HTTP/1.1 200 OK") < 20:
            chunk = sock.recv(65536)
            assert chunk, "the server closed the connection early"
            received += chunk
    assert received.count(b'"patchType":"JSONPatch"') == 20


@pytest.mark.slow
def test_default_deadlines_close_a_silent_tcp_connection_at_10s_and_a_silent_tls_one_at_30s(
    tmp_path: Path, cert_files: CertFiles
) -> None:
    with run_webhook(
        tmp_path, "--service-accounts-file", SERVICE_ACCOUNTS, certs=cert_files
    ) as webhook:
        results: dict[str, float] = {}

        def watch(name: str, sock: socket.socket) -> None:
            with sock:
                results[name] = seconds_until_closed(sock, limit=40)

        threads = [
            threading.Thread(
                target=watch, args=("tcp", socket.create_connection(address(webhook), timeout=5))
            ),
            threading.Thread(target=watch, args=("tls", tls_socket(webhook))),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=45)
    assert 9 < results["tcp"] < 11.5
    assert 29 < results["tls"] < 32


def test_requests_over_the_concurrency_cap_wait_and_are_all_answered(
    tmp_path: Path, cert_files: CertFiles
) -> None:
    body = (Path(SERVICE_ACCOUNTS).parent / "typical.json").read_bytes()

    def post_five(webhook: RunningWebhook) -> list[int]:
        with webhook.client() as client:
            return [
                client.post(
                    "/mutate", content=body, headers={"Content-Type": "application/json"}
                ).status_code
                for _ in range(5)
            ]

    with (
        run_webhook(
            tmp_path,
            "--service-accounts-file",
            SERVICE_ACCOUNTS,
            "--max-concurrent-requests",
            "2",
            certs=cert_files,
        ) as webhook,
        ThreadPoolExecutor(max_workers=8) as pool,
    ):
        statuses = [s for run in pool.map(lambda _: post_five(webhook), range(8)) for s in run]
    assert statuses == [200] * 40


def test_the_open_files_limit_is_raised_to_what_the_connection_cap_needs() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (300, hard))
    try:
        ensure_file_descriptors(512)
        raised = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert raised == 512 + SPARE_FILE_DESCRIPTORS
