"""All checks for one pod, in the order a person would follow them: pod, SDK, issuer, token, trust."""

from __future__ import annotations

from dataclasses import dataclass

from webhook.doctor.issuer import Published, discovery_checks, jwks_keys
from webhook.doctor.jws import Token
from webhook.doctor.pods import PodFacts
from webhook.doctor.policy import TrustPolicy, federated_principals
from webhook.doctor.report import Check, not_checked
from webhook.doctor.tokens import Expected, token_checks
from webhook.doctor.trust import PROVIDER_ARN, Pod, trust_checks
from webhook.mutation.podidentity import Mode


@dataclass(frozen=True, slots=True)
class Evidence:
    pod: PodFacts
    published: Published
    token: Token | None
    trust: TrustPolicy | None
    now: int


def diagnose(evidence: Evidence) -> list[Check]:
    facts, published = evidence.pod, evidence.published
    checks = list(facts.checks)
    if facts.mode is Mode.CONTAINER_CREDENTIALS:
        reason = "EKS Pod Identity: the EKS Auth API, not STS web identity, issues credentials"
        return [*checks, not_checked("trust", reason), not_checked("token", reason)]
    issuer = published.issuer() or _provider_issuer(evidence.trust)
    checks += discovery_checks(published)
    keys, jwks_check = jwks_keys(published)
    checks.append(jwks_check)
    if evidence.token is None:
        checks.append(
            not_checked("token", "no token (--token FILE: a projected token from the pod)")
        )
    else:
        expected = Expected(issuer, facts.subject, facts.audience, evidence.now)
        checks += token_checks(evidence.token, expected, keys)
    if evidence.trust is None:
        checks.append(not_checked("trust", "no trust policy (--trust-policy FILE)"))
    else:
        token_issuer = evidence.token.claims.get("iss") if evidence.token else None
        issuer = issuer or (token_issuer if isinstance(token_issuer, str) else None)
        host_path = issuer.removeprefix("https://") if issuer else None
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
