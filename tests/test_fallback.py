"""The uvicorn fence: the check that names the internals the bounded server uses, and the real
server serving through uvicorn's own protocol and server when one is missing."""

from __future__ import annotations

import importlib
import signal
import sys
import types
from pathlib import Path
from typing import Any

import orjson
import pytest
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle
from uvicorn.server import Server

from tests.conftest import ROOT
from tests.support.admission import APP_SERVICE_ACCOUNTS_FILE, review
from tests.support.server import CertFiles, run_webhook
from tests.support.serverlog import assert_each_server_named_once_per_event
from webhook.server.transport.uvicorninternals import (
    FLOW_CONTROL,
    HTTPTOOLS,
    SERVER,
    USES,
    missing_internals,
)


def _installed() -> dict[str, Any]:
    return {use.module: importlib.import_module(use.module) for use in USES}


def _replacing(module: str, **attributes: Any) -> dict[str, Any]:
    """The installed modules, with `module` a stand-in whose `attributes` are replaced."""
    modules = _installed()
    modules[module] = types.SimpleNamespace(**{**vars(modules[module]), **attributes})
    return modules


def _without(cls: type, member: str) -> type:
    namespace = {
        name: value
        for name, value in vars(cls).items()
        if name not in (member, "__dict__", "__weakref__")
    }
    return type(cls.__name__, (), namespace)


class _CycleWithRenamedState(RequestResponseCycle):
    def __init__(self) -> None:
        self.response_begun = False
        self.response_complete = False
        self.more_body = True


class _ServerTakingListeners(Server):
    async def startup(self, listeners: Any = None) -> None:
        pass


class _ProtocolStartingTasksItself(HttpToolsProtocol):
    def on_headers_complete(self) -> None:
        self.loop.create_task(self.cycle.run_asgi(self.app))


def test_the_installed_uvicorn_has_every_internal_the_server_uses() -> None:
    assert missing_internals() == []


@pytest.mark.parametrize(
    ("modules", "expected"),
    [
        (
            {name: m for name, m in _installed().items() if name != FLOW_CONTROL},
            [f"{FLOW_CONTROL} (module)"],
        ),
        (
            _replacing(SERVER, Server=_without(Server, "capture_signals")),
            [f"{SERVER}.Server.capture_signals"],
        ),
        (
            _replacing(HTTPTOOLS, RequestResponseCycle=_CycleWithRenamedState),
            [f"{HTTPTOOLS}.RequestResponseCycle.__init__ uses response_started"],
        ),
        (
            _replacing(SERVER, Server=_ServerTakingListeners),
            [f"{SERVER}.Server.startup parameter sockets"],
        ),
        (
            _replacing(HTTPTOOLS, HttpToolsProtocol=_ProtocolStartingTasksItself),
            [f"{HTTPTOOLS}.HttpToolsProtocol.on_headers_complete uses _start_asgi_task"],
        ),
        (
            _replacing(HTTPTOOLS, RequestResponseCycle=None),
            [f"{HTTPTOOLS}.RequestResponseCycle"],
        ),
    ],
    ids=[
        "module gone",
        "method gone",
        "attribute no longer set",
        "parameter renamed",
        "overridden hook no longer called",
        "class gone",
    ],
)
def test_the_check_names_each_missing_internal(
    modules: dict[str, Any], expected: list[str]
) -> None:
    assert missing_internals(modules) == expected


def test_the_server_falls_back_to_uvicorns_own_protocol_with_one_warning(
    tmp_path: Path, cert_files: CertFiles
) -> None:
    accounts = APP_SERVICE_ACCOUNTS_FILE

    def command(port: int, metrics_port: int, certs: CertFiles) -> list[str]:
        return [
            sys.executable,
            "-m",
            "tests.support.fallback",
            "--bind-address=127.0.0.1",
            f"--port={port}",
            f"--metrics-port={metrics_port}",
            f"--tls-cert={certs.cert}",
            f"--tls-key={certs.key}",
            f"--service-accounts-file={accounts}",
        ]

    with run_webhook(
        tmp_path, certs=cert_files, command_line=command, env={"PYTHONPATH": str(ROOT)}
    ) as webhook:
        with webhook.client() as client:
            answers = [
                client.post(
                    "/mutate",
                    content=orjson.dumps(review("team-a", "app")),
                    headers={"Content-Type": "application/json"},
                )
                for _ in range(3)
            ]
        code = webhook.stop(signal.SIGTERM)
    assert [answer.status_code for answer in answers] == [200] * 3
    assert all(answer.json()["response"]["patchType"] == "JSONPatch" for answer in answers)
    log = webhook.log()
    warnings = [line for line in log.splitlines() if "uvicorn's own protocol" in line]
    assert len(warnings) == 1, log
    assert f"{HTTPTOOLS}.RequestResponseCycle" in warnings[0]
    # the runner's handler, not uvicorn's per-server ones, took the signal: it is seen once
    assert log.count("received SIGTERM: finishing in-flight requests") == 1
    # uvicorn's own server too: its start and stop lines name the server, once each
    assert_each_server_named_once_per_event(log, webhook.url, webhook.metrics_url)
    assert code == 0
