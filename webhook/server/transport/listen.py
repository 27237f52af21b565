"""Listening sockets as upstream's Go server opens them for ":PORT".

Go's net.Listen("tcp", ":443") opens one IPv6 socket with IPV6_V6ONLY off, so IPv4 clients
reach it too (as ::ffff:a.b.c.d), and falls back to IPv4 on hosts without IPv6. An empty
--bind-address does the same here; an explicit address binds exactly that address ("::"
dual-stack as in Go).
"""

from __future__ import annotations

import errno
import logging
import socket

logger = logging.getLogger(__name__)

# What uvicorn and Go ask for (Go reads net.core.somaxconn; the kernel caps it there anyway).
LISTEN_BACKLOG = 2048
# The host has no usable IPv6: fall back to IPv4 as Go does.
_NO_IPV6 = (errno.EAFNOSUPPORT, errno.EADDRNOTAVAIL, errno.EPROTONOSUPPORT)


PRIVILEGED_PORT_HINT = (
    "binding port {port} as a non-root user needs the NET_BIND_SERVICE capability or "
    "net.ipv4.ip_unprivileged_port_start at or below {port} (a pod securityContext.sysctls "
    "entry), or a --port of 1024 or more behind the Service's port 443; see docs/upstream.md"
)


def _bound(family: socket.AddressFamily, address: tuple[str, int]) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6 and address[0] == "::":
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        try:
            sock.bind(address)
        except PermissionError as exc:
            port = address[1]
            raise PermissionError(exc.errno, PRIVILEGED_PORT_HINT.format(port=port)) from exc
        sock.listen(LISTEN_BACKLOG)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def listening_sockets(host: str, port: int) -> list[socket.socket]:
    """Bound, listening sockets for `host` ("" = every interface, dual-stack) and `port`."""
    if not host:
        if socket.has_ipv6:
            try:
                return [_bound(socket.AF_INET6, ("::", port))]
            except OSError as exc:
                if exc.errno not in _NO_IPV6:
                    raise
                logger.info("no IPv6 on this host (%s): listening on IPv4 only", exc.strerror)
        return [_bound(socket.AF_INET, ("0.0.0.0", port))]
    infos = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE | socket.AI_NUMERICSERV
    )
    family, _, _, _, address = infos[0]
    return [_bound(family, (str(address[0]), port))]


def describe(sockets: list[socket.socket]) -> str:
    """ "[::]:443" or "127.0.0.1:8443": where the sockets listen, for the start-up log."""
    names = []
    for sock in sockets:
        host, port = sock.getsockname()[:2]
        names.append(f"[{host}]:{port}" if sock.family == socket.AF_INET6 else f"{host}:{port}")
    return ", ".join(names)
