"""What kube-apiserver does when the webhook is not there, with the base registration
(`failurePolicy: Ignore`) and with the strict overlay's (`Fail`, opt-in label, kube-system
left out): docs/deploy.md and docs/production.md promise both."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.e2e import deployment
from tests.e2e.conftest import deployed
from tests.e2e.controlplane import ControlPlane
from tests.e2e.objects import ROLE, create, env_of, pod, service_account, stored_pod
from tests.support.server import CertFiles

pytestmark = pytest.mark.usefixtures("identity")
OPT_IN = {"eks.amazonaws.com/pod-identity-webhook": "enabled"}


def test_base_registration_lets_pods_in_unmutated_when_the_webhook_is_down(
    plane: ControlPlane,
    namespace: str,
    base_manifests: list[dict[str, Any]],
    serving_certs: CertFiles,
    tmp_path: Path,
) -> None:
    create(plane, service_account("reader", namespace, role_arn=ROLE))
    with deployed(plane, tmp_path, base_manifests, serving_certs):
        create(plane, pod("while-up", namespace, "reader"))
    # the registration still points at the stopped process
    create(plane, pod("while-down", namespace, "reader"))
    assert env_of(stored_pod(plane, namespace, "while-up")["spec"]["containers"][0])["AWS_ROLE_ARN"]
    assert "AWS_ROLE_ARN" not in env_of(
        stored_pod(plane, namespace, "while-down")["spec"]["containers"][0]
    )


def test_strict_registration_refuses_labelled_pods_when_the_webhook_is_down(
    plane: ControlPlane, namespace: str, serving_certs: CertFiles, tmp_path: Path
) -> None:
    documents = deployment.render("strict")
    webhook_name = deployment.only(documents, "MutatingWebhookConfiguration")["webhooks"][0]["name"]
    configuration = deployment.registration(documents, "https://127.0.0.1:1", serving_certs.ca)
    create(plane, service_account("reader", namespace, role_arn=ROLE))
    try:
        with deployed(plane, tmp_path, documents, serving_certs):
            create(plane, pod("labelled-up", namespace, "reader", labels=OPT_IN))
            create(plane, pod("unlabelled-up", namespace, "reader"))
        up = stored_pod(plane, namespace, "labelled-up")
        assert env_of(up["spec"]["containers"][0])["AWS_ROLE_ARN"] == ROLE
        # strict sends only labelled pods: the others are never mutated
        assert "AWS_ROLE_ARN" not in env_of(
            stored_pod(plane, namespace, "unlabelled-up")["spec"]["containers"][0]
        )

        refused = plane.kubectl(
            "create",
            "-f",
            "-",
            check=False,
            stdin=deployment.json_of(pod("labelled-down", namespace, "reader", labels=OPT_IN)),
        )
        assert refused.returncode != 0
        assert f'failed calling webhook "{webhook_name}"' in refused.stderr, refused.stderr

        # kube-system is left out, so the control plane's own pods can always be created
        system_pod = pod("e2e-system-pod", "kube-system", "default", labels=OPT_IN)
        create(plane, system_pod)
        plane.kubectl("delete", "pod", "e2e-system-pod", "-n", "kube-system", "--wait=false")
    finally:
        deployment.unregister(plane, configuration)
