"""Naming how a trust policy's `sub` differs from the pod's: another namespace or ServiceAccount."""

from __future__ import annotations

from webhook.oidc.subject import PREFIX


def split_subject(subject: str) -> tuple[str, str] | None:
    parts = subject.removeprefix(PREFIX).split(":")
    if not subject.startswith(PREFIX) or len(parts) != 2:
        return None
    return parts[0], parts[1]


def describe_subject_mismatch(pattern: str, subject: str) -> str:
    wanted, actual = split_subject(pattern), split_subject(subject)
    if wanted is None or actual is None or "*" in pattern or "?" in pattern:
        return ""
    namespace_differs, name_differs = wanted[0] != actual[0], wanted[1] != actual[1]
    if namespace_differs and name_differs:
        return (
            f"the condition names ServiceAccount {wanted[1]} in namespace {wanted[0]}; "
            f"this pod runs as {actual[1]} in {actual[0]}"
        )
    if namespace_differs:
        return f"the condition names namespace {wanted[0]}; this pod's namespace is {actual[0]}"
    if name_differs:
        return (
            f"the condition names ServiceAccount {wanted[1]}; this pod's ServiceAccount "
            f"is {actual[1]}"
        )
    return ""
