"""One write per response: CoalescingTransport, the uvicorn protocol that uses it, and the real
server answering pipelined and keep-alive requests through it."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import ssl
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import jsonpatch
import orjson
import pytest
import uvicorn
from uvicorn.server import ServerState

from tests.conftest import ROOT
from tests.support.server import CertFiles, RunningWebhook, shared_webhook
from webhook.server.transport.coalescingprotocol import (
    CoalescingHttpToolsProtocol,
    CoalescingTransport,
)


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


class Answering:
    """Stands in for the protocol: which response (cycle) is being answered, and how far, and
    which requests are in flight on the server."""

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.cycle: Any = None
        self.tasks: set[object] = {"this request"}
        self.loop = loop

    def start_response(self) -> None:
        self.cycle = type("Cycle", (), {"response_started": True, "response_complete": False})()


def _coalescing(
    loop: asyncio.AbstractEventLoop | None = None,
) -> tuple[CoalescingTransport, RecordingTransport, Answering]:
    inner, protocol = RecordingTransport(), Answering(loop)
    return CoalescingTransport(inner, protocol), inner, protocol  # type: ignore[arg-type]


def test_under_load_responses_leave_at_the_end_of_the_loop_step() -> None:
    async def scenario() -> list[bytes]:
        transport, inner, protocol = _coalescing(asyncio.get_running_loop())
        protocol.tasks.add("another request")
        protocol.start_response()
        transport.write(b"head|")
        transport.write(b"body")
        transport.write(b"|after")  # joins what waits, in order
        assert inner.writes == []
        assert transport.get_write_buffer_size() == 7 + len(b"head|body|after")
        await asyncio.sleep(0)
        return inner.writes

    assert asyncio.run(scenario()) == [b"head|body|after"]


def test_under_load_close_sends_what_waits_for_the_step_first() -> None:
    async def scenario() -> RecordingTransport:
        transport, inner, protocol = _coalescing(asyncio.get_running_loop())
        protocol.tasks.add("another request")
        protocol.start_response()
        transport.write(b"head|")
        transport.write(b"body")
        transport.close()
        await asyncio.sleep(0)  # the step's callback finds nothing left
        return inner

    inner = asyncio.run(scenario())
    assert inner.calls == ["write", "close"]
    assert inner.writes == [b"head|body"]


def test_under_load_nothing_is_written_to_a_transport_the_peer_closed() -> None:
    async def scenario() -> list[bytes]:
        transport, inner, protocol = _coalescing(asyncio.get_running_loop())
        protocol.tasks.add("another request")
        transport.write(b"too late")
        inner.closing = True
        await asyncio.sleep(0)
        return inner.writes

    assert asyncio.run(scenario()) == []


def test_a_response_head_goes_out_with_the_first_body_write() -> None:
    transport, inner, protocol = _coalescing()
    protocol.start_response()
    transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
    assert inner.writes == []  # the head waits for the body
    assert transport.get_write_buffer_size() == 7 + len(b"HTTP/1.1 200 OK\r\n\r\n")
    transport.write(b"body")
    transport.write(b"more body")  # later chunks of a streamed body go at once
    assert inner.writes == [b"HTTP/1.1 200 OK\r\n\r\nbody", b"more body"]


def test_writes_outside_a_response_are_not_held() -> None:
    transport, inner, protocol = _coalescing()
    transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")  # before any response starts
    protocol.start_response()
    protocol.cycle.response_complete = True
    transport.write(b"HTTP/1.1 400 Bad Request\r\n\r\n")  # after it completed
    assert len(inner.writes) == 2


def test_only_the_first_write_of_each_response_is_held() -> None:
    transport, inner, protocol = _coalescing()
    for number in range(2):
        protocol.start_response()
        transport.write(b"head %d|" % number)
        transport.write(b"body %d" % number)
    assert inner.writes == [b"head 0|body 0", b"head 1|body 1"]


def test_flush_head_sends_a_head_with_no_body() -> None:
    transport, inner, protocol = _coalescing()
    protocol.start_response()
    transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n")  # a HEAD answer
    transport.flush_head()
    transport.flush_head()
    assert inner.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n"]


def test_writelines_joins_the_chunks() -> None:
    transport, inner, _ = _coalescing()
    transport.writelines([b"a", bytearray(b"b"), memoryview(b"c")])
    assert inner.writes == [b"abc"]


@pytest.mark.parametrize("ending", ["close", "write_eof"])
def test_ending_the_stream_sends_what_is_held_first(ending: str) -> None:
    transport, inner, protocol = _coalescing()
    protocol.start_response()
    transport.write(b"last head")
    getattr(transport, ending)()
    assert inner.calls == ["write", ending]
    assert inner.writes == [b"last head"]


def test_abort_drops_what_is_held() -> None:
    transport, inner, protocol = _coalescing()
    protocol.start_response()
    transport.write(b"never sent")
    transport.abort()
    assert inner.calls == ["abort"]


def test_other_transport_methods_reach_the_real_transport() -> None:
    transport, inner, _ = _coalescing()
    assert transport.get_extra_info("peername") == ("127.0.0.1", 40000)
    transport.pause_reading()
    transport.resume_reading()
    assert transport.is_closing() is False
    assert inner.calls == ["pause_reading", "resume_reading"]


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


async def _serve_once(*chunks: bytes, app: Any = _echo_app) -> RecordingTransport:
    config = uvicorn.Config(app, lifespan="off", log_config=None, access_log=False)
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


def test_a_head_request_gets_its_head_without_waiting_for_a_body() -> None:
    request = b"HEAD /healthz HTTP/1.1\r\nHost: webhook\r\n\r\n"
    inner = asyncio.run(_serve_once(request))
    assert len(inner.writes) == 1
    assert inner.writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert inner.writes[0].endswith(b"\r\n\r\n")  # the head only


def test_expect_100_continue_is_answered_before_the_body_arrives() -> None:
    body = b'{"a": 1}'
    head, _, _ = _request("/mutate", body).partition(b"\r\n\r\n")
    head += b"\r\nExpect: 100-continue\r\n\r\n"

    async def scenario() -> RecordingTransport:
        config = uvicorn.Config(_echo_app, lifespan="off", log_config=None, access_log=False)
        protocol = CoalescingHttpToolsProtocol(config, ServerState(), {})
        inner = RecordingTransport()
        protocol.connection_made(inner)  # type: ignore[arg-type]
        protocol.data_received(head)
        for _ in range(20):
            await asyncio.sleep(0)
        assert inner.writes == [b"HTTP/1.1 100 Continue\r\n\r\n"]
        protocol.data_received(body)
        for _ in range(20):
            await asyncio.sleep(0)
        return inner

    inner = asyncio.run(scenario())
    assert len(inner.writes) == 2
    assert inner.writes[1].endswith(b'{"path":"/mutate","got":8}')


async def _streaming_app(scope: Any, receive: Any, send: Any) -> None:
    await receive()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"first", "more_body": True})
    await asyncio.sleep(0)
    await send({"type": "http.response.body", "body": b"second", "more_body": False})


def test_a_streamed_response_sends_its_head_with_the_first_chunk() -> None:
    inner = asyncio.run(_serve_once(_request("/stream"), app=_streaming_app))
    assert len(inner.writes) == 2
    assert inner.writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert inner.writes[0].endswith(b"\r\n\r\n5\r\nfirst\r\n")  # chunked encoding
    assert inner.writes[1] == b"6\r\nsecond\r\n0\r\n\r\n"


# -- the real server -------------------------------------------------------------------------


EXAMPLE_ACCOUNTS = str(ROOT / "examples" / "serviceaccounts.yaml")
# The real server with the example ServiceAccounts (the example review's is among them),
# shared by the tests below: they only send it admissions.
example_webhook = shared_webhook("--service-accounts-file", EXAMPLE_ACCOUNTS)


def test_example_review_is_mutated_through_real_https_server(
    example_webhook: RunningWebhook,
) -> None:
    body = (ROOT / "examples" / "admissionreview.json").read_bytes()
    with example_webhook.client() as client:
        answer = client.post("/mutate", content=body, headers={"Content-Type": "application/json"})
    assert answer.status_code == 200
    review = answer.json()
    assert review["response"]["uid"] == "705ab4f5-6393-11e8-b7cc-42010a800002"
    ops = json.loads(base64.b64decode(review["response"]["patch"]))
    pod = json.loads(body)["request"]["object"]
    mutated = jsonpatch.apply_patch(pod, ops)
    env = {e["name"]: e["value"] for e in mutated["spec"]["containers"][0]["env"]}
    assert env["AWS_ROLE_ARN"] == "arn:aws:iam::111122223333:role/s3-reader"


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
    example_webhook: RunningWebhook, cert_files: CertFiles, pipelined: bool
) -> None:
    template = orjson.loads((ROOT / "examples" / "admissionreview.json").read_bytes())
    bodies = []
    for number in range(5):
        template["request"]["uid"] = f"uid-{number}"
        bodies.append(orjson.dumps(template))
    with _tls_socket(example_webhook.url, cert_files) as sock:
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


def test_real_server_under_concurrent_load_answers_every_request_with_its_own_review(
    example_webhook: RunningWebhook,
) -> None:
    """Many connections at once: responses are then sent at the end of the loop step; each
    must still carry its own request's uid, complete."""
    template = orjson.loads((ROOT / "examples" / "admissionreview.json").read_bytes())

    def client_run(webhook: Any, worker: int) -> list[tuple[str, str]]:
        seen = []
        with webhook.client() as client:
            for number in range(25):
                uid = f"uid-{worker}-{number}"
                review = {**template, "request": {**template["request"], "uid": uid}}
                answer = client.post(
                    "/mutate",
                    content=orjson.dumps(review),
                    headers={"Content-Type": "application/json"},
                )
                assert answer.status_code == 200
                assert answer.json()["response"]["patchType"] == "JSONPatch"
                seen.append((uid, answer.json()["response"]["uid"]))
        return seen

    with ThreadPoolExecutor(max_workers=16) as pool:
        runs = list(pool.map(lambda worker: client_run(example_webhook, worker), range(16)))
    pairs = [pair for run in runs for pair in run]
    assert len(pairs) == 16 * 25
    assert all(sent == answered for sent, answered in pairs)
