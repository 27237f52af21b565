"""The projected token taken from a pod, checked claim by claim as STS checks it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from webhook.doctor.issuer import same_but_form
from webhook.doctor.jws import STS_ALGORITHMS, Token, TokenError, verify_signature
from webhook.doctor.report import Check, failed, not_checked, passed


@dataclass(frozen=True, slots=True)
class Expected:
    issuer: str | None  # from --issuer-url, the discovery document, or the trust policy's provider
    subject: str | None
    audience: str | None
    now: int


def token_checks(
    token: Token, expected: Expected, keys: Sequence[dict[str, Any]] | None
) -> list[Check]:
    claims = token.claims
    return [
        _issuer(claims.get("iss"), expected.issuer),
        _audience(claims.get("aud"), expected.audience),
        _subject(claims.get("sub"), expected.subject),
        _lifetime(claims, expected.now),
        _algorithm(token.header.get("alg")),
        *_signature(token, keys),
    ]


def _issuer(iss: object, issuer: str | None) -> Check:
    if issuer is None:
        return not_checked(
            "token.iss", f"iss is {iss!r}; no issuer to compare (--issuer-url, --discovery)"
        )
    if same_but_form(iss, issuer):
        return passed(
            "token.iss", "iss is the issuer (its form differs: see issuer.url)", seen=str(iss)
        )
    if iss != issuer:
        fix = "kube-apiserver --service-account-issuer, the discovery issuer and the IAM provider URL must be the same string"
        return failed(
            "token.iss",
            "the token's iss is not the issuer",
            seen=repr(iss),
            expected=issuer,
            fix=fix,
        )
    return passed("token.iss", "iss is the issuer", seen=issuer)


def _audience(aud: object, audience: str | None) -> Check:
    audiences = aud if isinstance(aud, list) else [aud]
    seen = ", ".join(map(str, audiences))
    if audience is None:
        return not_checked(
            "token.aud", f"aud is {seen}; no expected audience (pass the pod with -f)"
        )
    if audience not in audiences:
        return failed(
            "token.aud",
            "the token is not for the audience the pod's identity uses",
            seen=seen,
            expected=audience,
            fix="take the token from the webhook's projected volume, or fix the audience annotation",
        )
    return passed("token.aud", f"aud includes {audience}", seen=seen)


def _subject(sub: object, subject: str | None) -> Check:
    if subject is None:
        return not_checked("token.sub", f"sub is {sub!r}; no pod to compare (-f)")
    if sub != subject:
        return failed(
            "token.sub",
            "the token belongs to another ServiceAccount",
            seen=repr(sub),
            expected=subject,
            fix="take the token from this pod's projected volume",
        )
    return passed("token.sub", "sub is this pod's ServiceAccount", seen=subject)


def _lifetime(claims: dict[str, Any], now: int) -> Check:
    exp, nbf = claims.get("exp"), claims.get("nbf")
    if not isinstance(exp, int):
        return failed(
            "token.exp", "the token has no numeric exp", seen=repr(exp), expected="a Unix time"
        )
    if exp <= now:
        return failed(
            "token.exp",
            f"the token expired {_span(now - exp)} ago",
            seen=moment(exp, now),
            expected=f"after {moment(now, now)}",
            fix="read a fresh token: kubelet rewrites the projected file before it expires",
        )
    if isinstance(nbf, int) and nbf > now:
        return failed(
            "token.exp",
            f"the token is not valid for another {_span(nbf - now)} (nbf)",
            seen=moment(nbf, now),
        )
    return passed("token.exp", f"valid until {moment(exp, now)}", seen=moment(exp, now))


def moment(epoch: int, now: int) -> str:
    """A token time as people read it: `2026-12-04T15:00:00Z (in 59 min)`."""
    try:
        when = datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return f"{epoch} (not a date)"
    if epoch == now:
        return f"{when} (now)"
    return (
        f"{when} (in {_span(epoch - now)})" if epoch > now else f"{when} ({_span(now - epoch)} ago)"
    )


def _span(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 120 * 60:
        return f"{seconds // 60} min"
    if seconds < 48 * 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"
    return f"{seconds // 86400} d"


def _algorithm(alg: object) -> Check:
    if alg not in STS_ALGORITHMS:
        return failed(
            "token.alg",
            "STS does not accept this signing algorithm",
            seen=repr(alg),
            expected=", ".join(STS_ALGORITHMS),
            fix="sign with an RSA (RS256) or EC P-256 (ES256) key",
        )
    return passed("token.alg", f"{alg} is accepted by STS", seen=str(alg))


def _signature(token: Token, keys: Sequence[dict[str, Any]] | None) -> list[Check]:
    kid = token.header.get("kid")
    if keys is None:
        return [
            not_checked(
                "token.kid", f"kid is {kid!r}; no JWKS to look it up (--jwks, --issuer-url)"
            ),
            not_checked("token.signature", "no JWKS to verify against"),
        ]
    match = next((key for key in keys if key.get("kid") == kid), None)
    if match is None:
        published = ", ".join(str(key.get("kid")) for key in keys)
        return [
            failed(
                "token.kid",
                "the token's kid is not in the published JWKS: STS cannot find its key",
                seen=repr(kid),
                expected=published,
                fix="publish keys.json for kube-apiserver's --service-account-signing-key-file (oidc jwks --public-key)",
            ),
            not_checked("token.signature", "no key with the token's kid"),
        ]
    kid_check = passed("token.kid", "kid is in the JWKS", seen=str(kid))
    if token.header.get("alg") not in STS_ALGORITHMS:
        return [kid_check, not_checked("token.signature", "not verified: alg not accepted")]
    try:
        ok = verify_signature(token, match)
    except TokenError as exc:
        return [kid_check, failed("token.signature", f"cannot verify: {exc}")]
    if not ok:
        return [
            kid_check,
            failed(
                "token.signature",
                "the signature does not verify with the published key of that kid",
                fix="the JWKS entry must hold the public half of the signing key",
            ),
        ]
    return [kid_check, passed("token.signature", "signature verifies with the published key")]
