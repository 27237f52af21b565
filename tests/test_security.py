"""Security properties: what a pod's author can and cannot make the webhook do, and where
/mutate is served."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import httpx
import jsonpatch
import orjson
import pytest

from tests.support.admission import TEAMS_SERVICE_ACCOUNTS_FILE, review
from tests.support.server import RunningWebhook, shared_webhook
from webhook.assembly.podmutator import PodMutator
from webhook.assembly.settingsmap import identity_defaults
from webhook.flags.settings import Settings
from webhook.mutation.answer import Outcome
from webhook.mutation.defaults import DEFAULT_TOKEN_AUDIENCE, DEFAULT_TOKEN_MOUNT_PATH
from webhook.sources.serviceaccounts.file import parse_service_accounts
from webhook.sources.serviceaccounts.store import ServiceAccountStore

ROLE = "arn:aws:iam::111122223333:role/app"
EVIL = "arn:aws:iam::999999999999:role/admin"
# every annotation a pod's author might try, under the prefix and a few look-alikes
HOSTILE_ANNOTATIONS = {
    f"{prefix}/{key}": value
    for prefix in ("eks.amazonaws.com", "pods.eks.amazonaws.com", "sts.amazonaws.com")
    for key, value in (
        ("role-arn", EVIL),
        ("audience", "evil.example"),
        ("token-audience", "evil.example"),
        ("mount-path", "/etc"),
        ("token-mount-path", "/etc"),
        ("token-path", "../../etc/passwd"),
        ("volume-name", "evil"),
    )
}


@pytest.fixture()
def mutator() -> PodMutator:
    settings = Settings()
    store = ServiceAccountStore()
    store.replace_all(
        parse_service_accounts(
            Path(TEAMS_SERVICE_ACCOUNTS_FILE).read_bytes(),
            identity_defaults(settings),
            source=TEAMS_SERVICE_ACCOUNTS_FILE,
        )
    )
    return PodMutator.from_settings(settings, store)


def _pod(account: str, **extra: Any) -> dict[str, Any]:
    pod: dict[str, Any] = copy.deepcopy(review("x", account)["request"]["object"])
    pod["metadata"].update(extra.pop("metadata", {}))
    pod["spec"].update(extra)
    return pod


def _mutated(mutator: PodMutator, pod: dict[str, Any], namespace: str) -> dict[str, Any]:
    result = mutator.mutate_now(pod, namespace)
    patched: dict[str, Any] = jsonpatch.apply_patch(pod, result.ops)
    return patched


def _env(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in container.get("env", [])}


def test_pod_annotations_cannot_choose_the_role_the_audience_or_the_mount_path(
    mutator: PodMutator,
) -> None:
    pod = _pod("app", metadata={"annotations": HOSTILE_ANNOTATIONS})
    patched = _mutated(mutator, pod, "team-a")
    assert _env(patched["spec"]["containers"][0])["AWS_ROLE_ARN"] == ROLE
    assert _env(patched["spec"]["containers"][0])["AWS_WEB_IDENTITY_TOKEN_FILE"] == (
        DEFAULT_TOKEN_MOUNT_PATH + "/token"
    )
    [volume] = patched["spec"]["volumes"]
    assert volume["name"] == "aws-iam-token"
    token = volume["projected"]["sources"][0]["serviceAccountToken"]
    assert token["audience"] == DEFAULT_TOKEN_AUDIENCE
    assert token["path"] == "token"
    assert patched["spec"]["containers"][0]["volumeMounts"] == [
        {"name": "aws-iam-token", "readOnly": True, "mountPath": DEFAULT_TOKEN_MOUNT_PATH}
    ]
    ops = orjson.dumps(mutator.mutate_now(pod, "team-a").ops).decode()
    assert "evil" not in ops
    assert EVIL not in ops
    assert "/etc" not in ops


def test_a_role_annotation_on_the_pod_does_not_give_a_roleless_serviceaccount_one(
    mutator: PodMutator,
) -> None:
    pod = _pod("plain", metadata={"annotations": HOSTILE_ANNOTATIONS})
    result = mutator.mutate_now(pod, "team-a")
    assert (result.ops, result.outcome) == ([], Outcome.NO_ROLE)


@pytest.mark.parametrize(
    ("namespace", "outcome"),
    [("team-b", Outcome.NO_ROLE), ("team-c", Outcome.NOT_FOUND), ("", Outcome.NOT_FOUND)],
    ids=["same-name-without-role", "absent-namespace", "empty-namespace"],
)
def test_a_same_name_serviceaccount_in_another_namespace_never_leaks_in(
    mutator: PodMutator, namespace: str, outcome: Outcome
) -> None:
    listed = frozenset({"team-a/app"})
    mutator = PodMutator.from_settings(
        Settings(), mutator.store, container_credentials_keys=lambda: listed
    )
    pod = _pod("app", metadata={"namespace": "team-a"})  # the pod's own claim is not trusted
    result = mutator.mutate_now(pod, namespace)
    assert (result.ops, result.outcome) == ([], outcome)


@pytest.mark.parametrize(
    "skip",
    ["app", "app,sidecar", '"app",sidecar', "*", "app,app", " app "],
)
def test_skip_containers_cannot_remove_or_change_variables_a_user_set(
    mutator: PodMutator, skip: str
) -> None:
    user_env = [
        {"name": "AWS_ROLE_ARN", "value": "mine"},
        {"name": "AWS_REGION", "value": "eu-north-1"},
        {"name": "AWS_WEB_IDENTITY_TOKEN_FILE", "value": "/mine"},
    ]
    pod = _pod(
        "app",
        metadata={"annotations": {"eks.amazonaws.com/skip-containers": skip}},
        containers=[
            {"name": "app", "image": "x", "env": copy.deepcopy(user_env)},
            {"name": "sidecar", "image": "y", "env": copy.deepcopy(user_env)},
        ],
        initContainers=[{"name": "init", "image": "z", "env": copy.deepcopy(user_env)}],
    )
    result = mutator.mutate_now(pod, "team-a")
    assert {op["op"] for op in result.ops} <= {"add"}
    patched = jsonpatch.apply_patch(pod, result.ops)
    for container in patched["spec"]["containers"] + patched["spec"]["initContainers"]:
        assert container["env"][: len(user_env)] == user_env
        assert _env(container)["AWS_ROLE_ARN"] == "mine"


# -- where /mutate is served --------------------------------------------------------------


webhook = shared_webhook("--service-accounts-file", TEAMS_SERVICE_ACCOUNTS_FILE)


def test_plain_http_to_the_webhook_port_gets_no_admission_answer(webhook: RunningWebhook) -> None:
    plain = webhook.url.replace("https://", "http://")
    body = orjson.dumps(review("team-a", "app"))
    with pytest.raises(httpx.HTTPError):
        httpx.post(plain + "/mutate", content=body, headers={"Content-Type": "application/json"})


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_the_plain_http_metrics_port_does_not_serve_mutate(
    webhook: RunningWebhook, method: str
) -> None:
    body = orjson.dumps(review("team-a", "app"))
    answer = httpx.request(
        method,
        webhook.metrics_url + "/mutate",
        content=body,
        headers={"Content-Type": "application/json"},
    )
    assert answer.status_code in (404, 405)
    assert "AdmissionReview" not in answer.text
    with webhook.client() as client:  # while over TLS it is served
        assert (
            client.post(
                "/mutate", content=body, headers={"Content-Type": "application/json"}
            ).status_code
            == 200
        )
