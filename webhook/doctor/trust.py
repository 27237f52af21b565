"""Does the role's trust policy let this pod's token in? Statement by statement, as STS decides.

A statement admits the pod when its Effect is Allow, its Action covers
sts:AssumeRoleWithWebIdentity, its Principal is the cluster's IAM OIDC provider (Federated)
and every Condition clause holds for the token's `sub` and `aud`. The statement closest to
admitting the pod is the one reported, with the classic mistakes named.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from webhook.doctor.conditions import Clause, clauses_of, evaluate
from webhook.doctor.policy import (
    WEB_IDENTITY_ACTION,
    Statement,
    federated_principals,
    principal_kinds,
)
from webhook.doctor.report import Check, failed, not_checked, passed
from webhook.doctor.subjects import describe_subject_mismatch

PROVIDER_ARN = re.compile(r"arn:(aws[a-z-]*):iam::(\d{12}):oidc-provider/(.+)")
_WILDCARD_ACTION = re.compile(r"[*?]")


@dataclass(frozen=True, slots=True)
class Pod:
    """What the token of this pod will say (None: unknown, the check is skipped)."""

    issuer_host_path: str | None
    subject: str | None
    audience: str | None


@dataclass(slots=True)
class Verdict:
    statement: Statement
    action: Check
    principal: Check
    provider_path: str = ""
    conditions: dict[str, Check] = field(default_factory=dict)

    def score(self) -> int:
        checks = [self.action, self.principal, *self.conditions.values()]
        return sum(check.status.value == "pass" for check in checks)

    def checks(self) -> list[Check]:
        return [self.action, self.principal, *self.conditions.values()]


def trust_checks(statements: Sequence[Statement], pod: Pod) -> list[Check]:
    allows = [s for s in statements if s.effect == "Allow"]
    if not allows:
        return [failed("trust.action", "no statement has Effect Allow", fix='"Effect": "Allow"')]
    verdicts = [_judge(statement, pod) for statement in allows]
    best = max(verdicts, key=lambda verdict: verdict.score())
    checks = best.checks()
    if len(allows) > 1:
        checks = [_named(check, best.statement.index) for check in checks]
    if any(s.effect == "Deny" for s in statements):
        checks.append(not_checked("trust.deny", "Deny statements are not evaluated"))
    return checks


def _named(check: Check, index: int) -> Check:
    return Check(
        check.name,
        check.status,
        f"Statement[{index}]: {check.summary}",
        seen=check.seen,
        expected=check.expected,
        fix=check.fix,
    )


def _judge(statement: Statement, pod: Pod) -> Verdict:
    action = _action(statement)
    principal, provider_path = _principal(statement, pod)
    verdict = Verdict(statement, action, principal, provider_path)
    clauses = clauses_of(statement.condition)  # checked when the policy was read
    path = provider_path or pod.issuer_host_path
    verdict.conditions["trust.sub"] = _claim(clauses, "sub", pod.subject, path)
    verdict.conditions["trust.aud"] = _claim(clauses, "aud", pod.audience, path)
    others = [c for c in clauses if _claim_of(c.key) not in ("sub", "aud")]
    if others:
        keys = ", ".join(f"{c.operator.text} {c.key}" for c in others)
        verdict.conditions["trust.other-conditions"] = not_checked(
            "trust.other-conditions", f"conditions on other keys are not checked: {keys}"
        )
    return verdict


def _action(statement: Statement) -> Check:
    def covers(action: str) -> bool:
        pattern = re.escape(action.casefold()).replace(r"\*", ".*").replace(r"\?", ".")
        return re.fullmatch(pattern, WEB_IDENTITY_ACTION.casefold()) is not None

    seen = ", ".join(statement.actions) or "(none)"
    if statement.not_action:
        if any(covers(action) for action in statement.actions):
            return failed(
                "trust.action",
                f"NotAction excludes {WEB_IDENTITY_ACTION}",
                seen=f"NotAction: {seen}",
                expected=f"Action: {WEB_IDENTITY_ACTION}",
                fix=f'replace NotAction with "Action": "{WEB_IDENTITY_ACTION}"',
            )
        return passed("trust.action", f"NotAction leaves {WEB_IDENTITY_ACTION} allowed")
    if any(covers(action) for action in statement.actions):
        return passed("trust.action", f"Action allows {WEB_IDENTITY_ACTION}", seen=seen)
    hint = " (sts:AssumeRole is for IAM principals, not tokens)" if "sts:AssumeRole" in seen else ""
    return failed(
        "trust.action",
        f"Action does not include {WEB_IDENTITY_ACTION}{hint}",
        seen=seen,
        expected=WEB_IDENTITY_ACTION,
        fix=f'"Action": "{WEB_IDENTITY_ACTION}"',
    )


def _principal(statement: Statement, pod: Pod) -> tuple[Check, str]:
    arns = federated_principals(statement)
    name = "trust.principal"
    if not arns:
        return failed(
            name,
            "Principal is not Federated: STS checks web identity tokens only against an "
            "IAM OIDC provider named as the Federated principal",
            seen=principal_kinds(statement),
            expected="Federated: arn:aws:iam::ACCOUNT:oidc-provider/ISSUER_HOST_PATH",
            fix='"Principal": {"Federated": "arn:aws:iam::ACCOUNT:oidc-provider/ISSUER_HOST_PATH"}',
        ), ""
    problems = []
    for arn in arns:
        match = PROVIDER_ARN.fullmatch(arn)
        if match is None:
            problems.append((arn, "is not an IAM OIDC provider ARN"))
            continue
        path = match.group(3)
        expected = pod.issuer_host_path
        if path.startswith(("https://", "http://")):
            problems.append((arn, "has the URL scheme in it; IAM names providers without https://"))
        elif path.endswith("/"):
            problems.append((arn, "ends with a slash; the provider name has none"))
        elif expected is not None and path != expected:
            problems.append((arn, f"names provider {path}, but the issuer is https://{expected}"))
        else:
            summary = f"Federated principal is the OIDC provider {path}"
            if expected is None:
                summary += " (issuer unknown: pass --token, --discovery or --issuer-url to compare)"
            return passed(name, summary, seen=arn), path
    arn, problem = problems[0]
    expected_arn = (
        f"arn:aws:iam::ACCOUNT:oidc-provider/{pod.issuer_host_path}"
        if pod.issuer_host_path
        else "arn:aws:iam::ACCOUNT:oidc-provider/ISSUER_HOST_PATH"
    )
    fix = "name the provider exactly as the issuer, without https:// and trailing slash"
    return failed(
        name, f"the Federated principal {problem}", seen=arn, expected=expected_arn, fix=fix
    ), ""


def _claim_of(key: str) -> str:
    return key.rpartition(":")[2].casefold()


def _claim(clauses: Sequence[Clause], claim: str, value: str | None, path: str | None) -> Check:
    name = f"trust.{claim}"
    mine = [clause for clause in clauses if _claim_of(clause.key) == claim]
    if not mine:
        if claim == "sub":
            return passed(
                name,
                "no condition on sub: every ServiceAccount of the cluster may assume this role; "
                "add StringEquals ISSUER:sub system:serviceaccount:NS:NAME",
            )
        return passed(name, f"no condition on {claim}")
    if value is None:
        return not_checked(name, f"the token's {claim} is unknown (pass the pod with -f)")
    if path is None:
        return not_checked(name, f"the provider is unknown, so the {claim} key cannot be named")
    key = f"{path}:{claim}"
    context = {key: [value]}
    seen = f"{claim} = {value}"
    for clause in mine:
        result = evaluate(clause, context)
        written = f"{clause.operator.text} {clause.key}: {', '.join(clause.values)}"
        if result is None:
            return not_checked(name, f"operator or policy variable not checked: {written}")
        if not result:
            summary, fix = _explain(clause, key, value)
            return failed(name, summary, seen=seen, expected=written, fix=fix)
    return passed(name, f"the conditions on {claim} admit {value}", seen=seen)


def _explain(clause: Clause, key: str, value: str) -> tuple[str, str]:
    """The classic mistakes, named; else a plain 'does not match'."""
    written = clause.key
    if written.casefold() != key.casefold():
        return (
            f"condition key {written} is not this provider's: IAM looks up {key}, so "
            "this condition never holds",
            f"write the key as {key}",
        )
    literal = clause.operator.base in ("StringEquals", "StringEqualsIgnoreCase")
    if literal and any(ch in pattern for pattern in clause.values for ch in "*?"):
        return (
            f"{clause.operator.text} compares literally: its '*' or '?' matches only that "
            "character, not any text",
            f"use {clause.operator.text.replace('StringEquals', 'StringLike')} for wildcards",
        )
    if key.endswith(":sub"):
        for pattern in clause.values:
            mismatch = describe_subject_mismatch(pattern, value)
            if mismatch:
                return mismatch, f"set the condition to {value}"
    return (
        f"{clause.operator.text} on {written} does not admit {value}",
        f"make the condition admit {value}",
    )
