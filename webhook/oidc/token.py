"""Test tokens shaped like kube-apiserver's projected service-account tokens, for checking a setup."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from webhook.oidc.discovery import Issuer
from webhook.oidc.errors import OidcInputError
from webhook.oidc.keys import EC_COORDINATE_BYTES, SigningKey, algorithm, b64url, key_id
from webhook.oidc.subject import ServiceAccountSubject

MAX_EXPIRATION_SECONDS = 365 * 24 * 3600  # a test token has no use for longer


def token_claims(
    *,
    issuer: Issuer,
    subject: ServiceAccountSubject,
    audiences: Sequence[str],
    expiration_seconds: int,
    now: int,
    uid: str,
    jti: str,
) -> dict[str, object]:
    if not 0 < expiration_seconds <= MAX_EXPIRATION_SECONDS:
        raise OidcInputError(
            f"--expiration {expiration_seconds}: expected 1 to {MAX_EXPIRATION_SECONDS} seconds"
        )
    if not audiences or any(not audience for audience in audiences):
        raise OidcInputError(f"--audience {list(audiences)!r}: expected non-empty audiences")
    return {
        "aud": list(audiences),
        "exp": now + expiration_seconds,
        "iat": now,
        "iss": issuer.url,
        "jti": jti,
        "kubernetes.io": {
            "namespace": subject.namespace,
            "serviceaccount": {"name": subject.name, "uid": uid},
        },
        "nbf": now,
        "sub": str(subject),
    }


def sign_token(key: SigningKey, claims: dict[str, object]) -> str:
    """A compact JWS with kube-apiserver's header: alg and the kid STS looks up in keys.json."""
    header = {"alg": algorithm(key), "kid": key_id(key.public_key())}
    signing_input = f"{_segment(header)}.{_segment(claims)}".encode("ascii")
    if isinstance(key, rsa.RSAPrivateKey):
        signature = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    else:
        # JWS wants r || s, each padded to the coordinate size, not the DER ECDSA-Sig-Value
        r, s = decode_dss_signature(key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
        signature = r.to_bytes(EC_COORDINATE_BYTES, "big") + s.to_bytes(EC_COORDINATE_BYTES, "big")
    return f"{signing_input.decode('ascii')}.{b64url(signature)}"


def _segment(value: Mapping[str, object]) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode("utf-8"))
