"""Objects the e2e cases create through the real API, and reading the stored pod back."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.e2e.controlplane import ControlPlane

ROLE = "arn:aws:iam::111122223333:role/e2e-reader"
TOKEN_DIR = "/var/run/secrets/eks.amazonaws.com/serviceaccount"
TOKEN_FILE = f"{TOKEN_DIR}/token"


def service_account(name: str, namespace: str, **annotations: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "annotations": {
                f"eks.amazonaws.com/{k.replace('_', '-')}": v for k, v in annotations.items()
            },
        },
    }


def pod(
    name: str,
    namespace: str,
    account: str,
    *,
    containers: list[dict[str, Any]] | None = None,
    init_containers: list[dict[str, Any]] | None = None,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": labels or {},
            "annotations": annotations or {},
        },
        "spec": {
            "serviceAccountName": account,
            "containers": containers or [{"name": "app", "image": "app:1"}],
            **spec,
        },
    }
    if init_containers:
        body["spec"]["initContainers"] = init_containers
    return body


def create(
    plane: ControlPlane, obj: dict[str, Any], *args: str, kubeconfig: Path | None = None
) -> str:
    """kubectl create; returns what kubectl printed on stderr (warnings)."""
    result = plane.kubectl("create", "-f", "-", *args, stdin=json.dumps(obj), kubeconfig=kubeconfig)
    return result.stderr


def stored_pod(
    plane: ControlPlane, namespace: str, name: str, *, kubeconfig: Path | None = None
) -> dict[str, Any]:
    text = plane.kubectl("get", "pod", name, "-n", namespace, "-o", "json", kubeconfig=kubeconfig)
    stored: dict[str, Any] = json.loads(text.stdout)
    return stored


def set_role(
    plane: ControlPlane,
    namespace: str,
    account: str,
    role: str | None,
    *,
    kubeconfig: Path | None = None,
) -> None:
    """Annotates the ServiceAccount with this role ARN, or removes the annotation (None)."""
    change = f"eks.amazonaws.com/role-arn={role}" if role else "eks.amazonaws.com/role-arn-"
    plane.kubectl(
        "annotate",
        "serviceaccount",
        account,
        "-n",
        namespace,
        change,
        "--overwrite",
        kubeconfig=kubeconfig,
    )


def new_pods(
    plane: ControlPlane,
    namespace: str,
    account: str,
    prefix: str,
    *,
    kubeconfig: Path | None = None,
) -> Callable[[], str | None]:
    """Each call creates one more pod of this ServiceAccount and returns the AWS_ROLE_ARN its
    first container was stored with (None when it got none)."""
    counter = iter(range(1000))

    def role_of_next_pod() -> str | None:
        name = f"{prefix}-{next(counter)}"
        create(plane, pod(name, namespace, account), kubeconfig=kubeconfig)
        stored = stored_pod(plane, namespace, name, kubeconfig=kubeconfig)
        role: str | None = env_of(stored["spec"]["containers"][0]).get("AWS_ROLE_ARN")
        return role

    return role_of_next_pod


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def mounts_of(container: dict[str, Any]) -> dict[str, str]:
    return {m["name"]: m["mountPath"] for m in container.get("volumeMounts", [])}


def volume(pod_object: dict[str, Any], name: str) -> dict[str, Any] | None:
    for candidate in pod_object["spec"].get("volumes", []):
        if candidate["name"] == name:
            found: dict[str, Any] = candidate
            return found
    return None


def token_source(pod_object: dict[str, Any], name: str = "aws-iam-token") -> dict[str, Any]:
    found = volume(pod_object, name)
    assert found is not None, (
        f"no volume {name} in {[v['name'] for v in pod_object['spec'].get('volumes', [])]}"
    )
    source: dict[str, Any] = found["projected"]["sources"][0]["serviceAccountToken"]
    return source


def eventually(check: Callable[[], Any], *, timeout: float = 20, every: float = 0.2) -> Any:
    """Calls `check` until it returns something truthy without raising AssertionError."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
            if result:
                return result
            error: AssertionError | None = None
        except AssertionError as failed:
            error = failed
        if time.monotonic() > deadline:
            if error is not None:
                raise error
            raise AssertionError(f"not true within {timeout} s: {check}")
        time.sleep(every)
