"""Reading a role's trust policy as people paste it: the document, URL-encoded, or get-role output."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from webhook.doctor.conditions import clauses_of

WEB_IDENTITY_ACTION = "sts:AssumeRoleWithWebIdentity"


class PolicyError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Statement:
    index: int
    effect: str
    actions: tuple[str, ...]
    not_action: bool
    principal: Any
    condition: Any


@dataclass(frozen=True, slots=True)
class TrustPolicy:
    statements: list[Statement]
    # Role.Arn of `aws iam get-role` output: whose policy this is. None for a bare document,
    # which does not say which role it belongs to.
    role_arn: str | None = None


def load_trust_policy(text: str) -> TrustPolicy:
    """`aws iam get-role` output (Role.AssumeRolePolicyDocument), or the policy document,
    either possibly URL-encoded (as IAM returns it from some APIs)."""
    document = _decode(text)
    role_arn = None
    if isinstance(document, Mapping) and isinstance(document.get("Role"), Mapping):
        role = document["Role"]
        arn = role.get("Arn")
        role_arn = arn if isinstance(arn, str) and arn else None
        document = role.get("AssumeRolePolicyDocument")
        if document is None:
            raise PolicyError("Role has no AssumeRolePolicyDocument")
    if isinstance(document, Mapping) and "AssumeRolePolicyDocument" in document:
        document = document["AssumeRolePolicyDocument"]
    if isinstance(document, str):
        document = _decode(document)
    if not isinstance(document, Mapping) or "Statement" not in document:
        raise PolicyError(
            "expected a policy document with a Statement, or `aws iam get-role` output"
        )
    raw = document["Statement"]
    raw = [raw] if isinstance(raw, Mapping) else raw
    if not isinstance(raw, list) or not raw:
        raise PolicyError("Statement is empty or not a list of objects")
    return TrustPolicy([_statement(index, item) for index, item in enumerate(raw)], role_arn)


def _decode(text: str) -> Any:
    stripped = text.strip()
    if stripped.startswith("%"):
        stripped = unquote(stripped)
    try:
        return json.loads(stripped)
    except json.JSONDecodeError as exc:
        raise PolicyError(f"not JSON ({exc.msg} at line {exc.lineno})") from exc


def _statement(index: int, item: object) -> Statement:
    if not isinstance(item, Mapping):
        raise PolicyError(f"Statement[{index}] is not an object")
    not_action = "NotAction" in item and "Action" not in item
    raw = item.get("NotAction" if not_action else "Action", [])
    actions = tuple(str(action) for action in (raw if isinstance(raw, list) else [raw]))
    try:
        clauses_of(item.get("Condition"))
    except ValueError as exc:
        raise PolicyError(f"Statement[{index}].{exc}") from exc
    return Statement(
        index=index,
        effect=str(item.get("Effect", "")),
        actions=actions,
        not_action=not_action,
        principal=item.get("Principal"),
        condition=item.get("Condition"),
    )


def federated_principals(statement: Statement) -> list[str]:
    principal = statement.principal
    if not isinstance(principal, Mapping):
        return []
    federated = principal.get("Federated", [])
    return [str(value) for value in (federated if isinstance(federated, list) else [federated])]


def principal_kinds(statement: Statement) -> str:
    principal = statement.principal
    if isinstance(principal, Mapping):
        return ", ".join(f"{kind}: {value}" for kind, value in principal.items()) or "{}"
    return json.dumps(principal)
