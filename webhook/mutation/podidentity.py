"""Which identity a pod gets: ServiceAccount, ConfigMap, container-credentials and pod annotations.

Precedence, as upstream:
- container credentials (EKS Pod Identity) for a listed ServiceAccount wins over a role ARN;
- audience and regional STS: ServiceAccount annotation, else ConfigMap entry, else flag;
- token expiration: pod annotation, else ServiceAccount/ConfigMap, else flag.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from random import Random
from typing import NamedTuple

from webhook.mutation.csvrecord import CsvError, read_first_record
from webhook.mutation.defaults import (
    DEFAULT_TOKEN_EXPIRATION_SECONDS,
    JITTER_MIN_TOKEN_EXPIRATION_SECONDS,
)
from webhook.mutation.serviceaccount import (
    INCLUDE_CONTAINERS,
    SKIP_CONTAINERS,
    TOKEN_EXPIRATION,
    ServiceAccountIdentity,
    parse_expiration,
    shown,
)
from webhook.types import JsonObject

WEB_IDENTITY_TOKEN_PATH = "token"
WEB_IDENTITY_VOLUME_NAME = "aws-iam-token"


class Mode(Enum):
    """How a pod is given its identity: IRSA (a role and a web identity token for STS), or EKS
    Pod Identity (a container credentials endpoint and the token it takes)."""

    STS_WEB_IDENTITY = "sts_web_identity"
    CONTAINER_CREDENTIALS = "container_credentials"


@dataclass(frozen=True, slots=True)
class ContainerCredentials:
    """The `--container-credentials-*` flags, for a ServiceAccount listed in the config file."""

    audience: str
    mount_path: str
    volume_name: str
    token_path: str
    full_uri: str


class PodIdentity(NamedTuple):
    """Everything the patch needs, fully resolved for one pod.

    The values built per admission (this, Resolution, Mutation, Review, Answer) are
    NamedTuples: immutable like a frozen dataclass, built in a third of the time.
    """

    mode: Mode
    role_arn: str
    full_uri: str
    audience: str
    mount_path: str
    volume_name: str
    token_path: str
    token_expiration: int
    regional_sts: bool
    region: str
    skip_containers: frozenset[str]
    # None: every container; else only these (skip_containers still wins), README
    # "How a pod is mutated".
    include_containers: frozenset[str] | None = None
    # AWS_ENDPOINT_URL_STS, IRSA only: container-credentials pods get their credentials from
    # the node's agent at full_uri, and their SDKs never call STS.
    sts_endpoint_url: str = ""


class Resolution(NamedTuple):
    identity: PodIdentity | None
    warnings: tuple[str, ...]
    # Pod annotations (without the prefix) whose value was ignored or adjusted.
    invalid: tuple[str, ...] = ()


def pod_annotations(pod: JsonObject) -> Mapping[str, str]:
    metadata = pod.get("metadata") or {}
    annotations: Mapping[str, str] = metadata.get("annotations") or {}
    return annotations


def parse_skip_containers(value: str) -> tuple[frozenset[str], str | None]:
    """Container names from the first CSV record, read as Go's encoding/csv; a bad one skips none."""
    return _parse_container_names(value, SKIP_CONTAINERS, "no container skipped")


def parse_include_containers(value: str) -> tuple[frozenset[str], str | None]:
    """As skip-containers. A bad list wires no container: the annotation is there to withhold
    credentials, so an unreadable one must not hand them to every container."""
    return _parse_container_names(value, INCLUDE_CONTAINERS, "no container gets credentials")


def _parse_container_names(
    value: str, annotation: str, consequence: str
) -> tuple[frozenset[str], str | None]:
    if not value.strip("\r\n"):
        return frozenset(), None  # Go's reader finds no record: no names, nothing wrong
    try:
        record = read_first_record(value)
    except CsvError as exc:
        return (
            frozenset(),
            f"{annotation} {shown(value)} is not a valid CSV list ({exc}); {consequence}",
        )
    return frozenset(record), None


def resolve_pod_identity(
    pod: JsonObject,
    *,
    service_account: ServiceAccountIdentity | None,
    config_map: ServiceAccountIdentity | None,
    container_credentials: ContainerCredentials | None,
    annotation_prefix: str,
    mount_path: str,
    region: str,
    rng: Random,
) -> Resolution:
    """Decide the pod's identity. `container_credentials` is given only for a listed ServiceAccount."""
    if container_credentials is not None:
        return _container_credentials_identity(
            pod,
            service_account or config_map,
            container_credentials,
            annotation_prefix=annotation_prefix,
            region=region,
            rng=rng,
        )
    chosen = (
        service_account if service_account is not None and service_account.role_arn else config_map
    )
    if chosen is None or not chosen.role_arn:
        return Resolution(None, ())
    return _web_identity(
        pod, chosen, annotation_prefix=annotation_prefix, mount_path=mount_path, region=region
    )


def _container_credentials_identity(
    pod: JsonObject,
    common: ServiceAccountIdentity | None,
    container_credentials: ContainerCredentials,
    *,
    annotation_prefix: str,
    region: str,
    rng: Random,
) -> Resolution:
    """EKS Pod Identity: the token settings come from the flags; lifetime and regional STS from
    the ServiceAccount's (or ConfigMap entry's) annotations when it has them."""
    warnings: list[str] = []
    invalid: list[str] = []
    if common is not None:
        regional, expiration = common.regional_sts, common.token_expiration
        warnings.extend(common.warnings)
    else:
        regional, expiration = False, DEFAULT_TOKEN_EXPIRATION_SECONDS
    expiration, skip, include = _pod_overrides(
        pod, expiration, annotation_prefix, warnings, invalid
    )
    if expiration == DEFAULT_TOKEN_EXPIRATION_SECONDS:
        # Spread token refreshes of many pods, as upstream does for the default lifetime.
        expiration = rng.randint(
            JITTER_MIN_TOKEN_EXPIRATION_SECONDS, DEFAULT_TOKEN_EXPIRATION_SECONDS
        )
    identity = PodIdentity(
        mode=Mode.CONTAINER_CREDENTIALS,
        role_arn="",
        full_uri=container_credentials.full_uri,
        audience=container_credentials.audience,
        mount_path=container_credentials.mount_path,
        volume_name=container_credentials.volume_name,
        token_path=container_credentials.token_path,
        token_expiration=expiration,
        regional_sts=regional,
        region=region,
        skip_containers=skip,
        include_containers=include,
    )
    return Resolution(identity, tuple(warnings), tuple(invalid))


def _web_identity(
    pod: JsonObject,
    chosen: ServiceAccountIdentity,
    *,
    annotation_prefix: str,
    mount_path: str,
    region: str,
) -> Resolution:
    """IRSA: the role and token settings of the ServiceAccount (or ConfigMap entry) that has a role."""
    warnings = list(chosen.warnings)
    invalid: list[str] = []
    expiration, skip, include = _pod_overrides(
        pod, chosen.token_expiration, annotation_prefix, warnings, invalid
    )
    identity = PodIdentity(
        mode=Mode.STS_WEB_IDENTITY,
        role_arn=chosen.role_arn,
        full_uri="",
        audience=chosen.audience,
        mount_path=mount_path,
        volume_name=WEB_IDENTITY_VOLUME_NAME,
        token_path=WEB_IDENTITY_TOKEN_PATH,
        token_expiration=expiration,
        regional_sts=chosen.regional_sts,
        region=region,
        skip_containers=skip,
        include_containers=include,
        sts_endpoint_url=chosen.sts_endpoint_url,
    )
    return Resolution(identity, tuple(warnings), tuple(invalid))


def _pod_overrides(
    pod: JsonObject, expiration: int, prefix: str, warnings: list[str], invalid: list[str]
) -> tuple[int, frozenset[str], frozenset[str] | None]:
    annotations = pod_annotations(pod)
    raw = annotations.get(f"{prefix}/{TOKEN_EXPIRATION}")
    if raw is not None:
        seconds, warning = parse_expiration(raw, what=f"pod annotation {prefix}/{TOKEN_EXPIRATION}")
        if seconds is not None:
            expiration = seconds
        if warning:
            invalid.append(TOKEN_EXPIRATION)
            warnings.append(warning)
    skip: frozenset[str] = frozenset()
    raw_skip = annotations.get(f"{prefix}/{SKIP_CONTAINERS}")
    if raw_skip is not None:
        skip = _container_names(
            parse_skip_containers(raw_skip), SKIP_CONTAINERS, prefix, warnings, invalid
        )
    include: frozenset[str] | None = None
    raw_include = annotations.get(f"{prefix}/{INCLUDE_CONTAINERS}")
    if raw_include is not None:
        parsed = parse_include_containers(raw_include)
        include = _container_names(parsed, INCLUDE_CONTAINERS, prefix, warnings, invalid)
        if not include and parsed[1] is None:  # read well, and empty
            warnings.append(
                f"pod annotation {prefix}/{INCLUDE_CONTAINERS} is empty; "
                "no container gets credentials"
            )
    return expiration, skip, include


def _container_names(
    parsed: tuple[frozenset[str], str | None],
    annotation: str,
    prefix: str,
    warnings: list[str],
    invalid: list[str],
) -> frozenset[str]:
    """The names a container-list annotation gave; its warning, if any, noted."""
    names, warning = parsed
    if warning:
        invalid.append(annotation)
        warnings.append(f"pod annotation {prefix}/{warning}")
    return names
