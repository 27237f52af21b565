"""The JSON Web Key Set (`keys.json`) STS fetches to verify the cluster's tokens."""

from __future__ import annotations

from collections.abc import Sequence

from cryptography.hazmat.primitives.asymmetric import rsa

from webhook.oidc.keys import EC_COORDINATE_BYTES, PublicKey, algorithm, b64url, key_id


def _unsigned(value: int, length: int | None = None) -> str:
    return b64url(value.to_bytes(length or (value.bit_length() + 7) // 8, "big"))


def jwk(key: PublicKey) -> dict[str, str]:
    # member order follows kube-apiserver's /openid/v1/jwks output
    head = {"use": "sig", "kty": "RSA" if isinstance(key, rsa.RSAPublicKey) else "EC"}
    head["kid"] = key_id(key)
    if isinstance(key, rsa.RSAPublicKey):
        numbers = key.public_numbers()
        return {**head, "alg": algorithm(key), "n": _unsigned(numbers.n), "e": _unsigned(numbers.e)}
    point = key.public_numbers()
    return {
        **head,
        "crv": "P-256",
        "alg": algorithm(key),
        "x": _unsigned(point.x, EC_COORDINATE_BYTES),
        "y": _unsigned(point.y, EC_COORDINATE_BYTES),
    }


def key_set(keys: Sequence[PublicKey]) -> dict[str, list[dict[str, str]]]:
    """All keys, once each, in the order given (during a rotation: old and new)."""
    entries: dict[str, dict[str, str]] = {}
    for key in keys:
        entry = jwk(key)
        entries.setdefault(entry["kid"], entry)
    return {"keys": list(entries.values())}
