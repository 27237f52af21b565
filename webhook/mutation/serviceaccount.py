"""A ServiceAccount's identity read from its annotations, parsed once when the object arrives."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from webhook.mutation.defaults import MIN_TOKEN_EXPIRATION_SECONDS
from webhook.mutation.gostrconv import parse_bool
from webhook.mutation.stsendpoint import STS_ENDPOINT_ENV, sts_endpoint_problem

ROLE_ARN = "role-arn"
AUDIENCE = "audience"
STS_REGIONAL_ENDPOINTS = "sts-regional-endpoints"
TOKEN_EXPIRATION = "token-expiration"
SKIP_CONTAINERS = "skip-containers"
INCLUDE_CONTAINERS = "include-containers"
STS_ENDPOINT_URL = "sts-endpoint-url"

# The pattern upstream warns on; a role ARN that fails it is still used, as upstream does.
_ROLE_ARN_PATTERN = re.compile(r"^arn:aws[a-z0-9-]*:iam::\d{12}:role/[\w\-/.@+=,]+$")
# Go's strconv.ParseInt(s, 10, 64), which upstream uses: an optional sign and ASCII digits,
# nothing else (no spaces, no trailing newline, no underscores), within int64.
_INTEGER = re.compile(r"[+-]?[0-9]+")
_INT64_DIGITS = 19
_INT64_MAX = 2**63 - 1
# kube-apiserver refuses a projected token's expirationSeconds above this (its validation:
# `> 1<<32`); 2^32 itself is taken (docs/upstream.md, `token-expiration` above 2^32).
MAX_TOKEN_EXPIRATION_SECONDS = 2**32
_SHOWN_VALUE_CHARS = 24


@dataclass(frozen=True, slots=True)
class IdentityDefaults:
    """Flag values an annotation falls back to, and how to complete a bare role name."""

    annotation_prefix: str
    audience: str
    regional_sts: bool
    token_expiration: int
    compose_account_id: str = ""
    compose_partition: str = ""
    sts_endpoint_url: str = ""  # --sts-endpoint-url, checked at start-up
    # One shared entry for every ServiceAccount without our annotations (most of a big cluster),
    # held by the defaults it is made of so that it lives exactly as long as they do.
    no_identity: ServiceAccountIdentity = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "no_identity", identity_from_annotations({}, self, source=""))

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
    # Annotations (without the prefix) whose value was ignored or adjusted, for a metric and
    # a log line that must not repeat the value.
    invalid: tuple[str, ...] = ()
    # AWS_ENDPOINT_URL_STS for IRSA pods; "" for none (README, "STS endpoint").
    sts_endpoint_url: str = ""


def is_valid_role_arn(arn: str) -> bool:
    return _ROLE_ARN_PATTERN.match(arn) is not None


def compose_role_arn(value: str, defaults: IdentityDefaults) -> str:
    if "arn:" in value or not defaults.composes_role_arn:
        return value
    return f"arn:{defaults.compose_partition}:iam::{defaults.compose_account_id}:role/{value}"


def checked_role_arn(
    value: str, defaults: IdentityDefaults, *, what: str
) -> tuple[str, str | None]:
    """(role ARN completed from a bare role name, warning when it is not a valid IAM role ARN)."""
    role_arn = compose_role_arn(value, defaults)
    if is_valid_role_arn(role_arn):
        return role_arn, None
    return role_arn, (
        f"{what} {role_arn!r} is not a valid IAM role ARN "
        "(expected arn:PARTITION:iam::ACCOUNT:role/NAME)"
    )


def shown(value: str) -> str:
    """A value for a warning: quoted, cut short (an annotation may hold megabytes)."""
    if len(value) <= _SHOWN_VALUE_CHARS:
        return repr(value)
    return repr(value[:_SHOWN_VALUE_CHARS]) + f"... ({len(value)} characters)"


def parse_int64(value: str) -> int | None:
    """As Go's strconv.ParseInt(value, 10, 64); None where it returns an error.

    The digit count is checked before int(), which refuses more than 4,300 digits with an error.
    """
    if _INTEGER.fullmatch(value) is None:
        return None
    digits = value.lstrip("+-").lstrip("0")
    if len(digits) > _INT64_DIGITS:
        return None
    number = int(digits or "0") * (-1 if value.startswith("-") else 1)
    return number if -_INT64_MAX - 1 <= number <= _INT64_MAX else None


def parse_expiration(value: str, *, what: str) -> tuple[int | None, str | None]:
    """(seconds, warning): None seconds when the value is not a whole number in int64 range.

    Below the minimum is raised to it, as upstream; above kube-apiserver's limit is capped,
    where upstream would write a pod that kube-apiserver refuses.
    """
    seconds = parse_int64(value)
    if seconds is None:
        return None, f"{what} {shown(value)} is not a whole number of seconds; ignored"
    if seconds < MIN_TOKEN_EXPIRATION_SECONDS:
        return (
            MIN_TOKEN_EXPIRATION_SECONDS,
            f"{what} {seconds} is below the minimum; raised to {MIN_TOKEN_EXPIRATION_SECONDS}",
        )
    if seconds > MAX_TOKEN_EXPIRATION_SECONDS:
        return (
            MAX_TOKEN_EXPIRATION_SECONDS,
            f"{what} {seconds} is above kube-apiserver's limit; "
            f"capped to {MAX_TOKEN_EXPIRATION_SECONDS}",
        )
    return seconds, None


def identity_from_annotations(
    annotations: Mapping[str, str], defaults: IdentityDefaults, *, source: str
) -> ServiceAccountIdentity:
    """Read `<prefix>/role-arn`, `audience`, `sts-regional-endpoints`, `token-expiration`,
    `sts-endpoint-url`.

    `source` names the object in warnings, e.g. "ServiceAccount payments/checkout-api".
    """
    prefix = defaults.annotation_prefix + "/"
    warnings: list[str] = []
    invalid: list[str] = []
    role_arn = annotations.get(prefix + ROLE_ARN, "")
    if role_arn:
        role_arn, warning = checked_role_arn(
            role_arn, defaults, what=f"{source}: {prefix}{ROLE_ARN}"
        )
        if warning:
            warnings.append(warning)
    audience = annotations.get(prefix + AUDIENCE, defaults.audience)
    regional = defaults.regional_sts
    raw_regional = annotations.get(prefix + STS_REGIONAL_ENDPOINTS)
    if raw_regional is not None:
        try:
            regional = parse_bool(raw_regional)
        except ValueError:
            invalid.append(STS_REGIONAL_ENDPOINTS)
            warnings.append(
                f"{source}: {prefix}{STS_REGIONAL_ENDPOINTS} {shown(raw_regional)} is not true or false; "
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
            invalid.append(TOKEN_EXPIRATION)
            warnings.append(warning)
    endpoint = defaults.sts_endpoint_url
    raw_endpoint = annotations.get(prefix + STS_ENDPOINT_URL)
    if raw_endpoint is not None:
        # An empty value opts the ServiceAccount out of the flag's endpoint.
        problem = sts_endpoint_problem(raw_endpoint) if raw_endpoint else None
        endpoint = "" if problem else raw_endpoint
        if problem:
            invalid.append(STS_ENDPOINT_URL)
            # user info may be a password: the warning reaches whoever creates the pod
            value = "(value not shown)" if "@" in raw_endpoint else shown(raw_endpoint)
            warnings.append(
                f"{source}: {prefix}{STS_ENDPOINT_URL} {value} {problem}; "
                f"{STS_ENDPOINT_ENV} not set"
            )
    return ServiceAccountIdentity(
        role_arn=role_arn,
        audience=audience,
        regional_sts=regional,
        token_expiration=expiration,
        warnings=tuple(warnings),
        invalid=tuple(invalid),
        sts_endpoint_url=endpoint,
    )


def identity_of_service_account(
    namespace: str, name: str, annotations: Mapping[str, str], defaults: IdentityDefaults
) -> ServiceAccountIdentity:
    """The identity of ServiceAccount namespace/name; the defaults' `no_identity` when it
    carries no annotation of the prefix."""
    prefix = defaults.annotation_prefix + "/"
    if not any(key.startswith(prefix) for key in annotations):
        return defaults.no_identity
    return identity_from_annotations(
        annotations, defaults, source=f"ServiceAccount {namespace}/{name}"
    )
