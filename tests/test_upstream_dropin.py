"""Upstream's container args start our server unchanged, through the console script with no
subcommand (the image's /webhook is the same entry point), and it answers /mutate.

Each arg list is copied from its source. Appended after it, as a later flag overrides an
earlier one in Go's flag package too: free ports instead of 443/8443/9999, our test
certificates instead of the mounted Secret at /etc/webhook/certs, and --kube-api for the fake
API server in place of the in-cluster service account config (no such files in a test).
"""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import socket
import ssl
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx
import jsonpatch
import orjson
import pytest

from tests.support.admission import review
from tests.support.fakeapi import FakeApiServer
from tests.support.server import CertFiles, RunningWebhook, run_webhook, write_certs
from tests.support.upstream import UPSTREAM_DEPLOY_BASE

# jkroepke/helm-charts charts/amazon-eks-pod-identity-webhook templates/deployment.yaml,
# rendered by hand with the chart's default values.yaml, release name
# "amazon-eks-pod-identity-webhook" (so the fullname is that name) and $(POD_NAMESPACE)
# expanded by the kubelet to "default".
CHART_DEFAULT_VALUES = [
    "/webhook",
    "--annotation-prefix=eks.amazonaws.com",
    "--aws-default-region=us-east-1",
    "--in-cluster=false",
    "--logtostderr",
    "--namespace=default",
    "--metrics-port=9999",
    "--port=8443",
    "--service-name=amazon-eks-pod-identity-webhook",
    "--sts-regional-endpoint=true",
    "--token-audience=sts.amazonaws.com",
    "--token-expiration=86400",
    "--token-mount-path=/var/run/secrets/eks.amazonaws.com/serviceaccount",
    "--tls-cert=/etc/webhook/certs/tls.crt",
    "--tls-key=/etc/webhook/certs/tls.key",
]

# kubernetes/kops upup/models/cloudup/resources/addons/eks-pod-identity-webhook.addons.k8s.io/
# k8s-1.16.yaml.template, with {{ Region }} rendered as eu-west-1
KOPS_ADDON = [
    "/webhook",
    "--in-cluster=false",
    "--namespace=kube-system",
    "--service-name=pod-identity-webhook",
    "--annotation-prefix=eks.amazonaws.com",
    "--token-audience=amazonaws.com",
    "--logtostderr",
    "--watch-config-map",
    "--sts-regional-endpoint",
    "--aws-default-region=eu-west-1",
    "--v=5",
]

ROLE = "arn:aws:iam::111122223333:role/app"
CONSOLE_SCRIPT = Path(sys.executable).parent / "pod-identity-webhook"


def upstream_webhook(
    tmp_path: Path,
    certs: CertFiles,
    command: list[str],
    api: FakeApiServer,
    *,
    run_as: list[str] = [],  # noqa: B006 - never mutated
) -> contextlib.AbstractContextManager[RunningWebhook]:
    assert command[0] == "/webhook"

    def command_line(port: int, metrics_port: int, certs: CertFiles) -> list[str]:
        overrides = [
            f"--port={port}",
            f"--metrics-port={metrics_port}",
            f"--tls-cert={certs.cert}",
            f"--tls-key={certs.key}",
            f"--kube-api={api.url}",
        ]
        return [*run_as, str(CONSOLE_SCRIPT), *command[1:], *overrides]

    return run_webhook(tmp_path, certs=certs, command_line=command_line)


def mutated_pod(webhook: RunningWebhook, namespace: str, account: str) -> dict[str, Any]:
    body = review(namespace, account)
    with webhook.client() as client:
        answer = client.post(
            "/mutate", content=orjson.dumps(body), headers={"Content-Type": "application/json"}
        )
    assert answer.status_code == 200
    response = answer.json()["response"]
    assert response["allowed"] is True and response["uid"] == body["request"]["uid"]
    patch = orjson.loads(base64.b64decode(response["patch"]))
    pod: dict[str, Any] = jsonpatch.apply_patch(body["request"]["object"], patch)
    return pod


@pytest.mark.parametrize(
    ("command", "audience", "expected_env"),
    [
        (UPSTREAM_DEPLOY_BASE, "sts.amazonaws.com", {}),
        (
            CHART_DEFAULT_VALUES,
            "sts.amazonaws.com",
            {
                "AWS_REGION": "us-east-1",
                "AWS_DEFAULT_REGION": "us-east-1",
                "AWS_STS_REGIONAL_ENDPOINTS": "regional",
            },
        ),
        (
            KOPS_ADDON,
            "amazonaws.com",
            {
                "AWS_REGION": "eu-west-1",
                "AWS_DEFAULT_REGION": "eu-west-1",
                "AWS_STS_REGIONAL_ENDPOINTS": "regional",
            },
        ),
    ],
    ids=["upstream-deploy-base", "community-chart-defaults", "kops-addon"],
)
def test_upstream_container_args_start_the_server_and_it_mutates(
    tmp_path: Path,
    cert_files: CertFiles,
    command: list[str],
    audience: str,
    expected_env: dict[str, str],
) -> None:
    with FakeApiServer() as api:
        api.put_service_account("team-a", "app", {"eks.amazonaws.com/role-arn": ROLE})
        with upstream_webhook(tmp_path, cert_files, command, api) as webhook:
            pod = mutated_pod(webhook, "team-a", "app")
            log = webhook.log()
    env = {e["name"]: e["value"] for e in pod["spec"]["containers"][0]["env"]}
    assert env["AWS_ROLE_ARN"] == ROLE
    assert env["AWS_WEB_IDENTITY_TOKEN_FILE"] == (
        "/var/run/secrets/eks.amazonaws.com/serviceaccount/token"
    )
    assert {name: env.get(name) for name in expected_env} == expected_env
    (volume,) = pod["spec"]["volumes"]
    assert volume["projected"]["sources"][0]["serviceAccountToken"]["audience"] == audience
    assert "Traceback" not in log


def test_community_chart_runs_as_its_security_context_user(tmp_path: Path) -> None:
    # values.yaml securityContext: runAsUser 65534, runAsGroup 1, capabilities dropped,
    # allowPrivilegeEscalation false; the chart's --port=8443 needs no privilege.
    setpriv = shutil.which("setpriv")
    if os.geteuid() != 0 or setpriv is None:
        pytest.skip("needs root and util-linux setpriv to drop to the chart's user")
    shared = Path(tempfile.mkdtemp(prefix="chart-certs-"))
    try:
        shared.chmod(0o755)
        certs = write_certs(shared)
        for path in (certs.ca, certs.cert, certs.key):
            path.chmod(0o644)
        run_as = [setpriv, "--reuid=65534", "--regid=1", "--clear-groups", "--no-new-privs"]
        with FakeApiServer() as api:
            api.put_service_account("team-a", "app", {"eks.amazonaws.com/role-arn": ROLE})
            with upstream_webhook(
                tmp_path, certs, CHART_DEFAULT_VALUES, api, run_as=run_as
            ) as webhook:
                pod = mutated_pod(webhook, "team-a", "app")
                status = Path(f"/proc/{webhook.process.pid}/status").read_text()
    finally:
        shutil.rmtree(shared)
    assert "\nUid:\t65534\t" in status and "\nCapEff:\t0000000000000000\n" in status
    env = {e["name"]: e["value"] for e in pod["spec"]["containers"][0]["env"]}
    assert (env["AWS_ROLE_ARN"], env["AWS_REGION"]) == (ROLE, "us-east-1")


def _has_ipv6_loopback() -> str:
    if not socket.has_ipv6:
        return "Python built without IPv6"
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError as exc:
        return f"no IPv6 loopback on this host: {exc}"
    return ""


def test_default_listening_answers_on_ipv4_and_ipv6_loopback(
    tmp_path: Path, cert_files: CertFiles
) -> None:
    reason = _has_ipv6_loopback()
    if reason:
        pytest.skip(reason)
    with FakeApiServer() as api:
        api.put_service_account("team-a", "app", {"eks.amazonaws.com/role-arn": ROLE})
        with upstream_webhook(tmp_path, cert_files, UPSTREAM_DEPLOY_BASE, api) as webhook:
            port = webhook.url.rsplit(":", 1)[1]
            metrics_port = webhook.metrics_url.rsplit(":", 1)[1]
            context = ssl.create_default_context(cafile=str(cert_files.ca))
            context.check_hostname = False  # the test certificate names 127.0.0.1 only
            for host in ("127.0.0.1", "[::1]"):
                assert httpx.get(f"http://{host}:{metrics_port}/healthz").status_code == 200
                with httpx.Client(base_url=f"https://{host}:{port}", verify=context) as client:
                    body = review("team-a", "app")
                    answer = client.post(
                        "/mutate",
                        content=orjson.dumps(body),
                        headers={"Content-Type": "application/json"},
                    )
                    assert answer.json()["response"]["patch"], host
            log = webhook.log()
    assert f"https://[::]:{port}" in log
