"""Reading doctor's inputs: every file or URL it cannot use is one DoctorInputError naming the flag."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from webhook.doctor.fetch import FetchError, fetch_json
from webhook.doctor.issuer import Published
from webhook.doctor.jws import Token, TokenError, decode_token
from webhook.doctor.policy import PolicyError, TrustPolicy, load_trust_policy
from webhook.oidc.discovery import DISCOVERY_PATH

MAX_INPUT_BYTES = 1024 * 1024


class DoctorInputError(ValueError):
    pass


def read_text(path: Path, flag: str) -> str:
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_INPUT_BYTES + 1)
    except FileNotFoundError as exc:
        raise DoctorInputError(f"{flag} {path}: no such file") from exc
    except OSError as exc:
        raise DoctorInputError(f"{flag} {path}: cannot read: {exc.strerror or exc}") from exc
    if len(data) > MAX_INPUT_BYTES:
        raise DoctorInputError(f"{flag} {path}: larger than {MAX_INPUT_BYTES} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DoctorInputError(f"{flag} {path}: not UTF-8 text") from exc


def read_json_object(path: Path, flag: str, expected: str) -> dict[str, Any]:
    try:
        document = json.loads(read_text(path, flag))
    except json.JSONDecodeError as exc:
        raise DoctorInputError(f"{flag} {path}: not JSON ({exc.msg}); expected {expected}") from exc
    if not isinstance(document, dict):
        raise DoctorInputError(f"{flag} {path}: expected {expected}")
    return document


def read_trust_policy(path: Path) -> TrustPolicy:
    try:
        return load_trust_policy(read_text(path, "--trust-policy"))
    except PolicyError as exc:
        raise DoctorInputError(f"--trust-policy {path}: {exc}") from exc


def read_token(path: Path) -> Token:
    try:
        return decode_token(read_text(path, "--token").strip())
    except TokenError as exc:
        raise DoctorInputError(f"--token {path}: not a signed JWT: {exc}") from exc


def published_documents(
    *,
    discovery: Path | None,
    jwks: Path | None,
    issuer_url: str | None,
    ca_file: Path | None,
) -> Published:
    """Files win over fetching; with --issuer-url the rest is fetched as STS would."""
    found: dict[str, Any] = {}
    if discovery is not None:
        found["discovery"] = read_json_object(discovery, "--discovery", "the discovery JSON object")
    if jwks is not None:
        found["jwks"] = read_json_object(jwks, "--jwks", 'a JWKS object {"keys": [...]}')
    if issuer_url is None:
        return Published(**found)
    if not issuer_url.startswith("https://") or not urlsplit(issuer_url).hostname:
        raise DoctorInputError(
            f"--issuer-url {issuer_url!r}: expected https://HOST[/PATH], the tokens' iss"
        )
    # an issuer IAM would refuse is still fetched: issuer.url says why it would
    issuer = issuer_url
    if ca_file is not None and not ca_file.is_file():
        raise DoctorInputError(
            f"--issuer-ca-file {ca_file}: no such file; expected a PEM CA bundle"
        )
    found["issuer_url"] = issuer
    if "discovery" not in found:
        try:
            found["discovery"] = fetch_json(f"{issuer}/{DISCOVERY_PATH}", ca_file=ca_file)
        except FetchError as exc:
            found["discovery_error"] = str(exc)
    uri = (found.get("discovery") or {}).get("jwks_uri")
    if "jwks" not in found and isinstance(uri, str):
        try:
            found["jwks"] = fetch_json(uri, ca_file=ca_file)
        except FetchError as exc:
            found["jwks_error"] = str(exc)
    return Published(**found)
