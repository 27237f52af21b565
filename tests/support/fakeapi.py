"""A small Kubernetes API server for ServiceAccounts and ConfigMaps, over plain HTTP on loopback.

What a real kube-apiserver does is proven against one in tests/e2e (docs/cluster.md, "The
real-cluster suite"): lists, watches, bookmarks, a restart, a compaction's 410, the grace-period
GET, RBAC, doctor reading the cluster. This server stays for the faults a real API server cannot
be made to produce on demand, at a chosen moment and in a unit test's time:

- a chosen verb answering 5xx a chosen number of times (`fail`);
- every watch cut mid-stream without the chunked stream's end (`drop_watches`), or each new
  watch cut, ended at once or answered with an ERROR 410 event as soon as it connects
  (`sabotage_watches`): the back-off and restart-reason tests need hundreds of these;
- a restart that forgets the event history, with the API down for a given time (`restart`), and
  history forgotten while watches are open (`compact`), 410 as an event or as HTTP 410;
- changes no watch stream ever carries (`put(..., silent=True)`), so the grace-period GET alone
  can find them, and several changes no watch may see in between (`atomically`);
- bookmarks every 0.5 s rather than about once a minute.

The unit tests also use it where those fault tests need a healthy baseline next to them (the
same ServiceAccount read before the fault is injected), which the real-cluster suite proves
with the real thing.

It speaks enough of the list/watch protocol for the real `kubernetes` client: paged lists with
a consistent resourceVersion, chunked watch streams (ADDED/MODIFIED/DELETED/BOOKMARK), 410 Gone
on an expired resourceVersion, single GETs.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import socket
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson

SERVICE_ACCOUNTS = "serviceaccounts"
CONFIG_MAPS = "configmaps"
KINDS = {SERVICE_ACCOUNTS: "ServiceAccount", CONFIG_MAPS: "ConfigMap"}
BOOKMARK_INTERVAL_SECONDS = 0.5


def status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


@dataclass
class _Fault:
    verb: str  # list, watch, get
    status: int
    remaining: int


@dataclass
class _State:
    rv: int = 1
    oldest_rv: int = 1  # a watch from below this answers 410
    objects: dict[str, dict[str, dict[str, Any]]] = field(
        default_factory=lambda: {SERVICE_ACCOUNTS: {}, CONFIG_MAPS: {}}
    )
    history: list[tuple[int, str, str, dict[str, Any]]] = field(default_factory=list)
    snapshots: dict[str, tuple[int, list[dict[str, Any]]]] = field(default_factory=dict)


class FakeApiServer:
    def __init__(self, *, expired_as: str = "event", host: str = "127.0.0.1") -> None:
        self.host = host  # the image test binds the Docker bridge's address, for containers
        self.expired_as = expired_as  # "event": ERROR event with code 410; "http": HTTP 410
        self.requests: list[tuple[str, str]] = []  # (verb, path)
        self._state = _State()
        self._cond = threading.Condition()
        self._faults: list[_Fault] = []
        self._watch_sockets: set[socket.socket] = set()
        self._generation = 0
        self.watch_sabotage: str | None = None  # see sabotage_watches
        self._tokens = itertools.count(1)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> FakeApiServer:
        handler = _make_handler(self)
        server = ThreadingHTTPServer((self.host, self.port), handler)
        server.daemon_threads = True
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self._server = None
        self.drop_watches()

    def restart(self, *, forget_history: bool = True, down_seconds: float = 0.0) -> None:
        """Stop, optionally stay down a while, start on the same port; a new etcd forgets history."""
        self.stop()
        if forget_history:
            with self._cond:
                self._state.history.clear()
                self._state.oldest_rv = self._state.rv + 1
                self._state.snapshots.clear()
        time.sleep(down_seconds)
        self.start()

    def __enter__(self) -> FakeApiServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def write_kubeconfig(self, path: Path) -> Path:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
            "users": [{"name": "fake", "user": {"token": "fake-token"}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}],
            "current-context": "fake",
        }
        path.write_bytes(orjson.dumps(config))
        return path

    # -- objects ---------------------------------------------------------------------------------

    def put(self, resource: str, obj: dict[str, Any], *, silent: bool = False) -> int:
        """Create or replace; `silent` keeps it out of watch streams (only a list or GET sees it)."""
        with self._cond:
            state = self._state
            state.rv += 1
            stored = copy.deepcopy(obj)
            stored.setdefault("apiVersion", "v1")
            stored.setdefault("kind", KINDS[resource])
            metadata = stored.setdefault("metadata", {})
            metadata.setdefault("namespace", "default")
            metadata["resourceVersion"] = str(state.rv)
            key = f"{metadata['namespace']}/{metadata['name']}"
            kind = "MODIFIED" if key in state.objects[resource] else "ADDED"
            state.objects[resource][key] = stored
            if not silent:
                state.history.append((state.rv, resource, kind, stored))
            self._cond.notify_all()
            return state.rv

    def delete(self, resource: str, namespace: str, name: str) -> int:
        with self._cond:
            state = self._state
            stored = state.objects[resource].pop(f"{namespace}/{name}")
            state.rv += 1
            gone = copy.deepcopy(stored)
            gone["metadata"]["resourceVersion"] = str(state.rv)
            state.history.append((state.rv, resource, "DELETED", gone))
            self._cond.notify_all()
            return state.rv

    def load(self, resource: str, objects: Iterable[dict[str, Any]]) -> None:
        """Bulk-load objects with no watch history (as if they existed before any client came)."""
        with self._cond:
            state = self._state
            state.rv += 1
            for obj in objects:
                metadata = obj["metadata"]
                metadata["resourceVersion"] = str(state.rv)
                state.objects[resource][f"{metadata['namespace']}/{metadata['name']}"] = obj
            state.oldest_rv = state.rv + 1

    def put_service_account(
        self,
        namespace: str,
        name: str,
        annotations: dict[str, str] | None = None,
        *,
        silent: bool = False,
    ) -> int:
        return self.put(
            SERVICE_ACCOUNTS,
            {"metadata": {"namespace": namespace, "name": name, "annotations": annotations or {}}},
            silent=silent,
        )

    def put_config_map(self, namespace: str, name: str, data: dict[str, str]) -> int:
        return self.put(
            CONFIG_MAPS, {"metadata": {"namespace": namespace, "name": name}, "data": data}
        )

    # -- faults ----------------------------------------------------------------------------------

    def compact(self) -> None:
        """Forget the history so far: open watches get an ERROR 410 event, new ones from an
        older resourceVersion get 410 (as an event or as HTTP 410, see `expired_as`)."""
        with self._cond:
            self._state.oldest_rv = self._state.rv + 1
            self._state.history.clear()
            self._generation += 1
            self._cond.notify_all()

    def atomically(self) -> threading.Condition:
        """Hold this to make several changes that no watch may see in between."""
        return self._cond

    def fail(self, verb: str, *, status_code: int = 500, times: int = 1) -> None:
        with self._cond:
            self._faults.append(_Fault(verb, status_code, times))

    def drop_watches(self) -> None:
        """Cut every open watch connection without ending its chunked stream."""
        with self._cond:
            sockets = list(self._watch_sockets)
            self._generation += 1
            self._cond.notify_all()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def sabotage_watches(self, mode: str | None) -> None:
        """From now on every watch, once connected, is cut ("break"), ended cleanly ("end") or
        answered with an ERROR 410 event ("expire"); None stops it."""
        assert mode in (None, "break", "end", "expire")
        self.watch_sabotage = mode

    def count(self, verb: str) -> int:
        return sum(1 for v, _ in self.requests if v == verb)

    # -- serving (handler threads) ---------------------------------------------------------------

    def _take_fault(self, verb: str) -> int | None:
        with self._cond:
            for fault in self._faults:
                if fault.verb == verb and fault.remaining > 0:
                    fault.remaining -= 1
                    return fault.status
        return None

    def list_page(
        self, resource: str, namespace: str | None, name: str | None, limit: int, token: str
    ) -> tuple[int, dict[str, Any]]:
        with self._cond:
            state = self._state
            if token:
                snapshot = state.snapshots.get(token)
                if snapshot is None:
                    return 410, status(410, "Expired", "the provided continue parameter is too old")
                rv, remaining = snapshot
            else:
                rv = state.rv
                remaining = [
                    obj
                    for key, obj in sorted(state.objects[resource].items())
                    if _matches(obj, namespace, name)
                ]
            page, rest = (remaining[:limit], remaining[limit:]) if limit > 0 else (remaining, [])
            metadata: dict[str, Any] = {"resourceVersion": str(rv)}
            if rest:
                next_token = f"c{next(self._tokens)}"
                state.snapshots[next_token] = (rv, rest)
                metadata["continue"] = next_token
            if token:
                state.snapshots.pop(token, None)
        return 200, {
            "kind": KINDS[resource] + "List",
            "apiVersion": "v1",
            "metadata": metadata,
            "items": page,
        }

    def get(self, resource: str, namespace: str, name: str) -> tuple[int, dict[str, Any]]:
        with self._cond:
            obj = self._state.objects[resource].get(f"{namespace}/{name}")
        if obj is None:
            return 404, status(404, "NotFound", f'{resource} "{name}" not found')
        return 200, obj


def _matches(obj: dict[str, Any], namespace: str | None, name: str | None) -> bool:
    metadata = obj["metadata"]
    return (namespace is None or metadata.get("namespace") == namespace) and (
        name is None or metadata.get("name") == name
    )


def _route(path: str) -> tuple[str, str | None, str | None] | None:
    """(resource, namespace, name) of /api/v1/[namespaces/NS/]RESOURCE[/NAME]."""
    parts = path.strip("/").split("/")
    if parts[:2] != ["api", "v1"]:
        return None
    rest = parts[2:]
    namespace = None
    if len(rest) >= 2 and rest[0] == "namespaces":
        namespace, rest = rest[1], rest[2:]
    if not rest or rest[0] not in KINDS:
        return None
    name = rest[1] if len(rest) == 2 else None
    return rest[0], namespace, name


def _make_handler(api: FakeApiServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return

        def _send_json(self, code: int, body: dict[str, Any]) -> None:
            data = orjson.dumps(body)
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(url.query).items()}
            route = _route(url.path)
            if route is None:
                self._send_json(404, status(404, "NotFound", f"no route {url.path}"))
                return
            resource, namespace, name = route
            selected = query.get("fieldSelector", "")
            if selected.startswith("metadata.name="):
                name_filter: str | None = selected.split("=", 1)[1]
            else:
                name_filter = None
            verb = "get" if name else ("watch" if query.get("watch") in ("true", "1") else "list")
            api.requests.append((verb, url.path))
            fault = api._take_fault(verb)
            if fault is not None:
                self._send_json(fault, status(fault, "InternalError", "injected fault"))
                return
            if verb == "get":
                assert namespace is not None and name is not None
                self._send_json(*api.get(resource, namespace, name))
            elif verb == "list":
                self._send_json(
                    *api.list_page(
                        resource,
                        namespace,
                        name_filter,
                        int(query.get("limit", "0")),
                        query.get("continue", ""),
                    )
                )
            else:
                self._watch(resource, namespace, name_filter, query)

        def _watch(
            self, resource: str, namespace: str | None, name: str | None, query: dict[str, str]
        ) -> None:
            since = int(query.get("resourceVersion") or "0")
            timeout = float(query.get("timeoutSeconds") or "30")
            bookmarks = query.get("allowWatchBookmarks") in ("true", "1")
            with api._cond:
                expired = since < api._state.oldest_rv - 1
                generation = api._generation
            if expired and api.expired_as == "http":
                self._send_json(410, status(410, "Expired", f"too old resource version: {since}"))
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            with api._cond:
                api._watch_sockets.add(self.connection)
            sabotage = api.watch_sabotage
            try:
                if sabotage == "break":
                    self.close_connection = True
                    return  # no terminating chunk: the client sees a broken stream
                if sabotage == "end":
                    self._end()
                    return
                expired = expired or sabotage == "expire"
                if expired:
                    self._chunk(
                        {
                            "type": "ERROR",
                            "object": status(410, "Expired", f"too old resource version: {since}"),
                        }
                    )
                    self._end()
                    return
                self._stream(resource, namespace, name, since, timeout, bookmarks, generation)
            except OSError:
                pass
            finally:
                with api._cond:
                    api._watch_sockets.discard(self.connection)

        def _stream(
            self,
            resource: str,
            namespace: str | None,
            name: str | None,
            since: int,
            timeout: float,
            bookmarks: bool,
            generation: int,
        ) -> None:
            deadline = time.monotonic() + timeout
            last_sent = time.monotonic()
            while True:
                with api._cond:
                    state = api._state
                    if api._generation != generation:
                        if since < state.oldest_rv - 1:
                            events: list[dict[str, Any]] = [
                                {
                                    "type": "ERROR",
                                    "object": status(410, "Expired", "too old resource version"),
                                }
                            ]
                            done = True
                        else:
                            self.close_connection = True
                            return  # dropped: no terminating chunk
                    else:
                        events = [
                            {"type": kind, "object": obj}
                            for rv, res, kind, obj in state.history
                            if rv > since and res == resource and _matches(obj, namespace, name)
                        ]
                        since = state.rv
                        done = False
                        if not events:
                            api._cond.wait(
                                min(BOOKMARK_INTERVAL_SECONDS, max(deadline - time.monotonic(), 0))
                            )
                for event in events:
                    self._chunk(event)
                    last_sent = time.monotonic()
                if done or time.monotonic() >= deadline:
                    self._end()
                    return
                if bookmarks and time.monotonic() - last_sent >= BOOKMARK_INTERVAL_SECONDS:
                    self._chunk(
                        {
                            "type": "BOOKMARK",
                            "object": {
                                "kind": KINDS[resource],
                                "apiVersion": "v1",
                                "metadata": {"resourceVersion": str(since)},
                            },
                        }
                    )
                    last_sent = time.monotonic()

        def _chunk(self, event: dict[str, Any]) -> None:
            data = orjson.dumps(event) + b"\n"
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

        def _end(self) -> None:
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()

    return Handler
