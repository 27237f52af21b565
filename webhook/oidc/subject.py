"""A ServiceAccount as a token subject: `system:serviceaccount:NAMESPACE:NAME`."""

from __future__ import annotations

import re
from dataclasses import dataclass

from webhook.oidc.errors import OidcInputError

PREFIX = "system:serviceaccount:"
_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_NAMESPACE = re.compile(_LABEL)
_NAME = re.compile(rf"{_LABEL}(\.{_LABEL})*")
MAX_NAMESPACE_CHARS = 63
MAX_NAME_CHARS = 253


@dataclass(frozen=True, slots=True)
class ServiceAccountSubject:
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{PREFIX}{self.namespace}:{self.name}"


def service_account(*, namespace: str, name: str, flag: str) -> ServiceAccountSubject:
    if len(namespace) > MAX_NAMESPACE_CHARS or not _NAMESPACE.fullmatch(namespace):
        raise OidcInputError(
            f"{flag}: namespace {namespace!r} is not a valid namespace name "
            "(lower-case letters, digits and '-', at most 63 characters)"
        )
    if len(name) > MAX_NAME_CHARS or not _NAME.fullmatch(name):
        raise OidcInputError(
            f"{flag}: ServiceAccount name {name!r} is not valid "
            "(lower-case letters, digits, '-' and '.', at most 253 characters)"
        )
    return ServiceAccountSubject(namespace, name)


def parse_subject(text: str) -> ServiceAccountSubject:
    parts = text.removeprefix(PREFIX).split(":")
    if not text.startswith(PREFIX) or len(parts) != 2:
        raise OidcInputError(f"--subject {text!r}: expected system:serviceaccount:NAMESPACE:NAME")
    return service_account(namespace=parts[0], name=parts[1], flag=f"--subject {text!r}")
