"""Signature Version 4 on a signed STS request (GetCallerIdentity): which session signed it.

As AWS does: the Authorization header's access key must be one this STS issued, the request
must carry that session's token, be signed no more than 15 minutes off the clock, and the
signature must be the one the session's secret gives (AWS General Reference, "Signature
Version 4 signing process"). Header-signed requests only; presigned URLs are refused.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from urllib.parse import quote, unquote

from webhook.sts.errors import (
    EXPIRED_TOKEN,
    INVALID_CLIENT_TOKEN_ID,
    MISSING_AUTHENTICATION_TOKEN,
    SIGNATURE_DOES_NOT_MATCH,
    StsError,
)
from webhook.sts.sessions import Session, SessionStore

ALGORITHM = "AWS4-HMAC-SHA256"
MAX_CLOCK_SKEW_SECONDS = 15 * 60
_AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[A-Z0-9]{16,128})/(?P<date>\d{8})/(?P<region>[a-z0-9-]{1,64})"
    r"/(?P<service>[a-z0-9-]{1,64})/aws4_request,\s*SignedHeaders=(?P<signed>[a-z0-9;-]{1,2048}),"
    r"\s*Signature=(?P<signature>[0-9a-f]{64})"
)
_INVALID_TOKEN = "The security token included in the request is invalid."


def _denied(code: str, message: str, status: int = 403) -> StsError:
    return StsError(status, code, message)


def authenticate(
    *,
    method: str,
    raw_path: str,
    query_string: str,
    headers: Sequence[tuple[str, str]],
    body: bytes,
    sessions: SessionStore,
    now: int,
) -> Session:
    """The session whose credentials signed this request; StsError as AWS STS answers."""
    by_name: dict[str, list[str]] = {}
    for name, value in headers:
        by_name.setdefault(name.lower(), []).append(value)
    authorization = (by_name.get("authorization") or [""])[0]
    if not authorization:
        raise _denied(MISSING_AUTHENTICATION_TOKEN, "Request is missing Authentication Token")
    match = _AUTHORIZATION.fullmatch(authorization.strip())
    if match is None:
        raise _denied(
            SIGNATURE_DOES_NOT_MATCH,
            f"the Authorization header is not a {ALGORITHM} signature this STS can read",
            400,
        )
    session = sessions.get(match["key"])
    token = (by_name.get("x-amz-security-token") or [""])[0]
    if session is None or not hmac.compare_digest(token.encode(), session.session_token.encode()):
        raise _denied(INVALID_CLIENT_TOKEN_ID, _INVALID_TOKEN)
    if session.expires_at <= now:
        raise _denied(EXPIRED_TOKEN, "The security token included in the request is expired", 400)
    signed = match["signed"].split(";")
    amz_date = (by_name.get("x-amz-date") or [""])[0]
    if "host" not in signed or "x-amz-date" not in signed or not amz_date.startswith(match["date"]):
        raise _denied(
            SIGNATURE_DOES_NOT_MATCH, "host and x-amz-date must be signed, on the scope's date"
        )
    try:
        signed_at = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).timestamp()
    except ValueError:
        raise _denied(
            SIGNATURE_DOES_NOT_MATCH, f"x-amz-date {amz_date[:32]!r} is not a date"
        ) from None
    if abs(signed_at - now) > MAX_CLOCK_SKEW_SECONDS:
        raise _denied(
            SIGNATURE_DOES_NOT_MATCH,
            "Signature expired: the request was signed more than 15 min away from now",
        )
    canonical = "\n".join(
        (
            method,
            quote(unquote(raw_path) or "/", safe="/~"),
            _canonical_query(query_string),
            "".join(f"{name}:{_header_value(by_name.get(name))}\n" for name in signed),
            match["signed"],
            (by_name.get("x-amz-content-sha256") or [hashlib.sha256(body).hexdigest()])[0],
        )
    )
    scope = f"{match['date']}/{match['region']}/{match['service']}/aws4_request"
    string_to_sign = "\n".join(
        (ALGORITHM, amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest())
    )
    key = ("AWS4" + session.secret_access_key).encode()
    for part in (match["date"], match["region"], match["service"], "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    expected = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, match["signature"]):
        raise _denied(
            SIGNATURE_DOES_NOT_MATCH,
            "The request signature we calculated does not match the signature you provided.",
        )
    return session


def _header_value(values: list[str] | None) -> str:
    return ",".join(" ".join(value.split()) for value in values or ())


def _canonical_query(query_string: str) -> str:
    pairs = []
    for part in query_string.split("&") if query_string else ():
        name, _, value = part.partition("=")
        pairs.append((quote(unquote(name), safe="-_.~"), quote(unquote(value), safe="-_.~")))
    return "&".join(f"{name}={value}" for name, value in sorted(pairs))
