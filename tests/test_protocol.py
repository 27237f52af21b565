"""One write per response: CoalescingTransport, the uvicorn protocol that uses it, and the real
server answering pipelined and keep-alive requests through it."""

from __future__ import annotations

import asyncio
import socket
import ssl
from pathlib import Path
from typing import Any

import orjson
import pytest
import uvicorn
from uvicorn.server import ServerState

from tests.conftest import ROOT
from tests.support.server import CertFiles, run_webhook
from webhook.server.protocol import CoalescingHttpToolsProtocol, CoalescingTransport


class RecordingTransport:
    """Just enough of a transport to see what reaches it, in order."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.calls: list[str] = []
        self.closing = False

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))
        self.calls.append("write")

    def close(self) -> None:
        self.closing = True
        self.calls.append("close")

    def abort(self) -> None:
        self.closing = True
        self.calls.append("abort")

    def write_eof(self) -> None:
        self.calls.append("write_eof")

    def is_closing(self) -> bool:
        return self.closing

    def get_write_buffer_size(self) -> int:
        return 7

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 40000), "sockname": ("127.0.0.1", 8443)}.get(
            name, default
        )

    def pause_reading(self) -> None:
        self.calls.append("pause_reading")

    def resume_reading(self) -> None:
        self.calls.append("resume_reading")

    def set_protocol(self, protocol: Any) -> None:
        self.calls.append("set_protocol")


def _coalescing(loop: asyncio.AbstractEventLoop) -> tuple[CoalescingTransport, RecordingTransport]:
    inner = RecordingTransport()
    return CoalescingTransport(inner, loop), inner  # type: ignore[arg-type]


def test_writes_in_one_step_reach_the_transport_as_one() -> None:
    async def scenario() -> list[bytes]:
        transport, inner = _coalescing(asyncio.get_running_loop())
        transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
        transport.write(b"body")
        assert inner.writes == []  # held until the step ends
        assert transport.get_write_buffer_size() == 7 + len(b"HTTP/1.1 200 OK\r\n\r\nbody")
        await asyncio.sleep(0)
        transport.write(b"next")
        await asyncio.sleep(0)
        return inner.writes

    assert asyncio.run(scenario()) == [b"HTTP/1.1 200 OK\r\n\r\nbody", b"next"]


def test_writelines_is_held_like_write() -> None:
    async def scenario() -> list[bytes]:
        transport, inner = _coalescing(asyncio.get_running_loop())
        transport.writelines([b"a", bytearray(b"b"), memoryview(b"c")])
        await asyncio.sleep(0)
        return inner.writes

    assert asyncio.run(scenario()) == [b"abc"]


def test_close_sends_what_is_held_first() -> None:
    async def scenario() -> RecordingTransport:
        transport, inner = _coalescing(asyncio.get_running_loop())
        transport.write(b"last response")
        transport.close()
        await asyncio.sleep(0)  # the scheduled flush finds nothing left to send
        return inner

    inner = asyncio.run(scenario())
    assert inner.calls == ["write", "close"]
    assert inner.writes == [b"last response"]


def test_write_eof_sends_what_is_held_first() -> None:
    async def scenario() -> RecordingTransport:
        transport, inner = _coalescing(asyncio.get_running_loop())
        transport.write(b"x")
        transport.write_eof()
        return inner

    assert asyncio.run(scenario()).calls == ["write", "write_eof"]


def test_abort_drops_what_is_held() -> None:
    async def scenario() -> RecordingTransport:
        transport, inner = _coalescing(asyncio.get_running_loop())
        transport.write(b"never sent")
        transport.abort()
        await asyncio.sleep(0)
        return inner

    inner = asyncio.run(scenario())
    assert inner.calls == ["abort"]
    assert inner.writes == []


def test_nothing_is_written_to_a_transport_closed_by_the_peer() -> None:
    async def scenario() -> RecordingTransport:
        transport, inner = _coalescing(asyncio.get_running_loop())
        transport.write(b"too late")
        inner.closing = True  # the peer went away before the step ended
        await asyncio.sleep(0)
        return inner

    assert asyncio.run(scenario()).writes == []


def test_other_transport_methods_reach_the_real_transport() -> None:
    async def scenario() -> RecordingTransport:
        transport, inner = _coalescing(asyncio.get_running_loop())
        assert transport.get_extra_info("peername") == ("127.0.0.1", 40000)
        transport.pause_reading()
        transport.resume_reading()
        assert transport.is_closing() is False
        return inner

    assert asyncio.run(scenario()).calls == ["pause_reading", "resume_reading"]


# -- the uvicorn protocol, with the real parser and a real app --------------------------------


async def _echo_app(scope: Any, receive: Any, send: Any) -> None:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    payload = orjson.dumps({"path": scope["path"], "got": len(body)})
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


def _request(path: str, body: bytes = b"{}") -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: webhook\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


async def _serve_once(*chunks: bytes) -> RecordingTransport:
    config = uvicorn.Config(_echo_app, lifespan="off", log_config=None, access_log=False)
    protocol = CoalescingHttpToolsProtocol(config, ServerState(), {})
    inner = RecordingTransport()
    protocol.connection_made(inner)  # type: ignore[arg-type]
    for chunk in chunks:
        protocol.data_received(chunk)
        for _ in range(20):
            await asyncio.sleep(0)
    return inner


def test_each_response_is_one_write_with_head_and_body() -> None:
    inner = asyncio.run(_serve_once(_request("/mutate"), _request("/mutate-fargate", b"[1,2]")))
    assert len(inner.writes) == 2
    first, second = inner.writes
    assert first.startswith(b"HTTP/1.1 200 OK\r\n")
    assert first.endswith(b'\r\n\r\n{"path":"/mutate","got":2}')
    assert second.endswith(b'{"path":"/mutate-fargate","got":5}')


def test_pipelined_requests_are_answered_in_order() -> None:
    inner = asyncio.run(_serve_once(_request("/a") + _request("/b") + _request("/c")))
    answered = b"".join(inner.writes)
    positions = [answered.index(f'"path":"/{name}"'.encode()) for name in "abc"]
    assert positions == sorted(positions)
    assert answered.count(b"HTTP/1.1 200 OK") == 3


# -- the real server -------------------------------------------------------------------------


def _tls_socket(url: str, certs: CertFiles) -> ssl.SSLSocket:
    host, port = url.removeprefix("https://").split(":")
    context = ssl.create_default_context(cafile=str(certs.ca))
    raw = socket.create_connection((host, int(port)), timeout=10)
    return context.wrap_socket(raw, server_hostname=host)


def _read_responses(sock: ssl.SSLSocket, count: int) -> list[dict[str, Any]]:
    buffered = b""
    answers: list[dict[str, Any]] = []
    while len(answers) < count:
        head_end = buffered.find(b"\r\n\r\n")
        if head_end >= 0:
            head = buffered[:head_end].decode("latin-1").lower()
            length = int(head.split("content-length:")[1].split("\r\n")[0])
            if len(buffered) >= head_end + 4 + length:
                assert head.startswith("http/1.1 200")
                answers.append(orjson.loads(buffered[head_end + 4 : head_end + 4 + length]))
                buffered = buffered[head_end + 4 + length :]
                continue
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection early"
        buffered += chunk
    return answers


@pytest.mark.parametrize("pipelined", [False, True], ids=["keep-alive", "pipelined"])
def test_real_server_answers_many_requests_on_one_connection(
    tmp_path: Path, cert_files: CertFiles, pipelined: bool
) -> None:
    template = orjson.loads((ROOT / "examples" / "admissionreview.json").read_bytes())
    bodies = []
    for number in range(5):
        template["request"]["uid"] = f"uid-{number}"
        bodies.append(orjson.dumps(template))
    with (
        run_webhook(
            tmp_path,
            "--service-accounts-file",
            str(ROOT / "examples" / "serviceaccounts.yaml"),
            certs=cert_files,
        ) as webhook,
        _tls_socket(webhook.url, cert_files) as sock,
    ):
        if pipelined:
            sock.sendall(b"".join(_request("/mutate", body) for body in bodies))
            answers = _read_responses(sock, len(bodies))
        else:
            answers = []
            for body in bodies:
                sock.sendall(_request("/mutate", body))
                answers += _read_responses(sock, 1)
    assert [answer["response"]["uid"] for answer in answers] == [f"uid-{n}" for n in range(5)]
    assert all(answer["response"]["patchType"] == "JSONPatch" for answer in answers)
