"""Fargate profiles from YAML, in the shape `eksctl get fargateprofile -o yaml` prints.

Either a list of profiles, or a mapping whose `fargateProfiles` key holds that list (an eksctl
ClusterConfig has one). Of each profile only `name` and `selectors` are read; EKS's limits are
enforced so a file that EKS would refuse is refused here too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from webhook.mutation.fargate import FargateProfile, Selector
from webhook.sources.errors import ConfigError

PROFILES_KEY = "fargateProfiles"
MAX_PROFILES = 10
MAX_SELECTORS_PER_PROFILE = 5
MAX_LABELS_PER_SELECTOR = 5


def parse_fargate_profiles(content: bytes, *, source: str | Path) -> tuple[FargateProfile, ...]:
    """The profiles in file order; an empty file holds none."""
    try:
        document = yaml.safe_load(content)
    except yaml.YAMLError as exc:
        raise ConfigError(source, "", f"not valid YAML: {exc}") from exc
    prefix = ""
    if isinstance(document, dict):
        if PROFILES_KEY not in document:
            raise ConfigError(
                source, "", f"expected a list of profiles or a mapping with a {PROFILES_KEY} key"
            )
        document = document[PROFILES_KEY]
        prefix = PROFILES_KEY
    if document is None:
        return ()
    if not isinstance(document, list):
        raise ConfigError(
            source,
            prefix,
            f"expected a list of profiles, found {type(document).__name__}",
        )
    if len(document) > MAX_PROFILES:
        raise ConfigError(
            source, prefix, f"{len(document)} profiles; EKS allows at most {MAX_PROFILES}"
        )
    profiles: list[FargateProfile] = []
    first_index: dict[str, int] = {}
    for index, item in enumerate(document):
        profile = _profile(item, source=source, where=f"{prefix}[{index}]")
        if profile.name in first_index:
            raise ConfigError(
                source,
                f"{prefix}[{index}].name",
                f"{profile.name!r} is also the name of {prefix}[{first_index[profile.name]}]; "
                "profile names must be unique",
            )
        first_index[profile.name] = index
        profiles.append(profile)
    return tuple(profiles)


def _profile(item: Any, *, source: str | Path, where: str) -> FargateProfile:
    if not isinstance(item, dict):
        raise ConfigError(source, where, "expected a profile {name: ..., selectors: [...]}")
    name = item.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(source, f"{where}.name", "missing or empty; every profile needs a name")
    where = f"{where} (profile {name!r})"
    selectors = item.get("selectors")
    if not isinstance(selectors, list) or not selectors:
        raise ConfigError(
            source,
            f"{where}.selectors",
            f"missing or empty; a profile needs 1 to {MAX_SELECTORS_PER_PROFILE} selectors",
        )
    if len(selectors) > MAX_SELECTORS_PER_PROFILE:
        raise ConfigError(
            source,
            f"{where}.selectors",
            f"{len(selectors)} selectors; EKS allows at most {MAX_SELECTORS_PER_PROFILE} per profile",
        )
    return FargateProfile(
        name,
        tuple(
            _selector(selector, source=source, where=f"{where}.selectors[{index}]")
            for index, selector in enumerate(selectors)
        ),
    )


def _selector(item: Any, *, source: str | Path, where: str) -> Selector:
    if not isinstance(item, dict):
        raise ConfigError(source, where, "expected a selector {namespace: ..., labels: {...}}")
    namespace = item.get("namespace")
    if not isinstance(namespace, str) or not namespace:
        raise ConfigError(
            source, f"{where}.namespace", "missing or empty; every selector needs a namespace"
        )
    labels = item.get("labels")
    if labels is None:
        return Selector(namespace)
    if not isinstance(labels, dict):
        raise ConfigError(source, f"{where}.labels", "expected a mapping of label keys to values")
    if len(labels) > MAX_LABELS_PER_SELECTOR:
        raise ConfigError(
            source,
            f"{where}.labels",
            f"{len(labels)} labels; EKS allows at most {MAX_LABELS_PER_SELECTOR} per selector",
        )
    pairs: list[tuple[str, str]] = []
    for key, value in labels.items():
        if not isinstance(key, str) or not key:
            raise ConfigError(source, f"{where}.labels", f"label key {key!r} is not a string")
        if not isinstance(value, str):
            raise ConfigError(
                source,
                f"{where}.labels[{key!r}]",
                f'value {value!r} is not a string (quote values such as "true" and "1")',
            )
        pairs.append((key, value))
    return Selector(namespace, tuple(pairs))
