"""Self-hosted IRSA for real: tokens the API server issues with a key from `oidc keygen` verify
against what `oidc jwks` and `oidc discovery` publish (docs/self-hosted.md, docs/oidc.md)."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.e2e.controlplane import ControlPlane
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


def test_doctor_on_a_real_token_and_the_cluster(
    plane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    """doctor with the pod as stored, its ServiceAccount read with --kubeconfig, a TokenRequest
    token and the issuer documents `oidc` makes: all pass; a trust policy for another
    ServiceAccount's `sub` fails, naming the check."""
    create(plane, service_account("reader", namespace, role_arn=ROLE))
    create(plane, pod("app", namespace, "reader"))
    (tmp_path / "pod.json").write_text(json.dumps(plane.get_json("pod", "app", "-n", namespace)))
    token = plane.kubectl(
        "create", "token", "reader", "-n", namespace, "--audience=sts.amazonaws.com"
    ).stdout.strip()
    (tmp_path / "token").write_text(token)
    key = str(plane.public_key)
    (tmp_path / "discovery.json").write_text(
        json.dumps(_oidc("discovery", "--issuer", plane.issuer, "--public-key", key))
    )
    (tmp_path / "keys.json").write_text(json.dumps(_oidc("jwks", "--public-key", key)))

    def doctor(subject: str) -> subprocess.CompletedProcess[str]:
        policy = tmp_path / "get-role.json"
        policy.write_text(json.dumps(_trust_policy(plane, subject)))
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "webhook",
                "doctor",
                "-f",
                str(tmp_path / "pod.json"),
                f"--kubeconfig={plane.admin_kubeconfig}",
                f"--token={tmp_path / 'token'}",
                f"--discovery={tmp_path / 'discovery.json'}",
                f"--jwks={tmp_path / 'keys.json'}",
                f"--trust-policy={policy}",
                # outside AWS the SDK has no instance metadata for a region (docs/self-hosted.md)
                "--aws-default-region=us-west-2",
                "-o",
                "json",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )

    passed = doctor(f"system:serviceaccount:{namespace}:reader")
    assert passed.returncode == 0, passed.stdout + passed.stderr
    report = json.loads(passed.stdout)
    assert not [c for c in report["checks"] if c["status"] == "fail"]

    failed = doctor(f"system:serviceaccount:{namespace}:someone-else")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    failing = [c for c in json.loads(failed.stdout)["checks"] if c["status"] == "fail"]
    assert failing and all(c["name"].startswith("trust.") for c in failing), failing
    assert any("someone-else" in json.dumps(c) for c in failing)
