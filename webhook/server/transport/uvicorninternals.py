"""The parts of uvicorn the bounded server uses beyond uvicorn's public API, checked at start-up.

The one-write protocol (coalescingprotocol.py), the bounded protocol (boundedprotocol.py), the acceptor
(acceptor.py) and the bounded server (boundedservers.py) subclass uvicorn's httptools protocol
and server and read their attributes. pyproject.toml bounds uvicorn to the versions the tests ran
against; this check catches an install outside that bound (or a patched uvicorn) before a
connection is served. When something is missing, the runner serves through uvicorn's own
protocol and server instead (docs/performance.md, "uvicorn's internals").

An attribute uvicorn sets on its instances is looked for by name in the code of the method
that sets it: nothing is constructed or imported beyond the modules, so the check has no side
effects and runs against stand-in modules in the tests.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass

HTTPTOOLS = "uvicorn.protocols.http.httptools_impl"
FLOW_CONTROL = "uvicorn.protocols.http.flow_control"
SERVER = "uvicorn.server"
CONFIG = "uvicorn.config"
LIFESPAN_OFF = "uvicorn.lifespan.off"


@dataclass(frozen=True, slots=True)
class Uses:
    """What the webhook uses of one uvicorn class: `members` it calls or overrides, the
    `parameters` of `method`, and `names` that `method`'s code must mention (the attributes
    it sets on the instance, or the methods it calls that the webhook overrides)."""

    module: str
    cls: str
    members: tuple[str, ...] = ()
    method: str = "__init__"
    parameters: tuple[str, ...] = ()
    names: tuple[str, ...] = ()


USES = (
    Uses(
        HTTPTOOLS,
        "HttpToolsProtocol",
        members=(
            "connection_made",
            "connection_lost",
            "data_received",
            "on_message_begin",
            "on_url",
            "on_header",
            "on_headers_complete",
            "on_message_complete",
            "on_response_complete",
            "shutdown",
            "send_400_response",
            "_unset_keepalive_if_required",
            "_unsupported_upgrade_warning",
            "_start_asgi_task",
        ),
        parameters=("config", "server_state", "app_state", "_loop"),
        names=(
            "cycle",
            "tasks",
            "connections",
            "pipeline",
            "flow",
            "parser",
            "headers",
            "transport",
            "loop",
            "logger",
        ),
    ),
    # the gate starts every request: a first one when its headers are complete, a pipelined
    # one when the response before it is
    Uses(HTTPTOOLS, "HttpToolsProtocol", method="on_headers_complete", names=("_start_asgi_task",)),
    Uses(
        HTTPTOOLS, "HttpToolsProtocol", method="on_response_complete", names=("_start_asgi_task",)
    ),
    # the acceptor's sweep walks the server's connections, which a protocol joins here
    Uses(HTTPTOOLS, "HttpToolsProtocol", method="connection_made", names=("connections",)),
    Uses(
        HTTPTOOLS,
        "RequestResponseCycle",
        members=("run_asgi",),
        names=("response_started", "response_complete", "more_body"),
    ),
    Uses(
        FLOW_CONTROL,
        "FlowControl",
        members=("pause_reading", "resume_reading"),
        parameters=("transport",),
    ),
    Uses(SERVER, "ServerState", names=("connections", "tasks")),
    Uses(
        SERVER,
        "Server",
        members=("capture_signals", "startup", "shutdown"),
        names=("config", "server_state", "started"),
    ),
    Uses(SERVER, "Server", method="startup", parameters=("sockets",)),
    Uses(SERVER, "Server", method="_serve", names=("lifespan", "startup")),
    Uses(SERVER, "Server", method="shutdown", names=("servers",)),
    Uses(CONFIG, "Config", members=("load",), names=("loaded",)),
    Uses(LIFESPAN_OFF, "LifespanOff", names=("state",)),
)


def _import(name: str) -> object | None:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def missing_internals(
    modules: Mapping[str, object] | Callable[[str], object | None] = _import,
) -> list[str]:
    """The uvicorn internals in USES that are not there, each named ("uvicorn.server.Server.
    capture_signals", "uvicorn....HttpToolsProtocol.__init__ uses cycle"); empty when all are.
    `modules` gives each module by name (a mapping of stand-ins in the tests)."""
    find = modules.get if isinstance(modules, Mapping) else modules
    missing: list[str] = []
    for use in USES:
        module = find(use.module)
        if module is None:
            missing.append(f"{use.module} (module)")
            continue
        where = f"{use.module}.{use.cls}"
        cls = getattr(module, use.cls, None)
        if not isinstance(cls, type):
            missing.append(where)
            continue
        missing += [f"{where}.{name}" for name in use.members if not hasattr(cls, name)]
        if not use.parameters and not use.names:
            continue
        method = getattr(cls, use.method, None)
        if not callable(method):
            missing.append(f"{where}.{use.method}")
            continue
        missing += _missing_parameters(method, use.parameters, f"{where}.{use.method}")
        code = getattr(method, "__code__", None)
        mentioned = code.co_names if code is not None else ()
        missing += [
            f"{where}.{use.method} uses {name}" for name in use.names if name not in mentioned
        ]
    return list(dict.fromkeys(missing))  # a missing module is named once


def _missing_parameters(
    method: Callable[..., object], wanted: tuple[str, ...], where: str
) -> list[str]:
    if not wanted:
        return []
    try:
        parameters = set(inspect.signature(method).parameters)
    except (TypeError, ValueError):  # no signature to read: none of them is known to be there
        parameters = set()
    return [f"{where} parameter {name}" for name in wanted if name not in parameters]
