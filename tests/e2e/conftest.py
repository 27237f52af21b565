"""Fixtures of the real-cluster suite (`make test-e2e`, docs/cluster.md "The real-cluster suite").

One control plane for the whole session. The webhook runs as the manifests deploy it
(tests/e2e/deployment.py); each module that needs other flags starts its own and registers
the webhook configuration again with its URL. On a failure the report carries the logs of
the control plane and of every webhook process the test used.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e import deployment
from tests.e2e.controlplane import ControlPlane, run_control_plane, versions
from tests.support.server import CertFiles, RunningWebhook, write_certs

_LOGS: dict[str, Any] = {"plane": None, "webhooks": [], "versions": {}}


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """The versions the suite ran against, at the end of every run that started the plane."""
    for name, version in _LOGS["versions"].items():
        terminalreporter.write_line(f"real control plane: {name}: {version}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if not report.failed or Path(__file__).parent not in Path(str(item.path)).parents:
        return
    plane: ControlPlane | None = _LOGS["plane"]
    if plane is not None:
        report.sections.append(("control plane logs", plane.logs(60)))
    for webhook in _LOGS["webhooks"]:
        with contextlib.suppress(OSError):
            tail = "\n".join(webhook.log().splitlines()[-60:])
            report.sections.append((f"webhook log {webhook.url}", tail))


@pytest.fixture(scope="session")
def plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    _LOGS["versions"] = versions()
    with run_control_plane(tmp_path_factory.mktemp("controlplane")) as running:
        _LOGS["plane"] = running
        yield running
        _LOGS["plane"] = None


@pytest.fixture(scope="session")
def base_manifests() -> list[dict[str, Any]]:
    return deployment.render()


@pytest.fixture(scope="session")
def serving_certs(tmp_path_factory: pytest.TempPathFactory) -> CertFiles:
    return write_certs(tmp_path_factory.mktemp("webhook-certs"))


@pytest.fixture(scope="session")
def identity(plane: ControlPlane, base_manifests: list[dict[str, Any]]) -> None:
    """The webhook's Namespace, ServiceAccount and RBAC, applied once as rendered."""
    deployment.apply_identity(plane, base_manifests)


@contextlib.contextmanager
def deployed(
    plane: ControlPlane,
    directory: Path,
    documents: list[dict[str, Any]],
    certs: CertFiles,
    *extra: str,
    files: dict[str, dict[str, str]] | None = None,
    server: str | None = None,
) -> Iterator[RunningWebhook]:
    """The webhook started from these manifests and their registration pointed at it."""
    with deployment.run_deployed_webhook(
        plane, directory, documents, certs, *extra, files=files, server=server
    ) as webhook:
        _LOGS["webhooks"].append(webhook)
        configuration = deployment.registration(documents, webhook.url, certs.ca)
        deployment.register(plane, configuration)
        try:
            yield webhook
        finally:
            _LOGS["webhooks"].remove(webhook)


@pytest.fixture
def namespace(plane: ControlPlane, request: pytest.FixtureRequest) -> Iterator[str]:
    """A namespace of this test's own, deleted after it (without waiting for it to go)."""
    name = (
        f"e2e-{request.node.name[:40].lower().replace('_', '-').strip('-')}-{uuid.uuid4().hex[:5]}"
    )
    name = "".join(c for c in name if c.isalnum() or c == "-")
    plane.kubectl("create", "namespace", name)
    yield name
    plane.kubectl("delete", "namespace", name, "--wait=false", check=False)
