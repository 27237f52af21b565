"""The admission endpoint's HTTP envelope, served in process through httpx's ASGI transport.

Admissions through the real HTTPS server: tests/test_protocol.py, tests/test_tls.py, tests/hostile/."""

from __future__ import annotations

import base64
import copy
from collections.abc import Iterator
from typing import Any

import httpx
import jsonpatch
import orjson
import pytest

from tests.conftest import ROOT
from tests.support.admission import TEAMS_SERVICE_ACCOUNTS_FILE
from tests.support.inprocess import InProcessWebhook, serve_in_process

JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def webhook() -> Iterator[InProcessWebhook]:
    with serve_in_process(
        "--service-accounts-file", TEAMS_SERVICE_ACCOUNTS_FILE, "--aws-default-region", "eu-west-1"
    ) as running:
        yield running


@pytest.fixture()
def client(webhook: InProcessWebhook) -> Iterator[httpx.Client]:
    with webhook.client() as c:
        yield c


def review(
    namespace: str = "team-a",
    account: str = "app",
    api_version: str = "admission.k8s.io/v1",
    **pod_spec: Any,
) -> dict[str, Any]:
    return {
        "apiVersion": api_version,
        "kind": "AdmissionReview",
        "request": {
            "uid": "uid-1",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "namespace": namespace,
            "operation": "CREATE",
            "object": {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"generateName": "app-"},
                "spec": {
                    "serviceAccountName": account,
                    "containers": [{"name": "c", "image": "x"}],
                    **pod_spec,
                },
            },
        },
    }


def post(client: httpx.Client, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    return client.post("/mutate", content=content, headers=JSON if headers is None else headers)


def patch_of(answer: httpx.Response) -> list[dict[str, Any]]:
    ops: list[dict[str, Any]] = orjson.loads(base64.b64decode(answer.json()["response"]["patch"]))
    return ops


@pytest.mark.parametrize("api_version", ["admission.k8s.io/v1", "admission.k8s.io/v1beta1"])
def test_mutation_echoes_envelope_and_patch_applies_to_the_pod(
    client: httpx.Client, api_version: str
) -> None:
    body = review(api_version=api_version)
    answer = post(client, body)
    assert answer.status_code == 200
    data = answer.json()
    assert data["apiVersion"] == api_version
    assert data["kind"] == "AdmissionReview"
    assert data["response"]["uid"] == "uid-1"
    assert data["response"]["allowed"] is True
    assert data["response"]["patchType"] == "JSONPatch"
    mutated = jsonpatch.apply_patch(body["request"]["object"], patch_of(answer))
    env = {e["name"]: e["value"] for e in mutated["spec"]["containers"][0]["env"]}
    assert env["AWS_ROLE_ARN"] == "arn:aws:iam::111122223333:role/app"
    assert env["AWS_REGION"] == "eu-west-1"


def test_already_mutated_pod_gets_no_patch_key_at_all(client: httpx.Client) -> None:
    body = review()
    first = post(client, body)
    again = copy.deepcopy(body)
    again["request"]["object"] = jsonpatch.apply_patch(body["request"]["object"], patch_of(first))
    answer = post(client, again)
    assert answer.json() == {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": {"uid": "uid-1", "allowed": True},
    }


@pytest.mark.parametrize(
    ("namespace", "account"),
    [("team-b", "app"), ("team-a", "missing"), ("team-c", "app")],
    ids=["same-name-other-namespace-has-no-role", "unknown-account", "unknown-namespace"],
)
def test_pods_without_a_role_are_allowed_without_patch(
    client: httpx.Client, namespace: str, account: str
) -> None:
    answer = post(client, review(namespace, account))
    assert answer.status_code == 200
    assert answer.json()["response"] == {"uid": "uid-1", "allowed": True}


def test_misconfiguration_is_shown_to_the_user_as_warnings(client: httpx.Client) -> None:
    answer = post(client, review(account="bad"))
    warnings = answer.json()["response"]["warnings"]
    assert any("not a valid IAM role ARN" in w for w in warnings)
    assert any("token-expiration 'soon'" in w for w in warnings)


def test_a_half_wired_container_is_named_in_the_admission_warnings(client: httpx.Client) -> None:
    env = [{"name": "AWS_ROLE_ARN", "value": "arn:aws:iam::444455556666:role/other"}]
    body = review(
        containers=[{"name": "c", "image": "x"}, {"name": "own", "image": "x", "env": env}]
    )
    answer = post(client, body)
    assert answer.json()["response"]["allowed"] is True
    warnings = answer.json()["response"]["warnings"]
    assert [w for w in warnings if "'own'" in w] == [
        "container 'own' sets AWS_ROLE_ARN but not AWS_WEB_IDENTITY_TOKEN_FILE, and the webhook "
        "adds neither to it: remove AWS_ROLE_ARN or set both",
        "container 'own' sets its own AWS_ROLE_ARN arn:aws:iam::444455556666:role/other, not the "
        "ServiceAccount's arn:aws:iam::111122223333:role/app: remove it to use the "
        "ServiceAccount's role",
    ]
    assert not any("'c'" in w for w in warnings)


@pytest.mark.parametrize(
    ("request_kind", "operation"),
    [
        ({"group": "", "version": "v1", "kind": "ConfigMap"}, "CREATE"),
        ({"group": "apps", "version": "v1", "kind": "Deployment"}, "CREATE"),
        ({"group": "", "version": "v1", "kind": "Pod"}, "UPDATE"),
    ],
    ids=["configmap", "deployment", "pod-update"],
)
def test_requests_that_are_not_pod_creation_are_allowed_untouched(
    client: httpx.Client, request_kind: dict[str, str], operation: str
) -> None:
    body = review()
    body["request"]["kind"] = request_kind
    body["request"]["operation"] = operation
    answer = post(client, body)
    assert answer.status_code == 200
    assert answer.json()["response"] == {"uid": "uid-1", "allowed": True}


def _without(path: str) -> dict[str, Any]:
    body = review()
    parts = path.split(".")
    target = body
    for part in parts[:-1]:
        target = target[part]
    del target[parts[-1]]
    return body


def _with(path: str, value: Any) -> dict[str, Any]:
    body = review()
    parts = path.split(".")
    target = body
    for part in parts[:-1]:
        target = target[part]
    target[parts[-1]] = value
    return body


@pytest.mark.parametrize(
    ("body", "headers", "status", "message"),
    [
        (
            review(),
            {"Content-Type": "text/plain"},
            415,
            "Content-Type is not supported; expected application/json",
        ),
        (review(), {}, 415, "Content-Type is not supported; expected application/json"),
        (b"", JSON, 400, "empty body; expected an AdmissionReview"),
        (b"{not json", JSON, 400, "body is not valid JSON"),
        (b"[1, 2]", JSON, 400, "body is not a JSON object; expected an AdmissionReview"),
        (
            {"kind": "Pod", "apiVersion": "v1"},
            JSON,
            400,
            "body is not an AdmissionReview; expected kind AdmissionReview",
        ),
        (
            _without("request"),
            JSON,
            400,
            "request is missing; expected the AdmissionReview's request object",
        ),
        (_with("request", None), JSON, 400, "request is missing"),
        (_without("request.uid"), JSON, 400, "request.uid is missing; expected a string"),
        (_without("request.object"), JSON, 400, "request.object is missing; expected a Pod"),
        (_with("request.object", "pod"), JSON, 400, "request.object must be an object (a Pod)"),
        (
            _with("request.object.spec", None),
            JSON,
            400,
            "request.object.spec must be an object (the pod spec)",
        ),
        (
            _with("request.object.spec.containers", {"a": 1}),
            JSON,
            400,
            "request.object.spec.containers must be a list",
        ),
        (
            _with("request.object.spec.containers", [{"image": "x"}]),
            JSON,
            400,
            "request.object.spec.containers[0].name must be a string",
        ),
        (
            _with("request.object.metadata", {"annotations": {"a": 1}}),
            JSON,
            400,
            "request.object.metadata.annotations must be an object of strings",
        ),
        (_with("request.namespace", 7), JSON, 400, "request.namespace must be a string"),
    ],
    ids=[
        "wrong-content-type",
        "no-content-type",
        "empty",
        "not-json",
        "not-an-object",
        "not-a-review",
        "no-request",
        "null-request",
        "no-uid",
        "no-object",
        "object-not-object",
        "spec-null",
        "containers-not-list",
        "container-without-name",
        "annotation-not-string",
        "namespace-not-string",
    ],
)
def test_bad_input_gets_a_4xx_with_a_message(
    client: httpx.Client, body: Any, headers: dict[str, str], status: int, message: str
) -> None:
    answer = post(client, body, headers)
    assert answer.status_code == status
    data = answer.json()
    assert data["kind"] == "AdmissionReview"
    assert data["response"]["allowed"] is False
    assert data["response"]["status"]["code"] == status
    assert data["response"]["status"]["message"].startswith(message)
    assert "Traceback" not in answer.text


def test_error_answer_echoes_the_uid_when_it_can_be_read(client: httpx.Client) -> None:
    answer = post(client, _with("request.object.spec", None))
    assert answer.json()["response"]["uid"] == "uid-1"


def test_get_on_mutate_is_405(client: httpx.Client) -> None:
    answer = client.get("/mutate")
    assert answer.status_code == 405
    assert "POST an AdmissionReview" in answer.json()["response"]["status"]["message"]


def test_health_and_readiness_on_both_ports(
    webhook: InProcessWebhook, client: httpx.Client
) -> None:
    assert client.get("/healthz").text == "ok"
    assert client.get("/readyz").status_code == 200
    with webhook.metrics_client() as metrics:
        assert metrics.get("/healthz").text == "ok"
        assert metrics.get("/readyz").status_code == 200


def test_sample_bodies_from_shared_are_mutated() -> None:
    admission = ROOT.parent / "shared" / "admission"
    if not admission.is_dir():
        pytest.skip(f"sample bodies not found at {admission}")
    with (
        serve_in_process(
            "--service-accounts-file", str(admission / "serviceaccount.yaml")
        ) as running,
        running.client() as c,
    ):
        for name in ("small.json", "typical.json", "large.json"):
            body = (admission / name).read_bytes()
            answer = post(c, body)
            assert answer.status_code == 200, name
            pod = orjson.loads(body)["request"]["object"]
            mutated = jsonpatch.apply_patch(pod, patch_of(answer))
            for container in mutated["spec"]["containers"]:
                assert any(e["name"] == "AWS_ROLE_ARN" for e in container["env"]), name
