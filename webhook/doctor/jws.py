"""A compact JWS read and its signature checked against a JWKS entry, with `cryptography` only."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

# what AWS STS accepts for web identity tokens from an IAM OIDC provider
STS_ALGORITHMS = ("RS256", "RS384", "RS512", "ES256", "ES384", "ES512")
_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "256": hashes.SHA256,
    "384": hashes.SHA384,
    "512": hashes.SHA512,
}
_CURVES: dict[str, ec.EllipticCurve] = {
    "P-256": ec.SECP256R1(),
    "P-384": ec.SECP384R1(),
    "P-521": ec.SECP521R1(),
}


class TokenError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Token:
    header: dict[str, Any]
    claims: dict[str, Any]
    signing_input: bytes
    signature: bytes


def b64decode(segment: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError) as exc:
        raise TokenError(f"not base64url: {exc}") from exc


def decode_token(text: str) -> Token:
    parts = text.split(".")
    if len(parts) != 3:
        raise TokenError(f"{len(parts)} dot-separated parts; a signed JWT has 3")
    try:
        header = json.loads(b64decode(parts[0]))
        claims = json.loads(b64decode(parts[1]))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise TokenError("header or claims are not JSON") from exc
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise TokenError("header and claims must be JSON objects")
    return Token(header, claims, f"{parts[0]}.{parts[1]}".encode("ascii"), b64decode(parts[2]))


def _integer(jwk: Mapping[str, Any], name: str) -> int:
    value = jwk.get(name)
    if not isinstance(value, str):
        raise TokenError(f"JWK {jwk.get('kid')!r} has no {name!r}")
    return int.from_bytes(b64decode(value), "big")


def public_key(jwk: Mapping[str, Any]) -> rsa.RSAPublicKey | ec.EllipticCurvePublicKey:
    kty = jwk.get("kty")
    try:
        if kty == "RSA":
            return rsa.RSAPublicNumbers(_integer(jwk, "e"), _integer(jwk, "n")).public_key()
        if kty == "EC":
            curve = _CURVES.get(str(jwk.get("crv")))
            if curve is None:
                raise TokenError(f"JWK {jwk.get('kid')!r}: curve {jwk.get('crv')!r} unknown")
            numbers = ec.EllipticCurvePublicNumbers(_integer(jwk, "x"), _integer(jwk, "y"), curve)
            return numbers.public_key()
    except ValueError as exc:
        if isinstance(exc, TokenError):
            raise
        raise TokenError(f"JWK {jwk.get('kid')!r} is not a valid key: {exc}") from exc
    raise TokenError(f"JWK {jwk.get('kid')!r}: kty {kty!r}; expected RSA or EC")


def verify_signature(token: Token, jwk: Mapping[str, Any]) -> bool:
    """True when the JWK's key signed the token with the header's algorithm."""
    alg = str(token.header.get("alg"))
    if alg not in STS_ALGORITHMS:
        raise TokenError(f"alg {alg!r} is not one STS accepts ({', '.join(STS_ALGORITHMS)})")
    key = public_key(jwk)
    digest = _HASHES[alg[2:]]()
    try:
        if alg.startswith("RS"):
            if not isinstance(key, rsa.RSAPublicKey):
                return False
            key.verify(token.signature, token.signing_input, padding.PKCS1v15(), digest)
        else:
            if not isinstance(key, ec.EllipticCurvePublicKey):
                return False
            size = (key.curve.key_size + 7) // 8
            if len(token.signature) != 2 * size:
                return False
            r = int.from_bytes(token.signature[:size], "big")
            s = int.from_bytes(token.signature[size:], "big")
            key.verify(encode_dss_signature(r, s), token.signing_input, ec.ECDSA(digest))
    except InvalidSignature:
        return False
    return True
