"""A stand-in for EC2 instance metadata (IMDSv2) on 127.0.0.1, for `--compose-role-arn`.

Both webhooks read the account and region from instance metadata at start-up when composing role
ARNs; both honour AWS_EC2_METADATA_SERVICE_ENDPOINT (upstream through the AWS SDK for Go), so
each is pointed here and nothing is sent to the link-local address.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ACCOUNT_ID = "444455556666"
REGION = "us-gov-west-1"  # partition aws-us-gov, composed from the region by both
TOKEN = "side-by-side-token"


def _document() -> dict[str, Any]:
    return {
        "accountId": ACCOUNT_ID,
        "region": REGION,
        "availabilityZone": f"{REGION}a",
        "instanceId": "i-0123456789abcdef0",
        "instanceType": "m5.large",
        "imageId": "ami-0123456789abcdef0",
        "architecture": "x86_64",
        "privateIp": "127.0.0.1",
        "version": "2017-09-30",
        "pendingTime": "2026-12-01T00:00:00Z",
    }


@contextlib.contextmanager
def instance_metadata() -> Iterator[tuple[str, list[str]]]:
    """The endpoint's URL and the requests it answered ("PUT /latest/api/token", ...)."""
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def _send(self, code: int, body: bytes, kind: str = "text/plain") -> None:
            self.send_response(code)
            self.send_header("Content-Type", kind)
            if self.command == "PUT":  # the SDK for Go reads the token's lifetime from here
                ttl = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds", "21600")
                self.send_header("X-aws-ec2-metadata-token-ttl-seconds", ttl)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_PUT(self) -> None:
            seen.append(f"PUT {self.path}")
            if self.path == "/latest/api/token":
                self._send(200, TOKEN.encode())
            else:
                self._send(404, b"")

        def do_GET(self) -> None:
            seen.append(f"GET {self.path}")
            if self.headers.get("X-aws-ec2-metadata-token") != TOKEN:
                self._send(401, b"")
            elif self.path == "/latest/dynamic/instance-identity/document":
                self._send(200, json.dumps(_document()).encode(), "application/json")
            else:
                self._send(404, b"")

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()
