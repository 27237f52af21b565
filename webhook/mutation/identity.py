"""Identity settings read from ServiceAccount annotations, parsed once when the object arrives."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from webhook.settings import MIN_TOKEN_EXPIRATION_SECONDS

ROLE_ARN = "role-arn"
AUDIENCE = "audience"
STS_REGIONAL_ENDPOINTS = "sts-regional-endpoints"
TOKEN_EXPIRATION = "token-expiration"
SKIP_CONTAINERS = "skip-containers"

# The pattern upstream warns on; a role ARN that fails it is still used, as upstream does.
_ROLE_ARN_PATTERN = re.compile(r"^arn:aws[a-z0-9-]*:iam::\d{12}:role/[\w\-/.@+=,]+$")
_INTEGER = re.compile(r"^[+-]?[0-9]+$")
_TRUE = frozenset(("1", "t", "T", "true", "TRUE", "True"))
_FALSE = frozenset(("0", "f", "F", "false", "FALSE", "False"))


@dataclass(frozen=True, slots=True)
class IdentityDefaults:
    """Flag values an annotation falls back to, and how to complete a bare role name."""

    annotation_prefix: str
    audience: str
    regional_sts: bool
    token_expiration: int
    compose_account_id: str = ""
    compose_partition: str = ""

    @property
    def composes_role_arn(self) -> bool:
        return bool(self.compose_account_id)


@dataclass(frozen=True, slots=True)
class ServiceAccountIdentity:
    """What one ServiceAccount (or ConfigMap entry) says about the pods that run as it."""

    role_arn: str
    audience: str
    regional_sts: bool
    token_expiration: int
    warnings: tuple[str, ...] = ()


def is_valid_role_arn(arn: str) -> bool:
    return _ROLE_ARN_PATTERN.match(arn) is not None


def compose_role_arn(value: str, defaults: IdentityDefaults) -> str:
    if "arn:" in value or not defaults.composes_role_arn:
        return value
    return f"arn:{defaults.compose_partition}:iam::{defaults.compose_account_id}:role/{value}"


def parse_expiration(value: str, *, what: str) -> tuple[int | None, str | None]:
    """(seconds, warning): None seconds when the value is not an integer; raised to the minimum."""
    if _INTEGER.match(value) is None:
        return None, f"{what} {value!r} is not a whole number of seconds; ignored"
    seconds = int(value)
    if seconds < MIN_TOKEN_EXPIRATION_SECONDS:
        return (
            MIN_TOKEN_EXPIRATION_SECONDS,
            f"{what} {seconds} is below the minimum; raised to {MIN_TOKEN_EXPIRATION_SECONDS}",
        )
    return seconds, None


def identity_from_annotations(
    annotations: Mapping[str, str], defaults: IdentityDefaults, *, source: str
) -> ServiceAccountIdentity:
    """Read `<prefix>/role-arn`, `audience`, `sts-regional-endpoints`, `token-expiration`.

    `source` names the object in warnings, e.g. "ServiceAccount payments/checkout-api".
    """
    prefix = defaults.annotation_prefix + "/"
    warnings: list[str] = []
    role_arn = annotations.get(prefix + ROLE_ARN, "")
    if role_arn:
        role_arn = compose_role_arn(role_arn, defaults)
        if not is_valid_role_arn(role_arn):
            warnings.append(
                f"{source}: {prefix}{ROLE_ARN} {role_arn!r} is not a valid IAM role ARN "
                "(expected arn:PARTITION:iam::ACCOUNT:role/NAME)"
            )
    audience = annotations.get(prefix + AUDIENCE, defaults.audience)
    regional = defaults.regional_sts
    raw_regional = annotations.get(prefix + STS_REGIONAL_ENDPOINTS)
    if raw_regional is not None:
        if raw_regional in _TRUE:
            regional = True
        elif raw_regional in _FALSE:
            regional = False
        else:
            warnings.append(
                f"{source}: {prefix}{STS_REGIONAL_ENDPOINTS} {raw_regional!r} is not true or false; "
                f"using {str(regional).lower()}"
            )
    expiration = defaults.token_expiration
    raw_expiration = annotations.get(prefix + TOKEN_EXPIRATION)
    if raw_expiration is not None:
        seconds, warning = parse_expiration(
            raw_expiration, what=f"{source}: {prefix}{TOKEN_EXPIRATION}"
        )
        if seconds is not None:
            expiration = seconds
        if warning:
            warnings.append(warning)
    return ServiceAccountIdentity(
        role_arn=role_arn,
        audience=audience,
        regional_sts=regional,
        token_expiration=expiration,
        warnings=tuple(warnings),
    )
