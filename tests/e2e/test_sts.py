"""IRSA with no AWS account, through the real chain: kube-apiserver stores the pod the webhook
mutated with `--sts-endpoint-url`, its TokenRequest API issues the token, and boto3 and the AWS
CLI, run with the stored container's env and that token where its mount points, get
credentials from `pod-identity-webhook sts` (docs/kind-testing.md).

The local STS trusts the control plane's issuer with the documents `oidc discovery` and
`oidc jwks` make from its public key, and one role whose trust policy admits ServiceAccount
`reader` in any `e2e-*` namespace.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import deployed
from tests.e2e.controlplane import ControlPlane
from tests.e2e.objects import ROLE, create, env_of, pod, service_account, stored_pod
from tests.support.server import CertFiles, RunningWebhook
from tests.support.sts import CLIENTS, needs_aws_clients, run_client, running_sts

pytestmark = needs_aws_clients

ASSUMED = re.compile(r"arn:aws:sts::111122223333:assumed-role/e2e-reader/botocore-session-\d+")


def _oidc(*args: str) -> str:
    return subprocess.run(
        [sys.executable, "-m", "webhook", "oidc", *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout


@pytest.fixture(scope="module")
def sts_endpoint(plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("local-sts")
    discovery, jwks, roles = root / "openid-configuration", root / "keys.json", root / "roles"
    discovery.write_text(
        _oidc("discovery", "--issuer", plane.issuer, "--public-key", str(plane.public_key))
    )
    jwks.write_text(_oidc("jwks", "--public-key", str(plane.public_key)))
    provider = plane.issuer.removeprefix("https://")
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Federated": f"arn:aws:iam::111122223333:oidc-provider/{provider}"},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": {f"{provider}:aud": "sts.amazonaws.com"},
                    "StringLike": {f"{provider}:sub": "system:serviceaccount:e2e-*:reader"},
                },
            }
        ],
    }
    roles.mkdir()
    role = {"Role": {"RoleName": "e2e-reader", "Arn": ROLE, "AssumeRolePolicyDocument": policy}}
    (roles / "e2e-reader.json").write_text(json.dumps(role))
    with running_sts(
        root / "sts.log", "--discovery", str(discovery), "--jwks", str(jwks), "--roles", str(roles)
    ) as endpoint:
        yield endpoint


@pytest.fixture(scope="module")
def token_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("projected")


@pytest.fixture(scope="module")
def webhook(
    plane: ControlPlane,
    identity: None,
    base_manifests: list[dict[str, Any]],
    serving_certs: CertFiles,
    sts_endpoint: str,
    token_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RunningWebhook]:
    directory = tmp_path_factory.mktemp("webhook-sts")
    with deployed(
        plane,
        directory,
        base_manifests,
        serving_certs,
        f"--sts-endpoint-url={sts_endpoint}",
        "--aws-default-region=us-west-2",
        f"--token-mount-path={token_dir}",
    ) as running:
        yield running


def _token(plane: ControlPlane, namespace: str, account: str, audience: str) -> str:
    return plane.kubectl(
        "create", "token", account, "-n", namespace, f"--audience={audience}"
    ).stdout.strip()


def _stored_env(plane: ControlPlane, namespace: str) -> dict[str, str]:
    create(plane, service_account("reader", namespace, role_arn=ROLE))
    create(plane, pod("app", namespace, "reader"))
    env = env_of(stored_pod(plane, namespace, "app")["spec"]["containers"][0])
    return {name: value for name, value in env.items() if isinstance(value, str)}


@pytest.mark.parametrize("client", CLIENTS)
def test_a_pod_gets_credentials_from_the_local_sts_with_a_token_request_token(
    plane: ControlPlane,
    webhook: RunningWebhook,
    sts_endpoint: str,
    token_dir: Path,
    namespace: str,
    client: str,
    tmp_path: Path,
) -> None:
    env = _stored_env(plane, namespace)
    assert env["AWS_ENDPOINT_URL_STS"] == sts_endpoint
    assert env["AWS_WEB_IDENTITY_TOKEN_FILE"] == str(token_dir / "token")
    token = _token(plane, namespace, "reader", "sts.amazonaws.com")
    answer = run_client(client, env, token, tmp_path / "home")
    assert ASSUMED.fullmatch(answer["Arn"]), answer


@pytest.mark.parametrize(
    ("account", "audience", "code", "message"),
    [
        (
            "other",
            "sts.amazonaws.com",
            "AccessDenied",
            "trust.sub: StringLike on ",
        ),
        ("reader", "https://kubernetes.default.svc", "InvalidIdentityToken", "(token.aud:"),
    ],
    ids=["another-service-account", "wrong-audience"],
)
def test_a_token_request_token_sts_refuses_names_the_check(
    plane: ControlPlane,
    webhook: RunningWebhook,
    namespace: str,
    account: str,
    audience: str,
    code: str,
    message: str,
    tmp_path: Path,
) -> None:
    env = _stored_env(plane, namespace)
    if account != "reader":
        create(plane, service_account(account, namespace))
    token = _token(plane, namespace, account, audience)
    answer = run_client("boto3", env, token, tmp_path / "home")
    assert answer.get("code") == code, answer
    assert message in answer["error"]
