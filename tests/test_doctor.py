"""`pod-identity-webhook doctor`: each check fails alone on a world built with the `oidc` kit.

The world is a pod whose ServiceAccount has a role, the webhook's flags, a token minted and
signed like kube-apiserver's, the issuer's discovery document and JWKS, and the role's trust
policy as `oidc bundle` writes it. Every row breaks one thing and names the one check that fails.
"""

from __future__ import annotations

import copy
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import yaml

from webhook.cli import main
from webhook.doctor.issuer import Written, issuer_form_check
from webhook.doctor.report import Status
from webhook.oidc.discovery import Issuer, discovery_document
from webhook.oidc.jwks import key_set
from webhook.oidc.keys import SigningKey, b64url, parse_private_key
from webhook.oidc.subject import ServiceAccountSubject
from webhook.oidc.token import sign_token, token_claims
from webhook.oidc.trust import trust_policy

FIXTURES = Path(__file__).parent / "fixtures" / "oidc"
KEY = parse_private_key((FIXTURES / "k8s-rsa.key.pem").read_bytes(), source="rsa")
OTHER_KEY = parse_private_key((FIXTURES / "k8s-ecdsa.key.pem").read_bytes(), source="ecdsa")
ISSUER = "https://oidc.example.com/clusters/prod"
HOST_PATH = "oidc.example.com/clusters/prod"
ROLE = "arn:aws:iam::111122223333:role/checkout"
SUBJECT = ServiceAccountSubject("payments", "checkout")


@dataclass
class World:
    """Everything doctor reads, as Python values; `write` puts them in files and gives the argv."""

    issuer: str = ISSUER
    pod: dict[str, Any] = field(
        default_factory=lambda: {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "checkout-1", "namespace": "payments"},
            "spec": {
                "serviceAccountName": "checkout",
                "containers": [{"name": "app", "image": "app"}, {"name": "proxy", "image": "p"}],
            },
        }
    )
    service_account: dict[str, Any] = field(
        default_factory=lambda: {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {
                "name": "checkout",
                "namespace": "payments",
                "annotations": {"eks.amazonaws.com/role-arn": ROLE},
            },
        }
    )
    flags: list[str] = field(default_factory=lambda: ["--aws-default-region", "eu-west-1"])
    key: SigningKey = KEY
    claims: dict[str, Any] = field(default_factory=dict)
    discovery: dict[str, Any] = field(default_factory=dict)
    jwks: dict[str, Any] = field(default_factory=dict)
    policy: Any = None
    # written as `aws iam get-role` output naming this role; None: the bare policy document
    role: str | None = ROLE
    token: str = ""

    def __post_init__(self) -> None:
        issuer = Issuer(self.issuer)
        self.claims = token_claims(
            issuer=issuer,
            subject=SUBJECT,
            audiences=["sts.amazonaws.com"],
            expiration_seconds=3600,
            now=int(time.time()),
            uid="0d6c1a5e-3c8b-4a7e-9d0c-5f2a9b7e1c42",
            jti="jti",
        )
        self.discovery = discovery_document(issuer, [KEY.public_key()])
        self.jwks = key_set([KEY.public_key()])
        self.policy = trust_policy(
            issuer,
            account_id="111122223333",
            partition="aws",
            subject=str(SUBJECT),
            audience="sts.amazonaws.com",
        )

    def statement(self) -> dict[str, Any]:
        statement: dict[str, Any] = self.policy["Statement"][0]
        return statement

    def write(self, directory: Path) -> list[str]:
        token = self.token or sign_token(self.key, self.claims)
        policy = self.policy
        if self.role is not None and isinstance(policy, dict) and "Role" not in policy:
            policy = {
                "Role": {"RoleName": "x", "Arn": self.role, "AssumeRolePolicyDocument": policy}
            }
        files = {
            "pod.yaml": yaml.safe_dump_all([self.pod, self.service_account]),
            "token": token,
            "discovery.json": json.dumps(self.discovery),
            "keys.json": json.dumps(self.jwks),
            "trust.json": policy if isinstance(policy, str) else json.dumps(policy),
        }
        for name, text in files.items():
            (directory / name).write_text(text)
        return [
            "doctor",
            "-f",
            str(directory / "pod.yaml"),
            "--token",
            str(directory / "token"),
            "--discovery",
            str(directory / "discovery.json"),
            "--jwks",
            str(directory / "keys.json"),
            "--trust-policy",
            str(directory / "trust.json"),
            *self.flags,
        ]


def diagnose(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> tuple[int, dict[str, dict[str, str]]]:
    code = main([*world.write(tmp_path), "--output", "json"])
    report = json.loads(capsys.readouterr().out)
    return code, {check["name"]: check for check in report["checks"]}


def failures(checks: dict[str, dict[str, str]]) -> list[str]:
    return [name for name, check in checks.items() if check["status"] == "fail"]


def test_a_correct_setup_passes_every_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, checks = diagnose(World(), tmp_path, capsys)
    assert failures(checks) == []
    assert code == 0
    assert {name: check["status"] for name, check in checks.items()} == {
        "pod.serviceaccount": "pass",
        "pod.role-arn": "pass",
        "pod.containers": "pass",
        "sdk.region": "pass",
        "sdk.token-lifetime": "pass",
        "issuer.url": "pass",
        "issuer.discovery": "pass",
        "issuer.jwks-uri": "pass",
        "issuer.jwks": "pass",
        "token.iss": "pass",
        "token.aud": "pass",
        "token.sub": "pass",
        "token.exp": "pass",
        "token.alg": "pass",
        "token.kid": "pass",
        "token.signature": "pass",
        "trust.role": "pass",
        "trust.action": "pass",
        "trust.principal": "pass",
        "trust.sub": "pass",
        "trust.aud": "pass",
    }


def _annotate(world: World, key: str, value: str) -> None:
    world.service_account["metadata"]["annotations"][f"eks.amazonaws.com/{key}"] = value


def _sub_condition(world: World, operator: str, value: str) -> None:
    condition = world.statement()["Condition"]
    del condition["StringEquals"][f"{HOST_PATH}:sub"]
    condition.setdefault(operator, {})[f"{HOST_PATH}:sub"] = value


def _resign_with_header(world: World, header: dict[str, Any]) -> None:
    rest = sign_token(world.key, world.claims).partition(".")[2]
    world.token = b64url(json.dumps(header).encode()) + "." + rest


def _forged_jwks(world: World) -> None:
    entry = key_set([OTHER_KEY.public_key()])["keys"][0]
    entry["kid"] = world.jwks["keys"][0]["kid"]
    world.jwks = {"keys": [entry]}


def _expired(world: World) -> None:
    world.claims["exp"] = int(time.time()) - 60
    world.claims["iat"] = world.claims["nbf"] = int(time.time()) - 3660


# (id, change, the check that fails, words its summary or fix must contain)
BREAKAGES: list[tuple[str, Callable[[World], object], str, str]] = [
    (
        "serviceaccount-missing",
        lambda w: w.service_account["metadata"].update(name="other"),
        "pod.serviceaccount",
        "ServiceAccount payments/checkout not found",
    ),
    (
        "no-role-annotation",
        lambda w: w.service_account["metadata"].update(annotations={}),
        "pod.role-arn",
        "no eks.amazonaws.com/role-arn annotation",
    ),
    (
        "malformed-role-arn",
        lambda w: _annotate(w, "role-arn", "arn:aws:iam::1111:role/checkout"),
        "pod.role-arn",
        "not a valid IAM role ARN",
    ),
    (
        "every-container-skipped",
        lambda w: w.pod["metadata"].update(
            annotations={"eks.amazonaws.com/skip-containers": "app,proxy"}
        ),
        "pod.containers",
        "no container gets credentials",
    ),
    (
        "no-container-included",
        lambda w: w.pod["metadata"].update(
            annotations={"eks.amazonaws.com/include-containers": "ghost"}
        ),
        "pod.containers",
        "no container gets credentials (include-containers names 'ghost', which is not a "
        "container of this pod)",
    ),
    (
        "container-sets-its-own-role-without-token-file",
        lambda w: w.pod["spec"]["containers"][1].update(
            env=[{"name": "AWS_ROLE_ARN", "value": ROLE}]
        ),
        "pod.containers",
        "'proxy' sets AWS_ROLE_ARN but not AWS_WEB_IDENTITY_TOKEN_FILE",
    ),
    (
        "container-sets-another-role",
        lambda w: w.pod["spec"]["containers"][0].update(
            env=[
                {"name": "AWS_ROLE_ARN", "value": "arn:aws:iam::444455556666:role/other"},
                {"name": "AWS_WEB_IDENTITY_TOKEN_FILE", "value": "/t"},
            ]
        ),
        "pod.containers",
        "'app' sets its own AWS_ROLE_ARN arn:aws:iam::444455556666:role/other, not the "
        f"ServiceAccount's {ROLE}",
    ),
    ("no-region", lambda w: w.flags.clear(), "sdk.region", "no region"),
    (
        "aws-region-without-default-region",
        lambda w: (
            w.flags.clear(),  # type: ignore[func-returns-value]
            [
                c.update(env=[{"name": "AWS_REGION", "value": "eu-west-1"}])
                for c in w.pod["spec"]["containers"]
            ],
        ),
        "sdk.region",
        "botocore",
    ),
    (
        "jwks-uri-not-https",
        lambda w: w.discovery.update(jwks_uri="http://oidc.example.com/clusters/prod/keys.json"),
        "issuer.jwks-uri",
        "not HTTPS",
    ),
    (
        "jwks-uri-outside-issuer",
        lambda w: w.discovery.update(jwks_uri="https://elsewhere.example.com/keys.json"),
        "issuer.jwks-uri",
        "not under the issuer",
    ),
    ("jwks-empty", lambda w: w.jwks.update(keys=[]), "issuer.jwks", "no keys"),
    (
        "token-for-another-issuer",
        lambda w: w.claims.update(iss="https://oidc.example.com/clusters/dev"),
        "token.iss",
        "not the issuer",
    ),
    (
        "token-for-another-audience",
        lambda w: w.claims.update(aud=["vault"]),
        "token.aud",
        "not for the audience",
    ),
    (
        "token-of-another-serviceaccount",
        lambda w: w.claims.update(sub="system:serviceaccount:payments:other"),
        "token.sub",
        "another ServiceAccount",
    ),
    ("token-expired", _expired, "token.exp", "expired"),
    (
        "token-alg-sts-refuses",
        lambda w: _resign_with_header(w, {"alg": "HS256", "kid": w.jwks["keys"][0]["kid"]}),
        "token.alg",
        "does not accept",
    ),
    (
        "token-kid-not-published",
        lambda w: w.jwks.update(keys=key_set([OTHER_KEY.public_key()])["keys"]),
        "token.kid",
        "not in the published JWKS",
    ),
    ("token-signature-forged", _forged_jwks, "token.signature", "does not verify"),
    (
        "policy-of-another-role",
        lambda w: setattr(w, "role", "arn:aws:iam::444455556666:role/payments-other"),
        "trust.role",
        "this is the trust policy of arn:aws:iam::444455556666:role/payments-other, but the "
        f"pod assumes {ROLE}",
    ),
    (
        "provider-in-another-account",
        lambda w: w.statement().update(
            Principal={"Federated": f"arn:aws:iam::444455556666:oidc-provider/{HOST_PATH}"}
        ),
        "trust.principal",
        "is in account 444455556666, but the role is in account 111122223333",
    ),
    (
        "action-assume-role",
        lambda w: w.statement().update(Action="sts:AssumeRole"),
        "trust.action",
        "sts:AssumeRole is for IAM principals",
    ),
    (
        "principal-not-federated",
        lambda w: w.statement().update(Principal={"Service": "ec2.amazonaws.com"}),
        "trust.principal",
        "Principal is not Federated",
    ),
    (
        "provider-arn-with-https",
        lambda w: w.statement().update(
            Principal={"Federated": f"arn:aws:iam::111122223333:oidc-provider/https://{HOST_PATH}"}
        ),
        "issuer.url",
        "a URL scheme in the trust policy's provider (not in the discovery document's issuer "
        "and the token's iss)",
    ),
    (
        "provider-arn-trailing-slash",
        lambda w: w.statement().update(
            Principal={"Federated": f"arn:aws:iam::111122223333:oidc-provider/{HOST_PATH}/"}
        ),
        "issuer.url",
        "a trailing slash in the trust policy's provider (not in the discovery document's "
        "issuer and the token's iss)",
    ),
    (
        "provider-path-mismatch",
        lambda w: w.statement().update(
            Principal={"Federated": "arn:aws:iam::111122223333:oidc-provider/oidc.example.com"}
        ),
        "trust.principal",
        "names provider oidc.example.com, but the issuer is https://oidc.example.com/clusters/prod",
    ),
    (
        "wildcard-in-string-equals",
        lambda w: _sub_condition(w, "StringEquals", "system:serviceaccount:payments:*"),
        "trust.sub",
        "compares literally",
    ),
    (
        "sub-for-another-namespace",
        lambda w: _sub_condition(w, "StringEquals", "system:serviceaccount:billing:checkout"),
        "trust.sub",
        "names namespace billing; this pod's namespace is payments",
    ),
    (
        "sub-for-another-serviceaccount",
        lambda w: _sub_condition(w, "StringEquals", "system:serviceaccount:payments:web"),
        "trust.sub",
        "names ServiceAccount web; this pod's ServiceAccount is checkout",
    ),
    (
        "sub-key-without-the-issuer-path",
        lambda w: w.statement().update(
            Condition={
                "StringEquals": {
                    "oidc.example.com:sub": str(SUBJECT),
                    f"{HOST_PATH}:aud": "sts.amazonaws.com",
                }
            }
        ),
        "trust.sub",
        "condition key oidc.example.com:sub is not this provider's",
    ),
    (
        "aud-condition-for-another-audience",
        lambda w: w.statement()["Condition"]["StringEquals"].update(
            {f"{HOST_PATH}:aud": "sts.amazonaws.com.cn"}
        ),
        "trust.aud",
        "does not admit sts.amazonaws.com",
    ),
]


@pytest.mark.parametrize(
    ("change", "check", "words"),
    [row[1:] for row in BREAKAGES],
    ids=[row[0] for row in BREAKAGES],
)
def test_each_check_fails_alone(
    change: Callable[[World], object],
    check: str,
    words: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    world = World()
    change(world)
    code, checks = diagnose(world, tmp_path, capsys)
    assert failures(checks) == [check]
    assert code == 1
    found = checks[check]
    assert words in found["summary"] + " " + found["fix"]


def test_a_discovery_issuer_with_a_trailing_slash_is_named_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world = World()
    world.discovery["issuer"] = f"{ISSUER}/"
    code, checks = diagnose(world, tmp_path, capsys)
    assert (code, failures(checks)) == (1, ["issuer.url"])
    check = checks["issuer.url"]
    assert check["summary"].startswith(
        "a trailing slash in the discovery document's issuer (not in the token's iss and the "
        "trust policy's provider)"
    )
    assert check["fix"] == (
        f"write the issuer as {ISSUER} in the discovery document (oidc bundle --issuer {ISSUER})"
    )
    assert "see issuer.url" in checks["token.iss"]["summary"]


def test_a_trailing_slash_issuer_given_as_files_is_named_with_one_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world = World()  # the trust policy names the provider without the slash, as IAM does
    world.discovery["issuer"] = world.claims["iss"] = f"{ISSUER}/"
    code, checks = diagnose(world, tmp_path, capsys)
    assert (code, failures(checks)) == (1, ["issuer.url"])
    check = checks["issuer.url"]
    assert check["summary"].startswith(
        "a trailing slash in the discovery document's issuer and the token's iss (not in the "
        "trust policy's provider)"
    )
    assert check["expected"] == ISSUER
    assert check["fix"] == (
        f"write the issuer as {ISSUER} in the discovery document (oidc bundle --issuer "
        f"{ISSUER}); in kube-apiserver --service-account-issuer (new tokens then carry it)"
    )
    assert checks["trust.principal"]["status"] == "pass"


@pytest.mark.parametrize(
    ("places", "kind", "port_fix"),
    [
        ([("--issuer-url", f"{ISSUER}/")], "a trailing slash in --issuer-url", False),
        (
            [
                ("the token's iss", f"http://{HOST_PATH}"),
                ("the discovery document's issuer", ISSUER),
            ],
            "scheme http in the token's iss (not in the discovery document's issuer)",
            False,
        ),
        (
            [
                ("--issuer-url", "https://oidc.example.com:8443/clusters/prod"),
                ("the token's iss", ISSUER),
            ],
            "a port in --issuer-url (not in the token's iss)",
            True,
        ),
    ],
    ids=["slash", "scheme", "port"],
)
def test_a_form_difference_is_named_as_what_it_is(
    places: list[tuple[str, str]], kind: str, port_fix: bool
) -> None:
    check = issuer_form_check([Written(where, text) for where, text in places])
    assert check.status is Status.FAIL
    assert check.summary.startswith(kind)
    assert check.expected == ISSUER
    assert ("port 443" in check.fix) is port_fix


@pytest.mark.parametrize(
    ("operator", "value", "status"),
    [
        ("StringLike", "system:serviceaccount:payments:*", "pass"),
        ("StringLike", "system:serviceaccount:payments:check?ut", "pass"),
        ("StringLike", "system:serviceaccount:billing:*", "fail"),
        ("ForAnyValue:StringLike", "system:serviceaccount:payments:*", "pass"),
        ("StringEqualsIgnoreCase", "SYSTEM:serviceaccount:Payments:Checkout", "pass"),
        ("StringNotEquals", "system:serviceaccount:payments:checkout", "fail"),
        ("StringEqualsIfExists", "system:serviceaccount:payments:checkout", "pass"),
        ("ArnLike", "system:serviceaccount:payments:checkout", "not checked"),
        ("StringLike", "system:serviceaccount:${aws:username}:*", "not checked"),
    ],
)
def test_sub_conditions_follow_iam_semantics(
    operator: str, value: str, status: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world = World()
    _sub_condition(world, operator, value)
    code, checks = diagnose(world, tmp_path, capsys)
    assert checks["trust.sub"]["status"] == status
    assert code == (1 if status == "fail" else 0)


def test_several_statements_report_the_one_that_admits_the_pod(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world = World()
    wrong = copy.deepcopy(world.statement())
    wrong["Condition"]["StringEquals"][f"{HOST_PATH}:sub"] = "system:serviceaccount:a:b"
    world.policy["Statement"].insert(0, wrong)
    code, checks = diagnose(world, tmp_path, capsys)
    assert code == 0
    assert checks["trust.sub"]["summary"].startswith("Statement[1]: ")


@pytest.mark.parametrize(
    "shape",
    ["url-encoded", "get-role", "get-role-url-encoded", "single-statement-object"],
)
def test_trust_policy_is_read_in_the_shapes_iam_prints(
    shape: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world = World()
    document = world.policy
    if shape == "url-encoded":
        world.policy = quote(json.dumps(document))
    elif shape == "get-role":
        world.policy = json.dumps({"Role": {"RoleName": "x", "AssumeRolePolicyDocument": document}})
    elif shape == "get-role-url-encoded":
        encoded = quote(json.dumps(document))
        world.policy = json.dumps({"Role": {"AssumeRolePolicyDocument": encoded}})
    else:
        document["Statement"] = document["Statement"][0]
    code, checks = diagnose(world, tmp_path, capsys)
    assert code == 0
    assert checks["trust.sub"]["status"] == "pass"


def test_missing_inputs_are_not_checked_and_exit_zero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world = World()
    world.write(tmp_path)
    argv = ["doctor", "-f", str(tmp_path / "pod.yaml"), "-o", "json", *world.flags]
    assert main(argv) == 0
    checks = {c["name"]: c["status"] for c in json.loads(capsys.readouterr().out)["checks"]}
    assert [name for name, status in checks.items() if status == "not checked"] == [
        "issuer.url",
        "issuer.discovery",
        "issuer.jwks",
        "token",
        "trust",
    ]


def test_table_output_shows_seen_expected_and_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world = World()
    _sub_condition(world, "StringEquals", "system:serviceaccount:payments:*")
    assert main(world.write(tmp_path)) == 1
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if "trust.sub" in line)
    assert line.startswith("FAIL  trust.sub")
    assert "seen: sub = system:serviceaccount:payments:checkout" in out
    assert "fix: use StringLike for wildcards" in out
    assert out.rstrip().endswith("21 checks: 20 passed, 1 failed, 0 not checked")


def test_container_credentials_mode_skips_the_web_identity_checks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world = World()
    config = tmp_path / "cc.json"
    config.write_text(
        json.dumps({"identities": [{"namespace": "payments", "serviceAccount": "checkout"}]})
    )
    world.flags += ["--watch-container-credentials-config", str(config)]
    code, checks = diagnose(world, tmp_path, capsys)
    assert code == 0
    assert checks["trust"]["status"] == checks["token"]["status"] == "not checked"
    assert "EKS Pod Identity" in checks["trust"]["summary"]


@pytest.mark.parametrize(
    ("flag", "content", "message"),
    [
        ("--trust-policy", "{not json", "--trust-policy {}: not JSON"),
        (
            "--trust-policy",
            '{"Role": {}}',
            "--trust-policy {}: Role has no AssumeRolePolicyDocument",
        ),
        (
            "--trust-policy",
            '{"Version": "2012-10-17"}',
            "--trust-policy {}: expected a policy document with a Statement",
        ),
        (
            "--trust-policy",
            '{"Statement": [{"Effect": "Allow", "Condition": {"StringEquals": "x:sub"}}]}',
            "--trust-policy {}: Statement[0].Condition.StringEquals is not an object",
        ),
        ("--token", "not-a-token\n", "--token {}: not a signed JWT: 1 dot-separated parts"),
        ("--jwks", "[1]", "--jwks {}: expected a JWKS object"),
        ("--discovery", "nope", "--discovery {}: not JSON"),
    ],
)
def test_bad_input_is_one_line_naming_the_flag_and_exit_2(
    flag: str, content: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = World().write(tmp_path)
    bad = tmp_path / "bad"
    bad.write_text(content)
    argv[argv.index(flag) + 1] = str(bad)
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"pod-identity-webhook doctor: {message.format(bad)}")
    assert captured.err.count("\n") == 1


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--token", "/nonexistent/token"], "--token /nonexistent/token: no such file"),
        (["--issuer-url", "http://oidc.example.com"], "--issuer-url 'http://oidc.example.com'"),
        (["--issuer-ca-file", "/nonexistent/ca.pem", "--issuer-url", ISSUER], "--issuer-ca-file"),
    ],
)
def test_bad_flags_exit_2(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world = World()
    world.write(tmp_path)
    assert main(["doctor", "-f", str(tmp_path / "pod.yaml"), *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"pod-identity-webhook doctor: {message}")
    assert err.count("\n") == 1


def test_two_pods_in_one_file_is_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world = World()
    source = tmp_path / "pods.yaml"
    source.write_text(yaml.safe_dump_all([world.pod, world.pod]))
    assert main(["doctor", "-f", str(source)]) == 2
    assert "2 Pods or workloads; expected exactly one" in capsys.readouterr().err


def test_a_deployment_is_checked_through_its_pod_template(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world = World()
    pod = world.pod
    world.pod = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "checkout", "namespace": "payments"},
        "spec": {"template": {"metadata": {}, "spec": pod["spec"]}},
    }
    code, checks = diagnose(world, tmp_path, capsys)
    assert code == 0
    assert checks["token.sub"]["status"] == "pass"


def test_a_serviceaccount_read_from_no_source_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world = World()
    argv = world.write(tmp_path)
    (tmp_path / "pod.yaml").write_text(yaml.safe_dump(world.pod))  # the pod alone
    assert main([*argv, "-o", "json"]) == 1
    checks = {c["name"]: c for c in json.loads(capsys.readouterr().out)["checks"]}
    assert checks["pod.serviceaccount"]["status"] == "fail"
    assert "no source was given" in checks["pod.serviceaccount"]["summary"]
    assert "--service-accounts-file" in checks["pod.serviceaccount"]["fix"]


def test_a_bare_policy_document_says_its_role_was_not_checked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world = World(role=None)
    code, checks = diagnose(world, tmp_path, capsys)
    assert code == 0
    assert checks["trust.role"]["status"] == "not checked"
    assert "which role it belongs to was not checked" in checks["trust.role"]["summary"]
    assert "aws iam get-role --role-name checkout" in checks["trust.role"]["summary"]


def test_the_provider_account_is_compared_with_the_pods_role_without_get_role(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world = World(role=None)
    world.statement()["Principal"] = {
        "Federated": f"arn:aws:iam::444455556666:oidc-provider/{HOST_PATH}"
    }
    code, checks = diagnose(world, tmp_path, capsys)
    assert (code, failures(checks)) == (1, ["trust.principal"])
    assert checks["trust.principal"]["expected"] == (
        f"arn:aws:iam::111122223333:oidc-provider/{HOST_PATH}"
    )


def test_a_composed_role_arn_is_the_role_compared_with_get_role(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world = World()
    _annotate(world, "role-arn", "checkout")
    world.flags += ["--compose-role-arn", "--aws-account-id", "111122223333"]
    code, checks = diagnose(world, tmp_path, capsys)
    assert code == 0
    assert checks["trust.role"]["status"] == "pass"
    assert checks["trust.role"]["seen"] == ROLE


def test_the_table_pastes_into_a_ticket(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "60")  # narrow: every long value must still stay whole
    world = World()
    _annotate(world, "role-arn", "arn:aws:iam::111122223333:role/a-rather-long-role-name-here")
    world.role = "arn:aws:iam::111122223333:role/a-rather-long-role-name-here"
    argv = world.write(tmp_path)
    assert main(argv) == 0
    out = capsys.readouterr().out
    first = out.splitlines()[0]
    assert first.startswith(
        "pod-identity-webhook 0.1.0 doctor: Pod payments/checkout-1 (ServiceAccount checkout); "
        f"inputs: -f {tmp_path / 'pod.yaml'} --token {tmp_path / 'token'} --trust-policy "
    )
    assert first.endswith("--aws-default-region eu-west-1")
    words = out.split()
    assert str(tmp_path / "pod.yaml") in words  # a path longer than the line, not cut
    assert world.role in words
    assert re.search(
        r"token\.exp\s+valid\s+until\s+\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\s+\(in\s+(59|60)\s+min\)",
        out,
    )


def test_the_json_report_names_the_version_the_object_and_the_inputs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world = World()
    main([*world.write(tmp_path), "-o", "json"])
    report = json.loads(capsys.readouterr().out)
    assert report["version"] == "0.1.0"
    assert report["object"] == {
        "kind": "Pod",
        "namespace": "payments",
        "name": "checkout-1",
        "serviceAccount": "checkout",
    }
    assert report["inputs"][0] == {"flag": "-f", "value": str(tmp_path / "pod.yaml")}
    assert {"flag": "--aws-default-region", "value": "eu-west-1"} in report["inputs"]


def test_doctor_shows_the_containers_include_containers_leaves_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world = World()
    world.pod["metadata"]["annotations"] = {"eks.amazonaws.com/include-containers": "app"}
    code, checks = diagnose(world, tmp_path, capsys)
    assert code == 0
    assert checks["pod.containers"]["seen"] == (
        "wired: app; left alone: proxy (not in include-containers)"
    )
