"""Real AWS clients against `pod-identity-webhook sts`, with exactly the env a mutated container
gets: boto3 and the AWS CLI get credentials through AssumeRoleWithWebIdentity, and
GetCallerIdentity names the assumed role; a token the trust policy or the provider refuses
gives the SDK's error with STS's code and the failed check.

The env comes from `mutate` (with --sts-endpoint-url at the local STS and --token-mount-path
in a temporary folder), and the token is written where its mount points, as kubelet would. The
keys are made by `oidc keygen`, the issuer's documents and the trust policy by `oidc bundle`.

boto3 and the AWS CLI run from build/aws-venv (tests/support/sts.py says why).
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.support.sts import CLIENTS, needs_aws_clients, run_client, running_sts
from webhook.cli import main
from webhook.oidc.discovery import Issuer
from webhook.oidc.keys import read_private_key
from webhook.oidc.subject import ServiceAccountSubject
from webhook.oidc.token import sign_token, token_claims

ISSUER = "https://oidc.kind.test/cluster"
ROLE = "arn:aws:iam::111122223333:role/app"
ASSUMED = re.compile(r"arn:aws:sts::111122223333:assumed-role/app/botocore-session-\d+")

pytestmark = needs_aws_clients


@dataclass
class World:
    root: Path
    endpoint: str
    private_key: Path
    other_key: Path

    def token(self, subject: str = "ns:app", audience: str = "sts.amazonaws.com") -> str:
        namespace, name = subject.split(":")
        self.run_cli(
            [
                "oidc",
                "token",
                "--private-key",
                str(self.private_key),
                "--issuer",
                ISSUER,
                "--subject",
                f"system:serviceaccount:{namespace}:{name}",
                "--audience",
                audience,
            ],
            self.root / "minted",
        )
        return (self.root / "minted").read_text()

    def run_cli(self, argv: list[str], out: Path) -> None:
        """The webhook's command line, in this process (its output is all that is kept)."""
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            assert main(argv) == 0
        out.write_text(printed.getvalue())

    def container_env(self, mount: Path) -> dict[str, str]:
        """The first container's env after the webhook's patch, as `mutate` prints it."""
        out = self.root / f"mutated-{mount.name}.yaml"
        self.run_cli(
            [
                "mutate",
                "-f",
                str(self.root / "pod.yaml"),
                "--sts-endpoint-url",
                self.endpoint,
                "--aws-default-region",
                "us-west-2",
                "--token-mount-path",
                str(mount),
            ],
            out,
        )
        pod = yaml.safe_load(out.read_text())
        return {e["name"]: e["value"] for e in pod["spec"]["containers"][0]["env"]}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("sts-clients")
    for name in ("keys", "other"):
        assert main(["oidc", "keygen", "--out", str(root / name)]) == 0
    bundle = root / "bundle"
    assert (
        main(
            [
                "oidc",
                "bundle",
                "--issuer",
                ISSUER,
                "--public-key",
                str(root / "keys" / "sa-signer.pub"),
                "--out",
                str(bundle),
                "--namespace",
                "ns",
                "--service-account",
                "app",
                "--account-id",
                "111122223333",
            ]
        )
        == 0
    )
    roles = root / "roles"
    roles.mkdir()
    policy = json.loads((bundle / "trust-policy.json").read_text())
    role = {"Role": {"RoleName": "app", "Arn": ROLE, "AssumeRolePolicyDocument": policy}}
    (roles / "app.json").write_text(json.dumps(role))
    documents = [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {
                "name": "app",
                "namespace": "ns",
                "annotations": {"eks.amazonaws.com/role-arn": ROLE},
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "app", "namespace": "ns"},
            "spec": {"serviceAccountName": "app", "containers": [{"name": "app", "image": "x"}]},
        },
    ]
    (root / "pod.yaml").write_text(yaml.safe_dump_all(documents))
    with running_sts(
        root / "sts.log",
        "--discovery",
        str(bundle / "site" / ".well-known" / "openid-configuration"),
        "--jwks",
        str(bundle / "site" / "keys.json"),
        "--roles",
        str(roles),
    ) as endpoint:
        yield World(
            root, endpoint, root / "keys" / "sa-signer.key", root / "other" / "sa-signer.key"
        )


def client_answer(world: World, token: str, client: str) -> dict[str, str]:
    """The client's answer with the env `mutate` gives the container (its token mount in a
    folder of this test's own)."""
    mount = world.root / f"mount-{client}-{time.monotonic_ns()}"
    env = world.container_env(mount)
    assert env["AWS_ENDPOINT_URL_STS"] == world.endpoint
    assert env["AWS_WEB_IDENTITY_TOKEN_FILE"] == str(mount / "token")
    return run_client(client, env, token, world.root / "home")


@pytest.mark.parametrize("client", CLIENTS)
def test_the_sdk_gets_credentials_and_get_caller_identity_names_the_assumed_role(
    world: World, client: str
) -> None:
    answer = client_answer(world, world.token(), client)
    assert ASSUMED.fullmatch(answer["Arn"]), answer
    assert answer["Account"] == "111122223333"
    assert answer["UserId"].startswith("AROA")


def _expired(world: World) -> str:
    now = int(time.time())
    claims = token_claims(
        issuer=Issuer(ISSUER),
        subject=ServiceAccountSubject("ns", "app"),
        audiences=["sts.amazonaws.com"],
        expiration_seconds=600,
        now=now - 1200,
        uid="uid",
        jti="jti",
    )
    return sign_token(read_private_key(world.private_key), claims)


def _other_key(world: World) -> str:
    return World(world.root, world.endpoint, world.other_key, world.other_key).token()


REFUSALS = [
    (
        "another-service-account",
        lambda w: w.token(subject="ns:other"),
        "AccessDenied",
        "trust.sub: the condition names ServiceAccount app; this pod's ServiceAccount is other",
    ),
    (
        "wrong-audience",
        lambda w: w.token(audience="https://kubernetes.default.svc"),
        "InvalidIdentityToken",
        "Incorrect token audience (token.aud:",
    ),
    ("expired", _expired, "ExpiredTokenException", "(token.exp: the token expired 10 min ago"),
    (
        "signed-by-another-key",
        _other_key,
        "InvalidIdentityToken",
        "(token.kid: the token's kid is not in the published JWKS",
    ),
]


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize(
    ("make_token", "code", "message"),
    [row[1:] for row in REFUSALS],
    ids=[row[0] for row in REFUSALS],
)
def test_the_sdk_error_carries_sts_code_and_names_the_check(
    world: World, client: str, make_token: object, code: str, message: str
) -> None:
    assert callable(make_token)
    answer = client_answer(world, make_token(world), client)
    assert answer.get("code") == code, answer
    assert "AssumeRoleWithWebIdentity" in answer["error"]
    assert message in answer["error"]
