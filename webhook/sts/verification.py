"""AssumeRoleWithWebIdentity's decision: the token, then the role's trust policy, as STS decides.

Every check is doctor's (webhook/doctor/tokens.py, issuer.py, trust.py, conditions.py); this
module only orders them as STS meets them and turns the first failure into STS's error code:
the provider (the token's iss), the signature, the lifetime, the audience (the provider's
client IDs), then the trust policy. Where doctor cannot decide (an operator or condition key it
does not evaluate, a Deny statement) this STS refuses: a test that passes here must not be
refused by AWS for something nobody checked (docs/kind-testing.md, "What the local STS checks").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from webhook.doctor.issuer import (
    ISSUER_URL,
    TOKEN_ISS,
    Published,
    Written,
    issuer_form_check,
    jwks_keys,
    provider_name,
)
from webhook.doctor.jws import Token, TokenError, decode_token
from webhook.doctor.policy import TrustPolicy
from webhook.doctor.report import Check, Status, failed
from webhook.doctor.tokens import Expected, token_checks
from webhook.doctor.trust import Pod, trust_checks
from webhook.sts.errors import (
    ACCESS_DENIED,
    EXPIRED_TOKEN_EXCEPTION,
    IDP_COMMUNICATION_ERROR,
    INVALID_IDENTITY_TOKEN,
    from_check,
    sender_error,
)
from webhook.sts.issuer import IssuerDocuments

NOT_AUTHORIZED = "Not authorized to perform sts:AssumeRoleWithWebIdentity"
_TOKEN_ORDER = ("token.iss", "token.alg", "token.kid", "token.signature", "token.exp")


@dataclass(frozen=True, slots=True)
class Provider:
    """The IAM OIDC provider: the issuer's documents and the audiences (client IDs) it accepts."""

    documents: IssuerDocuments
    client_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class WebIdentity:
    subject: str
    audience: str
    issuer: str
    role_arn: str


def verify_web_identity(
    token_text: str,
    role_arn: str,
    *,
    provider: Provider,
    roles: Mapping[str, TrustPolicy],
    now: int,
) -> WebIdentity:
    """The identity the token proves for `role_arn`; StsError for the first check that fails."""
    try:
        token = decode_token(token_text.strip())
    except TokenError as exc:
        raise sender_error(
            INVALID_IDENTITY_TOKEN, f"the web identity token is not a signed JWT: {exc}"
        ) from None
    issuer, audience = _check_token(token, provider, now)
    subject = token.claims.get("sub")
    if not isinstance(subject, str) or not subject:
        raise sender_error(INVALID_IDENTITY_TOKEN, "the web identity token has no sub claim")
    _check_trust(roles.get(role_arn), Pod(provider_name(issuer), subject, audience, role_arn))
    return WebIdentity(subject, audience, issuer, role_arn)


def _check_token(token: Token, provider: Provider, now: int) -> tuple[str, str]:
    """(issuer, the audience that matched one of the provider's client IDs)"""
    published = provider.documents.current()
    keys, jwks_check = jwks_keys(published)
    if keys is not None and token.header.get("kid") not in {key.get("kid") for key in keys}:
        published = provider.documents.current(stale=True)  # a key may have been rotated in
        keys, jwks_check = jwks_keys(published)
    issuer = published.issuer()
    if issuer is None or keys is None:
        check = jwks_check if jwks_check.status is Status.FAIL else _unreachable(published)
        raise from_check(
            IDP_COMMUNICATION_ERROR, "the identity provider could not be reached", check
        )
    by_audience = {
        client_id: {
            c.name: c for c in token_checks(token, Expected(issuer, None, client_id, now), keys)
        }
        for client_id in provider.client_ids
    }
    checks = next(iter(by_audience.values()))
    iss = token.claims.get("iss")
    if checks["token.iss"].status is Status.PASS and iss != issuer:
        # doctor looks past a difference of form; STS compares the strings
        form = issuer_form_check([Written(ISSUER_URL, issuer), Written(TOKEN_ISS, str(iss))])
        checks["token.iss"] = (
            form
            if form.status is Status.FAIL
            else failed(
                "token.iss", "the token's iss is not the issuer", seen=repr(iss), expected=issuer
            )
        )
    for name in _TOKEN_ORDER:
        check = checks[name]
        if check.status is Status.PASS:
            continue
        if name == "token.iss":
            raise from_check(
                INVALID_IDENTITY_TOKEN,
                f"No OpenIDConnect provider found in your account for {iss}",
                check,
            )
        if name == "token.exp" and "expired" in check.summary:
            raise from_check(
                EXPIRED_TOKEN_EXCEPTION,
                "Token expired: current date/time must be before the expiration date/time",
                check,
            )
        raise from_check(INVALID_IDENTITY_TOKEN, "the web identity token is not valid", check)
    for client_id, found in by_audience.items():
        if found["token.aud"].status is Status.PASS:
            return issuer, client_id
    aud = checks["token.aud"]
    raise from_check(
        INVALID_IDENTITY_TOKEN,
        "Incorrect token audience",
        replace(
            aud,
            summary="the token's aud is none of the provider's client IDs (--client-id)",
            expected=", ".join(provider.client_ids),
        ),
    )


def _unreachable(published: Published) -> Check:
    error = published.discovery_error or "no issuer or JWKS"
    return failed(
        "issuer.discovery",
        "the discovery document cannot be fetched",
        seen=error,
        fix="start the local STS with --discovery and --jwks files, or an --issuer-url it can reach",
    )


def _check_trust(policy: TrustPolicy | None, pod: Pod) -> None:
    if policy is None:
        raise from_check(
            ACCESS_DENIED,
            NOT_AUTHORIZED,
            failed(
                "trust.role",
                f"this STS knows no trust policy for {pod.role_arn}",
                expected="--role ROLE_ARN=FILE, or its get-role output in a --roles folder",
            ),
            status=403,
        )
    denies = [s for s in policy.statements if s.effect == "Deny"]
    if denies:
        raise from_check(
            ACCESS_DENIED,
            NOT_AUTHORIZED,
            failed(
                "trust.deny",
                f"Statement[{denies[0].index}] is a Deny: this local STS does not evaluate Deny "
                "statements, so it refuses rather than guess",
            ),
            status=403,
        )
    for statement in policy.statements:
        if statement.effect == "Allow" and _admits(
            trust_checks(TrustPolicy([statement], policy.role_arn), pod)
        ):
            return
    # the statement closest to admitting the token, with doctor's explanation
    for check in trust_checks(policy, pod):
        if check.status is Status.FAIL:
            raise from_check(ACCESS_DENIED, NOT_AUTHORIZED, check, status=403)
        if check.status is Status.NOT_CHECKED and check.name != "trust.role":
            undecided = replace(
                check,
                summary=check.summary + "; this local STS refuses what it cannot evaluate",
            )
            raise from_check(ACCESS_DENIED, NOT_AUTHORIZED, undecided, status=403)
    raise from_check(  # unreachable while doctor reports every refusal; kept as a refusal
        ACCESS_DENIED, NOT_AUTHORIZED, failed("trust", "no statement admits the token"), status=403
    )


def _admits(checks: Sequence[Check]) -> bool:
    """Every check passes; a bare document's trust.role (not checked) does not count: the
    policy was looked up by the role's ARN."""
    return all(
        check.status is Status.PASS
        or (check.name == "trust.role" and check.status is Status.NOT_CHECKED)
        for check in checks
    )
