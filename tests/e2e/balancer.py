"""An HTTPS load balancer in front of the API servers of an HA control plane.

It terminates TLS with the API servers' own serving certificate and sends each request to the
current `target` on a connection of its own, streaming the answer back (watches included), as
an L7 balancer does: after a switch, open watches stay where they are and every new request,
a re-watch included, goes to the new target. It only forwards: authentication (the webhook's
bearer token) and everything else are the real API servers'.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import queue
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests.support.server import free_port

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade"}


@dataclass
class Balancer:
    target: str  # https://127.0.0.1:PORT that new requests go to
    port: int = field(default_factory=free_port)
    requests: list[tuple[str, str]] = field(default_factory=list)  # (target, path)
    # (path, event type, resourceVersion) of every event of every watch stream, in order
    watch_events: list[tuple[str, str, str]] = field(default_factory=list)
    _generation: int = 0  # streams opened before end_streams() last ran are ended
    hold_watches: bool = False  # while True, watch events wait here (a slow network)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def end_streams(self) -> None:
        """Ends every open answer cleanly, as an API server does when a watch's timeout comes
        (or a balancer's maximum stream duration): the client sees a normal end."""
        self._generation += 1


def _read_into(answer: http.client.HTTPResponse, pieces: queue.Queue[bytes | None]) -> None:
    with contextlib.suppress(OSError, http.client.HTTPException, ValueError, AttributeError):
        while chunk := answer.read1(65536):
            pieces.put(chunk)
    pieces.put(None)


def _events(buffer: bytearray) -> list[tuple[str, str]]:
    """(type, resourceVersion) of the complete event lines in `buffer` (consumed from it)."""
    found = []
    while (end := buffer.find(b"\n")) >= 0:
        line = bytes(buffer[:end])
        del buffer[: end + 1]
        with contextlib.suppress(ValueError, AttributeError, TypeError, KeyError):
            event = json.loads(line)
            found.append((str(event["type"]), str(event["object"]["metadata"]["resourceVersion"])))
    return found


@contextlib.contextmanager
def run_balancer(target: str, *, ca: Path, cert: Path, key: Path) -> Iterator[Balancer]:
    balancer = Balancer(target)
    upstream_context = ssl.create_default_context(cafile=str(ca))

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _forward(self) -> None:
            target = balancer.target
            balancer.requests.append((target, self.path))
            host, port = target.removeprefix("https://").rsplit(":", 1)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
            upstream = http.client.HTTPSConnection(host, int(port), context=upstream_context)
            try:
                upstream.request(self.command, self.path, body=body, headers=headers)
                answer = upstream.getresponse()
            except OSError:
                upstream.close()
                self.send_error(502, "no API server behind the balancer")
                return
            try:
                self.send_response(answer.status, answer.reason)
                for name, value in answer.getheaders():
                    if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length":
                        self.send_header(name, value)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                # a watch arrives a line at a time: pass each piece on as it comes
                pieces: queue.Queue[bytes | None] = queue.Queue()
                threading.Thread(target=_read_into, args=(answer, pieces), daemon=True).start()
                watching = "watch=true" in self.path
                lines = bytearray()
                generation = balancer._generation
                while balancer._generation == generation:
                    try:
                        chunk = pieces.get(timeout=0.1)
                    except queue.Empty:
                        continue
                    if chunk is None:
                        break
                    while watching and balancer.hold_watches:
                        time.sleep(0.05)
                    if watching:
                        lines += chunk
                        path = self.path
                        balancer.watch_events.extend((path, *e) for e in _events(lines))
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
            except OSError:
                self.close_connection = True
            finally:
                # the reader thread may still be blocked reading this stream (it was ended
                # here, not by the API server); closing the response waits for its lock, so
                # the socket is shut down first, which wakes the reader
                if upstream.sock is not None:
                    with contextlib.suppress(OSError):
                        upstream.sock.shutdown(socket.SHUT_RDWR)
                upstream.close()

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _forward

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", balancer.port), Handler)
    server.daemon_threads = True
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert), str(key))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield balancer
    finally:
        server.shutdown()
        server.server_close()
