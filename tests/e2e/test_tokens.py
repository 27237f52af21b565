"""Self-hosted IRSA for real: tokens the API server issues with a key from `oidc keygen` verify
against what `oidc jwks` and `oidc discovery` publish (docs/self-hosted.md, docs/oidc.md)."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.e2e.controlplane import ControlPlane
from tests.e2e.objects import ROLE, create, service_account


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
