"""The other sources of an identity through the real admission chain: EKS Pod Identity
(container credentials), the ConfigMap mode, and Fargate profiles with the fargate component's
own registration. Each case starts the webhook with its manifests and registers it again."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.e2e import deployment
from tests.e2e.conftest import deployed
from tests.e2e.controlplane import ControlPlane
from tests.e2e.objects import (
    ROLE,
    create,
    env_of,
    eventually,
    mounts_of,
    pod,
    service_account,
    stored_pod,
    token_source,
)
from tests.support.server import CertFiles

pytestmark = pytest.mark.usefixtures("identity")


def test_container_credentials_mode(
    plane: ControlPlane,
    namespace: str,
    base_manifests: list[dict[str, Any]],
    serving_certs: CertFiles,
    tmp_path: Path,
) -> None:
    config = tmp_path / "container-credentials.json"
    config.write_text(
        json.dumps({"identities": [{"namespace": namespace, "serviceAccount": "pod-identity"}]})
    )
    create(plane, service_account("pod-identity", namespace, role_arn=ROLE))
    create(plane, service_account("irsa", namespace, role_arn=ROLE))
    flag = f"--watch-container-credentials-config={config}"
    with deployed(plane, tmp_path, base_manifests, serving_certs, flag):
        create(plane, pod("listed", namespace, "pod-identity"))
        create(plane, pod("unlisted", namespace, "irsa"))
    listed = stored_pod(plane, namespace, "listed")
    env = env_of(listed["spec"]["containers"][0])
    assert env["AWS_CONTAINER_CREDENTIALS_FULL_URI"] == "http://169.254.170.23/v1/credentials"
    token_dir = "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount"
    assert env["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"] == f"{token_dir}/eks-pod-identity-token"
    assert "AWS_ROLE_ARN" not in env
    assert mounts_of(listed["spec"]["containers"][0])["eks-pod-identity-token"] == token_dir
    assert token_source(listed, "eks-pod-identity-token")["audience"] == "pods.eks.amazonaws.com"
    assert listed["metadata"]["labels"]["eks.amazonaws.com/pod-identity"] == "enabled"
    # a ServiceAccount not in the file keeps IRSA
    assert (
        env_of(stored_pod(plane, namespace, "unlisted")["spec"]["containers"][0])["AWS_ROLE_ARN"]
        == ROLE
    )


def test_config_map_mode(
    plane: ControlPlane,
    namespace: str,
    serving_certs: CertFiles,
    tmp_path: Path,
) -> None:
    # ConfigMap mode is the config-map component: its flag and the Role it brings
    documents = deployment.render("config-map")
    assert "--watch-config-map" in deployment.container_args(documents, tmp_path)
    deployment.apply_identity(plane, documents)
    other = "arn:aws:iam::111122223333:role/e2e-from-config-map"

    def config_map(mapping: dict[str, Any]) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "pod-identity-webhook", "namespace": deployment.NAMESPACE},
            "data": {"config": json.dumps(mapping)},
        }

    plane.apply(config_map({f"{namespace}/mapped": {"RoleARN": ROLE, "TokenExpiration": 3600}}))
    create(plane, service_account("mapped", namespace))
    counter = iter(range(100))

    def next_pod() -> dict[str, Any]:
        name = f"p{next(counter)}"
        create(plane, pod(name, namespace, "mapped"))
        return stored_pod(plane, namespace, name)

    try:
        with deployed(plane, tmp_path, documents, serving_certs):
            first = next_pod()
            assert env_of(first["spec"]["containers"][0])["AWS_ROLE_ARN"] == ROLE
            assert token_source(first)["expirationSeconds"] == 3600
            # the ConfigMap changed through the API: the next pods follow
            plane.apply(config_map({"*/mapped": {"RoleARN": other}}))
            eventually(
                lambda: env_of(next_pod()["spec"]["containers"][0]).get("AWS_ROLE_ARN") == other
            )
    finally:
        plane.kubectl(
            "delete",
            "configmap,role,rolebinding",
            "pod-identity-webhook",
            "-n",
            deployment.NAMESPACE,
            "--ignore-not-found",
        )


def test_fargate_profiles_with_the_components_registration(
    plane: ControlPlane, namespace: str, serving_certs: CertFiles, tmp_path: Path
) -> None:
    documents = deployment.render("fargate")
    profiles = (
        f"- name: e2e-profile\n  selectors:\n  - namespace: {namespace}\n"
        "    labels: {compute: fargate}\n"
    )
    config_map = next(
        d["metadata"]["name"]
        for d in documents
        if d["kind"] == "ConfigMap" and "fargate" in d["metadata"]["name"]
    )
    files = {config_map: {"profiles.yaml": profiles}}
    with deployed(plane, tmp_path, documents, serving_certs, files=files):
        create(plane, service_account("plain", namespace))
        create(plane, pod("on-fargate", namespace, "plain", labels={"compute": "fargate"}))
        create(plane, pod("on-nodes", namespace, "plain", labels={"compute": "ec2"}))
    matched = stored_pod(plane, namespace, "on-fargate")
    assert matched["spec"]["schedulerName"] == "fargate-scheduler"
    assert matched["metadata"]["labels"]["eks.amazonaws.com/fargate-profile"] == "e2e-profile"
    unmatched = stored_pod(plane, namespace, "on-nodes")
    assert unmatched["spec"]["schedulerName"] == "default-scheduler"
    assert "eks.amazonaws.com/fargate-profile" not in unmatched["metadata"]["labels"]
