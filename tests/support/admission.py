"""Send a pod through /mutate of a running webhook and read back the env it would get."""

from __future__ import annotations

import base64
import uuid
from pathlib import Path
from typing import Any

import httpx
import jsonpatch
import orjson


def review(namespace: str, service_account: str) -> dict[str, Any]:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": namespace},
        "spec": {
            "serviceAccountName": service_account,
            "containers": [{"name": "app", "image": "x"}],
        },
    }
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": str(uuid.uuid4()),
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": namespace,
            "operation": "CREATE",
            "object": pod,
        },
    }


def role_of(client: httpx.Client, namespace: str, service_account: str) -> str | None:
    """AWS_ROLE_ARN the webhook gives a pod running as this ServiceAccount; None if unmutated."""
    body = review(namespace, service_account)
    answer = client.post(
        "/mutate", content=orjson.dumps(body), headers={"Content-Type": "application/json"}
    )
    answer.raise_for_status()
    response = answer.json()["response"]
    if "patch" not in response:
        return None
    pod = jsonpatch.apply_patch(
        body["request"]["object"], orjson.loads(base64.b64decode(response["patch"]))
    )
    env = {e["name"]: e.get("value") for e in pod["spec"]["containers"][0].get("env", [])}
    role: str | None = env.get("AWS_ROLE_ARN")
    return role


# ServiceAccounts files the tests share (tests/fixtures/serviceaccounts/, each says what it holds).
SERVICE_ACCOUNT_FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "serviceaccounts"
APP_SERVICE_ACCOUNTS_FILE = str(SERVICE_ACCOUNT_FIXTURES / "app.yaml")  # team-a/app, with a role
TEAMS_SERVICE_ACCOUNTS_FILE = str(SERVICE_ACCOUNT_FIXTURES / "teams.yaml")
# `serve` flags for the servers that only need to mutate team-a/app
APP_FLAGS = ("--service-accounts-file", APP_SERVICE_ACCOUNTS_FILE)
