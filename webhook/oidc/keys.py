"""Service-account signing keys: reading and parsing PEM files, the JWS algorithm a key implies,
kube-apiserver's kid."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from webhook.oidc.errors import OidcInputError

PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey
SigningKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

# STS rejects shorter RSA keys; kube-apiserver's ES256 signer is P-256 only
MIN_RSA_BITS = 2048
EC_CURVE = "secp256r1"
EC_COORDINATE_BYTES = 32
USABLE = f"expected an RSA key of {MIN_RSA_BITS} bits or more or an EC P-256 key"

T = TypeVar("T")

_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----\r?\n.*?-----END \1-----", re.DOTALL)
_PUBLIC_TYPES = {b"PUBLIC KEY", b"RSA PUBLIC KEY"}
_PRIVATE_TYPES = {b"PRIVATE KEY", b"RSA PRIVATE KEY", b"EC PRIVATE KEY"}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def key_id(key: PublicKey) -> str:
    """The `kid` kube-apiserver writes into its tokens' headers (keyIDFromPublicKey in
    k8s.io/kubernetes pkg/serviceaccount/jwt.go): SHA-256 of the DER SubjectPublicKeyInfo,
    base64url without padding. STS picks the JWKS entry by this value, so it must match exactly."""
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return b64url(hashlib.sha256(der).digest())


def algorithm(key: PublicKey | SigningKey) -> str:
    return "RS256" if isinstance(key, rsa.RSAPublicKey | rsa.RSAPrivateKey) else "ES256"


def public_pem(key: SigningKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def parse_public_keys(data: bytes, *, source: str) -> list[PublicKey]:
    """Every key in a PEM file as kube-apiserver's --service-account-key-file reads it: public
    keys, certificates, and private keys (their public half)."""
    keys: list[PublicKey] = []
    for kind, block in _blocks(data, source=source):
        if kind == b"EC PARAMETERS":  # `openssl ecparam -genkey` writes one before the key
            continue
        if kind in _PUBLIC_TYPES:
            key: object = _load(serialization.load_pem_public_key, block, kind, source)
        elif kind == b"CERTIFICATE":
            key = _load(x509.load_pem_x509_certificate, block, kind, source).public_key()
        else:
            key = _private(kind, block, source).public_key()
        keys.append(_usable(key, source))
    if not keys:
        raise OidcInputError(f"{source}: no key in the PEM file; {USABLE}")
    return keys


def parse_private_key(data: bytes, *, source: str) -> SigningKey:
    keys = [
        _private(kind, block, source)
        for kind, block in _blocks(data, source=source)
        if kind != b"EC PARAMETERS"
    ]
    if len(keys) != 1:
        raise OidcInputError(
            f"{source}: {len(keys)} private keys in the file; expected exactly one"
        )
    return keys[0]


def _blocks(data: bytes, *, source: str) -> list[tuple[bytes, bytes]]:
    blocks = [(match.group(1), match.group(0)) for match in _PEM_BLOCK.finditer(data)]
    if not blocks:
        raise OidcInputError(f"{source}: not a PEM file (no -----BEGIN ...----- block); {USABLE}")
    return blocks


def _private(kind: bytes, block: bytes, source: str) -> SigningKey:
    name = kind.decode("ascii")
    if kind == b"ENCRYPTED PRIVATE KEY" or b"Proc-Type: 4,ENCRYPTED" in block:
        raise OidcInputError(
            f"{source}: the {name} is encrypted; kube-apiserver needs an unencrypted key"
        )
    if kind in _PUBLIC_TYPES or kind == b"CERTIFICATE":
        raise OidcInputError(f"{source}: holds a {name}; expected a private key")
    if kind not in _PRIVATE_TYPES:
        raise OidcInputError(f"{source}: PEM block {name!r} is not a key; {USABLE}")
    key = _load(_load_private, block, kind, source)
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise OidcInputError(f"{source}: {_describe(key)}; {USABLE}")
    _usable(key.public_key(), source)
    return key


def _load_private(block: bytes) -> object:
    return serialization.load_pem_private_key(block, password=None)


def _load(loader: Callable[[bytes], T], block: bytes, kind: bytes, source: str) -> T:
    try:
        return loader(block)
    except (ValueError, TypeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise OidcInputError(f"{source}: cannot read the {kind.decode('ascii')}: {reason}") from exc


def _usable(key: object, source: str) -> PublicKey:
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise OidcInputError(f"{source}: RSA key of {key.key_size} bits; {USABLE}")
        return key
    if isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.name != EC_CURVE:
            raise OidcInputError(f"{source}: EC key on curve {key.curve.name}; {USABLE}")
        return key
    raise OidcInputError(f"{source}: {_describe(key)}; {USABLE}")


def _describe(key: object) -> str:
    name = type(key).__name__.lstrip("_")
    for suffix in ("PublicKey", "PrivateKey"):
        name = name.removesuffix(suffix)
    return f"{name} key"


def _read(path: Path, flag: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise OidcInputError(f"{flag} {path}: no such file") from exc
    except OSError as exc:
        raise OidcInputError(f"{flag} {path}: cannot read: {exc.strerror or exc}") from exc


def read_public_keys(paths: Sequence[Path]) -> list[PublicKey]:
    """Every public key in the --public-key files, in order."""
    keys: list[PublicKey] = []
    for path in paths:
        keys += parse_public_keys(_read(path, "--public-key"), source=f"--public-key {path}")
    return keys


def read_private_key(path: Path) -> SigningKey:
    return parse_private_key(_read(path, "--private-key"), source=f"--private-key {path}")
