"""Does the role's trust policy let this pod's token in? Statement by statement, as STS decides.

First, is it the policy of the role the pod assumes at all: `aws iam get-role` output names
the role (Role.Arn), which must be the pod's; a bare document names none, and the report says
that this was not checked. Then a statement admits the pod when its Effect is Allow, its Action covers
sts:AssumeRoleWithWebIdentity, its Principal is the cluster's IAM OIDC provider (Federated)
and every Condition clause holds for the token's `sub` and `aud`. The statement closest to
admitting the pod is the one reported, with the classic mistakes named.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from webhook.doctor.conditions import Clause, clauses_of, evaluate
from webhook.doctor.issuer import issuer_key, provider_name
from webhook.doctor.policy import (
    WEB_IDENTITY_ACTION,
    Statement,
    TrustPolicy,
    federated_principals,
    principal_kinds,
)
from webhook.doctor.report import Check, failed, not_checked, passed
from webhook.doctor.subjects import describe_subject_mismatch
from webhook.mutation.serviceaccount import is_valid_role_arn

PROVIDER_ARN = re.compile(r"arn:(aws[a-z-]*):iam::(\d{12}):oidc-provider/(.+)")
ROLE_ARN = re.compile(r"arn:(aws[a-z-]*):iam::(\d{12}):role/(?:.*/)?([^/]+)")
_WILDCARD_ACTION = re.compile(r"[*?]")


@dataclass(frozen=True, slots=True)
class Pod:
    """What the token of this pod will say (None: unknown, the check is skipped)."""

    issuer_host_path: str | None
    subject: str | None
    audience: str | None
    role_arn: str = ""  # the role the pod gets; "" when it gets none


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


def trust_checks(policy: TrustPolicy, pod: Pod) -> list[Check]:
    statements = policy.statements
    role = _role(policy.role_arn, pod.role_arn)
    allows = [s for s in statements if s.effect == "Allow"]
    if not allows:
        return [
            role,
            failed("trust.action", "no statement has Effect Allow", fix='"Effect": "Allow"'),
        ]
    # IAM accepts only a provider in the role's own account; the role is the policy's when
    # get-role output names it, else the pod's. The policy of another role than the pod's is
    # reported by trust.role alone: its provider's account says nothing about the pod's role.
    other_role = policy.role_arn is not None and pod.role_arn not in ("", policy.role_arn)
    role_account = None if other_role else _account(policy.role_arn or pod.role_arn)
    verdicts = [_judge(statement, pod, role_account) for statement in allows]
    best = max(verdicts, key=lambda verdict: verdict.score())
    checks = [role, *best.checks()]
    if len(allows) > 1:
        checks = [_named(check, best.statement.index) for check in checks]
    if any(s.effect == "Deny" for s in statements):
        checks.append(not_checked("trust.deny", "Deny statements are not evaluated"))
    return checks


def _role(policy_role: str | None, pod_role: str) -> Check:
    name = "trust.role"
    if not pod_role:
        return not_checked(name, "the pod gets no role to compare the policy's role with")
    if not is_valid_role_arn(pod_role):
        return not_checked(name, "the pod's role ARN is not valid (pod.role-arn), so not compared")
    if policy_role is None:
        return not_checked(
            name,
            "a bare policy document: which role it belongs to was not checked (pass "
            f"`aws iam get-role --role-name {_role_name(pod_role)}` output to check that)",
        )
    if policy_role != pod_role:
        return failed(
            name,
            f"this is the trust policy of {policy_role}, but the pod assumes {pod_role}",
            seen=policy_role,
            expected=pod_role,
            fix=f"check the policy of the pod's role: aws iam get-role --role-name "
            f"{_role_name(pod_role)}; or, if {policy_role} is the role meant, annotate the "
            "ServiceAccount with it",
        )
    return passed(
        name, f"the policy is that of {pod_role}, the role the pod assumes", seen=pod_role
    )


def _role_name(arn: str) -> str:
    match = ROLE_ARN.fullmatch(arn)
    return match.group(3) if match else "NAME"


def _account(arn: str | None) -> str | None:
    match = ROLE_ARN.fullmatch(arn or "")
    return match.group(2) if match else None


def _named(check: Check, index: int) -> Check:
    return Check(
        check.name,
        check.status,
        f"Statement[{index}]: {check.summary}",
        seen=check.seen,
        expected=check.expected,
        fix=check.fix,
    )


def _judge(statement: Statement, pod: Pod, role_account: str | None) -> Verdict:
    action = _action(statement)
    principal, provider_path = _principal(statement, pod, role_account)
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


def _principal(statement: Statement, pod: Pod, role_account: str | None) -> tuple[Check, str]:
    arns = federated_principals(statement)
    name = "trust.principal"
    account = role_account or "ACCOUNT"
    expected_arn = (
        f"arn:aws:iam::{account}:oidc-provider/{pod.issuer_host_path}"
        if pod.issuer_host_path
        else f"arn:aws:iam::{account}:oidc-provider/ISSUER_HOST_PATH"
    )
    if not arns:
        return failed(
            name,
            "Principal is not Federated: STS checks web identity tokens only against an "
            "IAM OIDC provider named as the Federated principal",
            seen=principal_kinds(statement),
            expected=f"Federated: {expected_arn}",
            fix=f'"Principal": {{"Federated": "{expected_arn}"}}',
        ), ""
    name_fix = "name the provider exactly as the issuer, without https:// and trailing slash"
    problems = []  # (arn, problem, fix)
    for arn in arns:
        match = PROVIDER_ARN.fullmatch(arn)
        if match is None:
            problems.append((arn, "is not an IAM OIDC provider ARN", name_fix))
            continue
        path = match.group(3)
        expected = pod.issuer_host_path
        # A scheme, port or trailing slash in the name is issuer.url's to report (it compares
        # the issuer's form in every place); here only which issuer the provider names counts.
        if expected is not None and issuer_key(path) != issuer_key(expected):
            problems.append(
                (arn, f"names provider {path}, but the issuer is https://{expected}", name_fix)
            )
        elif role_account is not None and match.group(2) != role_account:
            problems.append(
                (
                    arn,
                    f"is in account {match.group(2)}, but the role is in account "
                    f"{role_account}: IAM accepts only an OIDC provider in the role's own account",
                    f"create the OIDC provider in account {role_account} "
                    "(aws iam create-open-id-connect-provider) and name it in the principal",
                )
            )
        else:
            summary = f"Federated principal is the OIDC provider {path}"
            if expected is not None and path != expected:
                summary += " (its form differs: see issuer.url)"
            if expected is None:
                summary += " (issuer unknown: pass --token, --discovery or --issuer-url to compare)"
            # the condition keys are the provider's name as IAM would hold it
            return passed(name, summary, seen=arn), provider_name(path)
    arn, problem, fix = problems[0]
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
