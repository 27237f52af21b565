"""IRSA through the real admission chain: kube-apiserver calls the webhook the base manifests
deploy, and each case reads the pod kube-apiserver stored.

The webhook runs with the base Deployment's args plus `--service-account-lookup-grace-period`
(off in the base, docs/cluster.md "Grace period"), which the ServiceAccount-then-pod case needs.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.e2e import deployment
from tests.e2e.conftest import deployed
from tests.e2e.controlplane import ControlPlane
from tests.e2e.objects import (
    ROLE,
    TOKEN_DIR,
    TOKEN_FILE,
    create,
    env_of,
    eventually,
    mounts_of,
    new_pods,
    pod,
    service_account,
    set_role,
    stored_pod,
    token_source,
)
from tests.support.server import CertFiles, RunningWebhook

GRACE = "--service-account-lookup-grace-period=2s"


@pytest.fixture(scope="module")
def webhook(
    plane: ControlPlane,
    identity: None,
    base_manifests: list[dict[str, Any]],
    serving_certs: CertFiles,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RunningWebhook]:
    directory = tmp_path_factory.mktemp("webhook-irsa")
    with deployed(plane, directory, base_manifests, serving_certs, GRACE) as running:
        yield running


def _offline_preview(documents: list[dict[str, Any]], args: list[str]) -> dict[str, Any]:
    """What `pod-identity-webhook mutate` says the webhook will do, with the same flags."""
    identity_flags = [
        a for a in args if a.split("=")[0] in ("--annotation-prefix", "--token-audience")
    ]
    result = subprocess.run(
        [sys.executable, "-m", "webhook", "mutate", "-f", "-", "-o", "json", *identity_flags],
        input=yaml.safe_dump_all(documents),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    preview: dict[str, Any] = json.loads(result.stdout)
    return preview


def test_pod_of_an_annotated_service_account_is_stored_with_the_identity(
    plane: ControlPlane,
    webhook: RunningWebhook,
    namespace: str,
    base_manifests: list[dict[str, Any]],
) -> None:
    account = service_account("reader", namespace, role_arn=ROLE)
    create(plane, account)
    submitted = pod(
        "app",
        namespace,
        "reader",
        containers=[{"name": "app", "image": "app:1"}, {"name": "logs", "image": "logs:1"}],
    )
    create(plane, submitted)
    stored = stored_pod(plane, namespace, "app")

    for container in stored["spec"]["containers"]:
        env = env_of(container)
        assert env["AWS_ROLE_ARN"] == ROLE, container["name"]
        assert env["AWS_WEB_IDENTITY_TOKEN_FILE"] == TOKEN_FILE
        assert "AWS_STS_REGIONAL_ENDPOINTS" not in env
        assert mounts_of(container)["aws-iam-token"] == TOKEN_DIR
        mount = next(m for m in container["volumeMounts"] if m["name"] == "aws-iam-token")
        assert mount["readOnly"] is True
    assert token_source(stored) == {
        "audience": "sts.amazonaws.com",
        "expirationSeconds": 86400,
        "path": "token",
    }
    # the ServiceAccount admission plugin's own token volume is left as it was
    assert any(v["name"].startswith("kube-api-access-") for v in stored["spec"]["volumes"])

    # the offline preview promised exactly this
    preview = _offline_preview([account, submitted], deployment.container_args(base_manifests))
    for previewed, real in zip(
        preview["spec"]["containers"], stored["spec"]["containers"], strict=True
    ):
        assert previewed["env"] == real["env"]
        assert mounts_of(previewed) == {
            k: v for k, v in mounts_of(real).items() if not k.startswith("kube-api-access-")
        }
    assert token_source(preview) == token_source(stored)


def test_service_account_annotations_and_the_pods_own(
    plane: ControlPlane, webhook: RunningWebhook, namespace: str
) -> None:
    create(
        plane,
        service_account(
            "tuned",
            namespace,
            role_arn=ROLE,
            audience="sts.example.test",
            sts_regional_endpoints="true",
            token_expiration="3600",
        ),
    )
    create(plane, pod("from-account", namespace, "tuned"))
    create(
        plane,
        pod(
            "from-pod",
            namespace,
            "tuned",
            annotations={"eks.amazonaws.com/token-expiration": "7200"},
        ),
    )
    by_account = stored_pod(plane, namespace, "from-account")
    assert token_source(by_account) == {
        "audience": "sts.example.test",
        "expirationSeconds": 3600,
        "path": "token",
    }
    assert env_of(by_account["spec"]["containers"][0])["AWS_STS_REGIONAL_ENDPOINTS"] == "regional"
    assert token_source(stored_pod(plane, namespace, "from-pod"))["expirationSeconds"] == 7200


def test_skip_containers_and_a_native_sidecar(
    plane: ControlPlane, webhook: RunningWebhook, namespace: str
) -> None:
    create(plane, service_account("reader", namespace, role_arn=ROLE))
    create(
        plane,
        pod(
            "mixed",
            namespace,
            "reader",
            containers=[{"name": "app", "image": "app:1"}, {"name": "metrics", "image": "m:1"}],
            init_containers=[
                {"name": "proxy", "image": "proxy:1", "restartPolicy": "Always"},
                {"name": "setup", "image": "setup:1"},
            ],
            annotations={"eks.amazonaws.com/skip-containers": "metrics,setup"},
        ),
    )
    stored = stored_pod(plane, namespace, "mixed")
    containers = {c["name"]: c for c in stored["spec"]["containers"]}
    inits = {c["name"]: c for c in stored["spec"]["initContainers"]}
    assert env_of(containers["app"])["AWS_ROLE_ARN"] == ROLE
    assert "AWS_ROLE_ARN" not in env_of(containers["metrics"])
    assert "aws-iam-token" not in mounts_of(containers["metrics"])
    assert "AWS_ROLE_ARN" not in env_of(inits["setup"])
    assert inits["proxy"]["restartPolicy"] == "Always"
    assert env_of(inits["proxy"])["AWS_ROLE_ARN"] == ROLE
    assert mounts_of(inits["proxy"])["aws-iam-token"] == TOKEN_DIR


def test_a_pod_that_already_has_everything_is_stored_unchanged(
    plane: ControlPlane, webhook: RunningWebhook, namespace: str
) -> None:
    create(plane, service_account("reader", namespace, role_arn=ROLE))
    env = [
        {"name": "AWS_ROLE_ARN", "value": ROLE},
        {"name": "AWS_WEB_IDENTITY_TOKEN_FILE", "value": TOKEN_FILE},
    ]
    mounts = [{"name": "aws-iam-token", "mountPath": TOKEN_DIR, "readOnly": True}]
    volume = {
        "name": "aws-iam-token",
        "projected": {
            "sources": [
                {
                    "serviceAccountToken": {
                        "audience": "sts.amazonaws.com",
                        "expirationSeconds": 86400,
                        "path": "token",
                    }
                }
            ]
        },
    }
    submitted = pod(
        "wired",
        namespace,
        "reader",
        containers=[{"name": "app", "image": "app:1", "env": env, "volumeMounts": mounts}],
        volumes=[volume],
    )
    # the same pod created where the webhook is not called, as the reference for what the
    # API server itself adds (defaults, the kube-api-access volume)
    reference = json.loads(json.dumps(submitted))
    reference["metadata"]["name"] = "reference"
    reference["metadata"]["labels"] = {"eks.amazonaws.com/skip-pod-identity-webhook": "true"}
    create(plane, submitted)
    create(plane, reference)
    stored, expected = (
        stored_pod(plane, namespace, "wired"),
        stored_pod(plane, namespace, "reference"),
    )

    def comparable(p: dict[str, Any]) -> dict[str, Any]:
        spec = json.loads(json.dumps(p["spec"]))
        for volume_ in spec["volumes"]:
            if volume_["name"].startswith("kube-api-access-"):
                volume_["name"] = "kube-api-access"
        for container in spec["containers"]:
            for mount in container["volumeMounts"]:
                if mount["name"].startswith("kube-api-access-"):
                    mount["name"] = "kube-api-access"
        return {"spec": spec, "annotations": p["metadata"].get("annotations", {})}

    assert comparable(stored) == comparable(expected)


def test_a_pod_created_right_after_its_service_account_is_mutated(
    plane: ControlPlane, webhook: RunningWebhook, namespace: str
) -> None:
    """No wait between the two: the watch event may come after the admission; the grace period
    and the webhook's GET of that one ServiceAccount from the real API cover it."""
    documents = [
        service_account("fresh", namespace, role_arn=ROLE),
        pod("fresh", namespace, "fresh"),
    ]
    plane.kubectl("create", "-f", "-", stdin=yaml.safe_dump_all(documents))
    stored = stored_pod(plane, namespace, "fresh")
    assert env_of(stored["spec"]["containers"][0])["AWS_ROLE_ARN"] == ROLE


def test_pods_follow_each_change_of_their_service_account(
    plane: ControlPlane, webhook: RunningWebhook, namespace: str
) -> None:
    other = "arn:aws:iam::111122223333:role/e2e-writer"
    create(plane, service_account("changing", namespace, role_arn=ROLE))
    role_of_next_pod = new_pods(plane, namespace, "changing", "p")
    assert role_of_next_pod() == ROLE
    set_role(plane, namespace, "changing", other)
    eventually(lambda: role_of_next_pod() == other)
    set_role(plane, namespace, "changing", None)
    eventually(lambda: role_of_next_pod() is None)

    # deleted: kube-apiserver's own ServiceAccount plugin refuses its pods; created again with
    # a role, its pods get that role and nothing left from before
    plane.kubectl("delete", "serviceaccount", "changing", "-n", namespace)
    refused = plane.kubectl(
        "create", "-f", "-", stdin=json.dumps(pod("orphan", namespace, "changing")), check=False
    )
    assert refused.returncode != 0 and "serviceaccount" in refused.stderr.lower()
    create(plane, service_account("changing", namespace, role_arn=other, token_expiration="7200"))
    name = "after-recreate"
    create(plane, pod(name, namespace, "changing"))
    stored = stored_pod(plane, namespace, name)
    assert env_of(stored["spec"]["containers"][0])["AWS_ROLE_ARN"] == other
    assert token_source(stored)["expirationSeconds"] == 7200


def test_reinvoked_after_a_second_webhook_adds_a_container(
    plane: ControlPlane, webhook: RunningWebhook, namespace: str, serving_certs: CertFiles
) -> None:
    create(plane, service_account("reader", namespace, role_arn=ROLE))
    with deployment.run_second_webhook(serving_certs) as second:
        configuration = deployment.second_registration(second.url, serving_certs.ca, namespace)
        deployment.register(plane, configuration)
        try:
            create(plane, pod("reinvoked", namespace, "reader"))
        finally:
            deployment.unregister(plane, configuration)
    stored = stored_pod(plane, namespace, "reinvoked")
    containers = {c["name"]: c for c in stored["spec"]["containers"]}
    added = containers[deployment.SecondWebhook.CONTAINER]
    assert env_of(added)["AWS_ROLE_ARN"] == ROLE
    assert mounts_of(added)["aws-iam-token"] == TOKEN_DIR
    assert env_of(containers["app"])["AWS_ROLE_ARN"] == ROLE
    assert len(second.calls) == 1


def test_admission_warnings_reach_kubectl(
    plane: ControlPlane, webhook: RunningWebhook, namespace: str
) -> None:
    create(plane, service_account("odd", namespace, role_arn=ROLE, token_expiration="1h"))
    stderr = create(plane, pod("warned", namespace, "odd"))
    warnings = [line for line in stderr.splitlines() if line.startswith("Warning:")]
    assert any("token-expiration" in line for line in warnings), stderr
    # the bad value is ignored: the default lifetime applies
    assert token_source(stored_pod(plane, namespace, "warned"))["expirationSeconds"] == 86400


def test_server_side_dry_run_stores_nothing_and_gets_the_same_mutation(
    plane: ControlPlane, webhook: RunningWebhook, namespace: str
) -> None:
    create(plane, service_account("reader", namespace, role_arn=ROLE))
    answer = plane.kubectl(
        "create",
        "-f",
        "-",
        "--dry-run=server",
        "-o",
        "json",
        stdin=json.dumps(pod("dry", namespace, "reader")),
    )
    dry = json.loads(answer.stdout)
    assert env_of(dry["spec"]["containers"][0])["AWS_ROLE_ARN"] == ROLE
    missing = plane.kubectl("get", "pod", "dry", "-n", namespace, check=False)
    assert missing.returncode != 0 and "NotFound" in missing.stderr
    create(plane, pod("dry", namespace, "reader"))
    real = stored_pod(plane, namespace, "dry")
    assert real["spec"]["containers"][0]["env"] == dry["spec"]["containers"][0]["env"]
    assert token_source(real) == token_source(dry)


def test_a_deployments_pods_are_mutated(
    plane: ControlPlane, webhook: RunningWebhook, namespace: str
) -> None:
    create(plane, service_account("reader", namespace, role_arn=ROLE))
    labels = {"app": "e2e-deployment"}
    plane.apply(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": namespace},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "serviceAccountName": "reader",
                        "containers": [{"name": "web", "image": "web:1"}],
                    },
                },
            },
        }
    )

    def pods() -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = plane.get_json(
            "pods", "-n", namespace, "-l", "app=e2e-deployment"
        )["items"]
        assert len(found) == 2, f"{len(found)} pods so far"
        return found

    for created in eventually(pods, timeout=60):
        assert created["metadata"]["generateName"].startswith("web-")
        assert env_of(created["spec"]["containers"][0])["AWS_ROLE_ARN"] == ROLE
        assert token_source(created)["audience"] == "sts.amazonaws.com"
