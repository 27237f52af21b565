"""listening_sockets opens what Go's net.Listen("tcp", ":PORT") opens."""

from __future__ import annotations

import errno
import socket

import pytest

from tests.test_upstream_dropin import _has_ipv6_loopback
from webhook.server.transport.listen import describe, listening_sockets


def test_empty_address_is_one_dual_stack_ipv6_socket() -> None:
    reason = _has_ipv6_loopback()
    if reason:
        pytest.skip(reason)
    (sock,) = listening_sockets("", 0)
    with sock:
        assert sock.family == socket.AF_INET6
        assert sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) == 0
        port = sock.getsockname()[1]
        for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
            with socket.socket(family, socket.SOCK_STREAM) as client:
                client.settimeout(5)
                client.connect((host, port))  # accepted by the backlog: one socket, both
        assert describe([sock]) == f"[::]:{port}"


def test_without_ipv6_the_empty_address_falls_back_to_ipv4(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(socket, "has_ipv6", False)  # the module listen.py reads it from
    (sock,) = listening_sockets("", 0)
    with sock:
        assert sock.family == socket.AF_INET
        assert sock.getsockname()[0] == "0.0.0.0"


def test_an_explicit_address_binds_exactly_that() -> None:
    (sock,) = listening_sockets("127.0.0.1", 0)
    with sock:
        assert sock.family == socket.AF_INET
        assert describe([sock]) == f"127.0.0.1:{sock.getsockname()[1]}"


def test_a_port_in_use_is_an_error_naming_it() -> None:
    (first,) = listening_sockets("127.0.0.1", 0)
    with first, pytest.raises(OSError) as error:
        listening_sockets("127.0.0.1", first.getsockname()[1])
    assert error.value.errno == errno.EADDRINUSE


def test_a_privileged_port_without_the_right_says_how_to_get_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refuse(self: socket.socket, address: object) -> None:
        raise PermissionError(errno.EACCES, "Permission denied")  # a non-root user on 443

    monkeypatch.setattr(socket.socket, "bind", refuse)
    with pytest.raises(PermissionError) as error:
        listening_sockets("127.0.0.1", 443)
    assert "NET_BIND_SERVICE" in str(error.value)
    assert "net.ipv4.ip_unprivileged_port_start at or below 443" in str(error.value)
