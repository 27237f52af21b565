"""All checks for one pod, in the order a person would follow them: pod, SDK, issuer, token, trust."""

from __future__ import annotations

from dataclasses import dataclass

from webhook.doctor.issuer import (
    DISCOVERY_ISSUER,
    ISSUER_URL,
    PROVIDER,
    TOKEN_ISS,
    Published,
    Written,
    discovery_checks,
    issuer_form_check,
    jwks_keys,
    provider_name,
)
from webhook.doctor.jws import Token
from webhook.doctor.pods import PodFacts
from webhook.doctor.policy import TrustPolicy, federated_principals
from webhook.doctor.report import Check, not_checked
from webhook.doctor.tokens import Expected, token_checks
from webhook.doctor.trust import PROVIDER_ARN, Pod, trust_checks
from webhook.mutation.podidentity import Mode

NO_TOKEN = "no token (--token FILE: a projected token from the pod)"


@dataclass(frozen=True, slots=True)
class Evidence:
    """Everything the checks look at, gathered first, so that diagnosing reads no input."""

    pod: PodFacts
    published: Published
    token: Token | None
    trust: TrustPolicy | None
    now: int
    token_missing: str = NO_TOKEN  # why there is no token, when there is none


def diagnose(evidence: Evidence) -> list[Check]:
    facts, published = evidence.pod, evidence.published
    checks = list(facts.checks)
    if facts.mode is Mode.CONTAINER_CREDENTIALS:
        reason = "EKS Pod Identity: the EKS Auth API, not STS web identity, issues credentials"
        return [*checks, not_checked("trust", reason), not_checked("token", reason)]
    issuer = published.issuer() or _provider_issuer(evidence.trust)
    checks.append(issuer_form_check(_places(evidence)))
    checks += discovery_checks(published)
    keys, jwks_check = jwks_keys(published)
    checks.append(jwks_check)
    if evidence.token is None:
        checks.append(not_checked("token", evidence.token_missing))
    else:
        expected = Expected(issuer, facts.subject, facts.audience, evidence.now)
        checks += token_checks(evidence.token, expected, keys)
    if evidence.trust is None:
        checks.append(not_checked("trust", "no trust policy (--trust-policy FILE)"))
    else:
        token_issuer = evidence.token.claims.get("iss") if evidence.token else None
        issuer = issuer or (token_issuer if isinstance(token_issuer, str) else None)
        host_path = provider_name(issuer) if issuer else None
        pod = Pod(host_path, facts.subject, facts.audience, facts.role_arn)
        checks += trust_checks(evidence.trust, pod)
    return checks


def _provider_issuer(trust: TrustPolicy | None) -> str | None:
    """With no published documents, the token's iss is compared with the provider STS would use."""
    for statement in trust.statements if trust else ():
        for arn in federated_principals(statement):
            match = PROVIDER_ARN.fullmatch(arn)
            if match and not match.group(3).startswith("http") and not arn.endswith("/"):
                return f"https://{match.group(3)}"
    return None


def _places(evidence: Evidence) -> list[Written]:
    """Every place the issuer is written, the one IAM's provider was made from first."""
    published = evidence.published
    places = []
    if published.issuer_url:
        places.append(Written(ISSUER_URL, published.issuer_url))
    issuer = (published.discovery or {}).get("issuer")
    if isinstance(issuer, str):
        places.append(Written(DISCOVERY_ISSUER, issuer))
    iss = evidence.token.claims.get("iss") if evidence.token else None
    if isinstance(iss, str):
        places.append(Written(TOKEN_ISS, iss))
    for statement in evidence.trust.statements if evidence.trust else ():
        for arn in federated_principals(statement):
            match = PROVIDER_ARN.fullmatch(arn)
            if match:
                places.append(Written(PROVIDER, match.group(3)))
    return places
