"""Fargate scheduling: which profile a pod matches, and the patch that hands it to Fargate.

Matching follows EKS: a selector matches when the namespace matches and every selector label is
on the pod with a matching value; `*` and `?` are wildcards (wildcards.py) in the namespace,
label keys and label values. A profile matches when any selector does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from webhook.mutation.answer import Answer, Outcome
from webhook.mutation.podfields import CONTAINER_LISTS, add_op, label_ops, objects, string_map
from webhook.mutation.wildcards import cached_wildcard, wildcard_matches
from webhook.types import JsonObject, PatchOp

PROFILE_LABEL = "eks.amazonaws.com/fargate-profile"
DEFAULT_SCHEDULER_NAME = "default-scheduler"


@dataclass(frozen=True, slots=True)
class Selector:
    namespace: str
    labels: tuple[tuple[str, str], ...] = ()  # (key, value) pairs; all must match


@dataclass(frozen=True, slots=True)
class FargateProfile:
    name: str
    selectors: tuple[Selector, ...]


def _label_matches(key: str, value: str, labels: Mapping[str, str]) -> bool:
    if cached_wildcard(key) is None:  # a literal key: one lookup instead of a scan
        pod_value = labels.get(key)
        return pod_value is not None and wildcard_matches(value, pod_value)
    return any(
        wildcard_matches(key, pod_key) and wildcard_matches(value, pod_value)
        for pod_key, pod_value in labels.items()
    )


def selector_matches(selector: Selector, namespace: str, labels: Mapping[str, str]) -> bool:
    if not wildcard_matches(selector.namespace, namespace):
        return False
    return all(_label_matches(key, value, labels) for key, value in selector.labels)


def profile_matches(profile: FargateProfile, namespace: str, labels: Mapping[str, str]) -> bool:
    return any(selector_matches(selector, namespace, labels) for selector in profile.selectors)


def matching_profiles(
    profiles: Iterable[FargateProfile], namespace: str, labels: Mapping[str, str]
) -> list[FargateProfile]:
    """The profiles this pod matches, sorted by name."""
    found = [profile for profile in profiles if profile_matches(profile, namespace, labels)]
    return sorted(found, key=lambda profile: profile.name)


def schedule_on_fargate(
    pod: JsonObject,
    namespace: str,
    *,
    profiles: Sequence[FargateProfile],
    scheduler_name: str,
) -> Answer:
    """The patch that hands a matching pod to `scheduler_name`; no operation when it has it already."""
    metadata: JsonObject = pod.get("metadata") or {}
    spec: JsonObject = pod.get("spec") or {}
    labels = string_map(metadata.get("labels"))
    if _owned_by_daemonset(metadata):
        return Answer([], (), Outcome.DAEMONSET, "")
    if spec.get("nodeName"):
        return Answer([], (), Outcome.BOUND, "")
    current_scheduler = spec.get("schedulerName")
    if current_scheduler not in (None, "", DEFAULT_SCHEDULER_NAME, scheduler_name):
        return Answer([], (), Outcome.OWN_SCHEDULER, "")

    matches = matching_profiles(profiles, namespace, labels)
    if not matches:
        return Answer([], (), Outcome.NO_MATCH, "")
    chosen, choice_warnings = _choose(matches, labels.get(PROFILE_LABEL))

    ops: list[PatchOp] = []
    if current_scheduler != scheduler_name:
        # "add" replaces an existing member (RFC 6902 4.1), so this also overrides default-scheduler
        ops.append(add_op("/spec/schedulerName", scheduler_name))
    ops.extend(label_ops(pod, PROFILE_LABEL, chosen.name))
    outcome = Outcome.SCHEDULED if ops else Outcome.ALREADY_SCHEDULED
    return Answer(ops, choice_warnings + _unsupported_warnings(spec), outcome, chosen.name)


def _choose(
    matches: list[FargateProfile], requested: str | None
) -> tuple[FargateProfile, tuple[str, ...]]:
    by_name = {profile.name: profile for profile in matches}
    if requested is not None and requested in by_name:
        return by_name[requested], ()
    chosen = matches[0]
    warnings: list[str] = []
    if requested is not None:
        warnings.append(
            f"label {PROFILE_LABEL}={requested!r} names no Fargate profile this pod matches; "
            f"using {chosen.name!r}"
        )
    if len(matches) > 1:
        others = ", ".join(repr(profile.name) for profile in matches[1:])
        warnings.append(
            f"pod matches several Fargate profiles; using {chosen.name!r} (first by name), "
            f"not {others}; set label {PROFILE_LABEL} to choose"
        )
    return chosen, tuple(warnings)


def _unsupported_warnings(spec: JsonObject) -> tuple[str, ...]:
    warnings: list[str] = []
    if spec.get("hostNetwork") is True:
        warnings.append("Fargate does not support hostNetwork: true; the pod will not start")
    for list_name in CONTAINER_LISTS:
        for container in objects(spec.get(list_name)):
            name = container.get("name", "")
            what = "init container" if list_name == "initContainers" else "container"
            for port in objects(container.get("ports")):
                if port.get("hostPort"):
                    warnings.append(
                        f"{what} {name!r} sets hostPort {port['hostPort']}, "
                        "which Fargate does not support"
                    )
            security = container.get("securityContext")
            if isinstance(security, dict) and security.get("privileged") is True:
                warnings.append(f"{what} {name!r} is privileged, which Fargate does not allow")
    for volume in objects(spec.get("volumes")):
        if "hostPath" in volume:
            warnings.append(
                f"volume {volume.get('name', '')!r} is a hostPath volume, "
                "which Fargate does not support"
            )
    return tuple(warnings)


def _owned_by_daemonset(metadata: JsonObject) -> bool:
    return any(
        owner.get("kind") == "DaemonSet" for owner in objects(metadata.get("ownerReferences"))
    )
