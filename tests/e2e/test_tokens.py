"""Self-hosted IRSA for real: tokens the API server issues with a key from `oidc keygen` verify
against what `oidc jwks` and `oidc discovery` publish (docs/self-hosted.md, docs/oidc.md)."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.e2e.controlplane import ControlPlane, kubeconfig
from tests.e2e.objects import ROLE, create, pod, service_account


def _b64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _oidc(*args: str) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-m", "webhook", "oidc", *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def test_a_token_request_token_verifies_against_oidc_jwks(
    plane: ControlPlane, namespace: str
) -> None:
    create(plane, service_account("reader", namespace, role_arn=ROLE))
    token = plane.kubectl(
        "create", "token", "reader", "-n", namespace, "--audience=sts.amazonaws.com"
    ).stdout.strip()
    header_part, claims_part, signature_part = token.split(".")
    header, claims = json.loads(_b64(header_part)), json.loads(_b64(claims_part))
    assert claims["iss"] == plane.issuer
    assert claims["aud"] == ["sts.amazonaws.com"]
    assert claims["sub"] == f"system:serviceaccount:{namespace}:reader"

    jwks = _oidc("jwks", "--public-key", str(plane.public_key))
    keys = {key["kid"]: key for key in jwks["keys"]}
    assert header["kid"] in keys, (header, list(keys))
    key = keys[header["kid"]]
    assert header["alg"] == key["alg"] == "RS256"
    public = rsa.RSAPublicNumbers(
        int.from_bytes(_b64(key["e"]), "big"), int.from_bytes(_b64(key["n"]), "big")
    ).public_key()
    # raises InvalidSignature when the token was not signed by this key
    public.verify(
        _b64(signature_part),
        f"{header_part}.{claims_part}".encode(),
        padding.PKCS1v15(),
        hashes.SHA256(),
    )


def test_the_apiservers_discovery_and_jwks_agree_with_oidc(plane: ControlPlane) -> None:
    code, body = plane.get("/.well-known/openid-configuration")
    assert code == 200
    served = json.loads(body)
    ours = _oidc("discovery", "--issuer", plane.issuer, "--public-key", str(plane.public_key))
    assert served["issuer"] == ours["issuer"] == plane.issuer
    for field in (
        "response_types_supported",
        "subject_types_supported",
        "id_token_signing_alg_values_supported",
    ):
        assert served[field] == ours[field], field
    # the API server points jwks_uri at itself; ours at the public issuer
    assert ours["jwks_uri"] == f"{plane.issuer}/keys.json"

    code, body = plane.get("/openid/v1/jwks")
    assert code == 200
    served_keys = {k["kid"]: k for k in json.loads(body)["keys"]}
    our_keys = {k["kid"]: k for k in _oidc("jwks", "--public-key", str(plane.public_key))["keys"]}
    assert served_keys.keys() == our_keys.keys()
    for kid, key in served_keys.items():
        for field in ("kty", "alg", "use", "n", "e"):
            assert key[field] == our_keys[kid][field], (kid, field)


def _trust_policy(plane: ControlPlane, subject: str) -> dict[str, Any]:
    provider = plane.issuer.removeprefix("https://")
    return {
        "Role": {
            "Arn": ROLE,
            "AssumeRolePolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {
                            "Federated": f"arn:aws:iam::111122223333:oidc-provider/{provider}"
                        },
                        "Action": "sts:AssumeRoleWithWebIdentity",
                        "Condition": {
                            "StringEquals": {
                                f"{provider}:sub": subject,
                                f"{provider}:aud": "sts.amazonaws.com",
                            }
                        },
                    }
                ],
            },
        }
    }


def _doctor(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "webhook", "doctor", *args, "-o", "json"],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_doctor_reads_the_pod_and_a_fresh_token_from_the_cluster(
    plane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    """doctor --pod with --kubeconfig: the pod as stored and its ServiceAccount read from the
    cluster, a token asked of the TokenRequest API (as kubelet asks for the projected one),
    checked against the issuer documents `oidc` makes: all pass; a trust policy for another
    ServiceAccount's `sub` fails, naming the check."""
    create(plane, service_account("reader", namespace, role_arn=ROLE))
    create(plane, pod("app", namespace, "reader"))
    key = str(plane.public_key)
    (tmp_path / "discovery.json").write_text(
        json.dumps(_oidc("discovery", "--issuer", plane.issuer, "--public-key", key))
    )
    (tmp_path / "keys.json").write_text(json.dumps(_oidc("jwks", "--public-key", key)))

    def doctor(subject: str, kubeconfig: Path = plane.admin_kubeconfig) -> dict[str, Any]:
        policy = tmp_path / "get-role.json"
        policy.write_text(json.dumps(_trust_policy(plane, subject)))
        answer = _doctor(
            "--pod=app",
            f"--namespace={namespace}",
            f"--kubeconfig={kubeconfig}",
            f"--discovery={tmp_path / 'discovery.json'}",
            f"--jwks={tmp_path / 'keys.json'}",
            f"--trust-policy={policy}",
            # outside AWS the SDK has no instance metadata for a region (docs/self-hosted.md)
            "--aws-default-region=us-west-2",
        )
        assert answer.returncode in (0, 1), answer.stdout + answer.stderr
        report: dict[str, Any] = json.loads(answer.stdout)
        report["returncode"] = answer.returncode
        return report

    report = doctor(f"system:serviceaccount:{namespace}:reader")
    checks = {c["name"]: c for c in report["checks"]}
    assert report["returncode"] == 0, report
    assert not [c for c in report["checks"] if c["status"] == "fail"]
    assert checks["token.signature"]["status"] == "pass"
    assert checks["token.sub"]["status"] == "pass"
    assert report["object"] == {
        "kind": "Pod",
        "namespace": namespace,
        "name": "app",
        "serviceAccount": "reader",
    }
    given = {i["flag"]: i["value"] for i in report["inputs"]}
    assert given["--token"].startswith("(from the cluster: TokenRequest for ServiceAccount")
    assert "bound to pod app" in given["--token"]
    requests = [
        e
        for e in plane.audit_events()
        if e.get("stage") == "ResponseComplete"
        and (e.get("objectRef") or {}).get("namespace") == namespace
        and (e.get("objectRef") or {}).get("name") == "reader"
        and (e.get("objectRef") or {}).get("subresource") == "token"
    ]
    assert requests and requests[-1]["responseStatus"]["code"] == 201, requests

    failed = doctor(f"system:serviceaccount:{namespace}:someone-else")
    assert failed["returncode"] == 1
    failing = [c for c in failed["checks"] if c["status"] == "fail"]
    assert failing and all(c["name"].startswith("trust.") for c in failing), failing
    assert any("someone-else" in json.dumps(c) for c in failing)

    # a user who may read pods and ServiceAccounts but not create tokens: the token is not
    # checked, and the report says why and what to give instead
    viewer = _viewer_kubeconfig(plane, namespace, tmp_path)
    refused = doctor(f"system:serviceaccount:{namespace}:reader", viewer)
    token = next(c for c in refused["checks"] if c["name"] == "token")
    assert token["status"] == "not checked", token
    assert "refused" in token["summary"] and "--token FILE" in token["summary"], token
    assert "--token" not in {i["flag"] for i in refused["inputs"]}


def _viewer_kubeconfig(plane: ControlPlane, namespace: str, directory: Path) -> Path:
    create(plane, service_account("viewer", namespace))
    plane.kubectl(
        "create",
        "role",
        "viewer",
        "--verb=get",
        "--resource=pods,serviceaccounts",
        "-n",
        namespace,
    )
    plane.kubectl(
        "create",
        "rolebinding",
        "viewer",
        "--role=viewer",
        f"--serviceaccount={namespace}:viewer",
        "-n",
        namespace,
    )
    token = plane.kubectl("create", "token", "viewer", "-n", namespace).stdout.strip()
    path = directory / "viewer.kubeconfig"
    path.write_text(yaml.safe_dump(kubeconfig(plane.url, plane.pki.ca, {"token": token})))
    return path
