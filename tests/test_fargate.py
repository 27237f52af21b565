"""The Fargate core: matching, choice, skip rules, warnings, idempotence."""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch
import pytest

from webhook.mutation.answer import Outcome
from webhook.mutation.fargate import (
    FargateProfile,
    Selector,
    schedule_on_fargate,
    selector_matches,
)
from webhook.mutation.wildcards import wildcard_matches

SCHEDULER = "fargate-scheduler"
LABEL_PATH = "/metadata/labels/eks.amazonaws.com~1fargate-profile"


def pod(labels: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": "p"}
    if labels is not None:
        metadata["labels"] = labels
    return {"metadata": metadata, "spec": {"containers": [{"name": "c", "image": "i"}], **spec}}


def schedule(p: dict[str, Any], profiles: list[FargateProfile], namespace: str = "ns") -> Any:
    return schedule_on_fargate(p, namespace, profiles=profiles, scheduler_name=SCHEDULER)


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("prod", "prod", True),
        ("prod", "prod-1", False),
        ("prod-*", "prod-1", True),
        ("prod-*", "prod-", True),
        ("prod-*", "dev-1", False),
        ("*", "", True),
        ("team-?", "team-a", True),
        ("team-?", "team-ab", False),
        ("team-?", "team-", False),
        ("a[bc]", "ab", False),
        ("a[bc]", "a[bc]", True),
        ("a.b", "axb", False),
        ("*-?", "x-1", True),
    ],
    ids=lambda value: repr(value),
)
def test_wildcard_matches(pattern: str, value: str, expected: bool) -> None:
    assert wildcard_matches(pattern, value) is expected


@pytest.mark.parametrize(
    ("selector", "namespace", "labels", "expected"),
    [
        (Selector("ns"), "ns", {}, True),
        (Selector("ns"), "other", {}, False),
        (Selector("ns-*"), "ns-prod", {}, True),
        (Selector("ns", (("app", "web"),)), "ns", {"app": "web", "x": "y"}, True),
        (Selector("ns", (("app", "web"),)), "ns", {"app": "db"}, False),
        (Selector("ns", (("app", "web"),)), "ns", {}, False),
        (Selector("ns", (("app", "web"), ("tier", "front"))), "ns", {"app": "web"}, False),
        (
            Selector("ns", (("app", "web"), ("tier", "front"))),
            "ns",
            {"app": "web", "tier": "front"},
            True,
        ),
        (Selector("ns", (("app", "web-*"),)), "ns", {"app": "web-1"}, True),
        (Selector("ns", (("app", "web-?"),)), "ns", {"app": "web-12"}, False),
        (Selector("ns", (("team*", "data"),)), "ns", {"team-a": "data"}, True),
    ],
    ids=[
        "namespace-exact",
        "namespace-differs",
        "namespace-wildcard",
        "label-present",
        "label-value-differs",
        "label-missing",
        "labels-and-one-missing",
        "labels-and-all-present",
        "label-value-star",
        "label-value-question-one-char",
        "label-key-wildcard",
    ],
)
def test_selector_matches(
    selector: Selector, namespace: str, labels: dict[str, str], expected: bool
) -> None:
    assert selector_matches(selector, namespace, labels) is expected


def test_profile_matches_when_any_of_several_selectors_matches() -> None:
    profile = FargateProfile("fp", (Selector("a"), Selector("b", (("app", "web"),))))
    assert schedule(pod({"app": "web"}), [profile], "b").detail == "fp"
    assert schedule(pod(), [profile], "a").detail == "fp"
    assert schedule(pod(), [profile], "b").outcome is Outcome.NO_MATCH


def test_matching_pod_gets_scheduler_and_label() -> None:
    result = schedule(pod({"app": "web"}), [FargateProfile("fp", (Selector("ns"),))])
    assert result.ops == [
        {"op": "add", "path": "/spec/schedulerName", "value": SCHEDULER},
        {"op": "add", "path": LABEL_PATH, "value": "fp"},
    ]
    assert result.outcome is Outcome.SCHEDULED
    assert result.warnings == ()


@pytest.mark.parametrize(
    ("p", "label_op"),
    [
        (
            pod(),
            {
                "op": "add",
                "path": "/metadata/labels",
                "value": {"eks.amazonaws.com/fargate-profile": "fp"},
            },
        ),
        (
            {"spec": {"containers": []}},
            {
                "op": "add",
                "path": "/metadata",
                "value": {"labels": {"eks.amazonaws.com/fargate-profile": "fp"}},
            },
        ),
    ],
    ids=["no-labels", "no-metadata"],
)
def test_missing_labels_or_metadata_are_created(
    p: dict[str, Any], label_op: dict[str, Any]
) -> None:
    result = schedule(p, [FargateProfile("fp", (Selector("ns"),))])
    assert result.ops[1] == label_op


def test_default_scheduler_is_replaced() -> None:
    p = pod(schedulerName="default-scheduler")
    result = schedule(p, [FargateProfile("fp", (Selector("ns"),))])
    assert jsonpatch.apply_patch(p, result.ops)["spec"]["schedulerName"] == SCHEDULER


def test_non_matching_pod_gets_no_patch() -> None:
    result = schedule(pod({"app": "web"}), [FargateProfile("fp", (Selector("other"),))])
    assert (result.ops, result.outcome, result.detail) == ([], Outcome.NO_MATCH, "")


def test_label_naming_a_matching_profile_picks_it_without_warning() -> None:
    profiles = [FargateProfile("b", (Selector("ns"),)), FargateProfile("a", (Selector("ns"),))]
    result = schedule(pod({"eks.amazonaws.com/fargate-profile": "b"}), profiles)
    assert result.detail == "b"
    assert result.ops == [{"op": "add", "path": "/spec/schedulerName", "value": SCHEDULER}]
    assert result.warnings == ()


def test_several_matches_pick_the_first_by_name_and_warn() -> None:
    profiles = [
        FargateProfile("c", (Selector("ns"),)),
        FargateProfile("a", (Selector("n?"),)),
        FargateProfile("b", (Selector("*"),)),
        FargateProfile("z", (Selector("other"),)),
    ]
    result = schedule(pod(), profiles)
    assert result.detail == "a"
    assert result.warnings == (
        "pod matches several Fargate profiles; using 'a' (first by name), not 'b', 'c'; "
        "set label eks.amazonaws.com/fargate-profile to choose",
    )


def test_label_naming_a_profile_the_pod_does_not_match_is_replaced_with_a_warning() -> None:
    profiles = [FargateProfile("a", (Selector("ns"),)), FargateProfile("x", (Selector("other"),))]
    result = schedule(pod({"eks.amazonaws.com/fargate-profile": "x"}), profiles)
    assert result.detail == "a"
    assert {"op": "add", "path": LABEL_PATH, "value": "a"} in result.ops
    assert result.warnings == (
        "label eks.amazonaws.com/fargate-profile='x' names no Fargate profile this pod "
        "matches; using 'a'",
    )


@pytest.mark.parametrize(
    ("p", "outcome"),
    [
        (pod(schedulerName="my-scheduler"), Outcome.OWN_SCHEDULER),
        (
            {
                "metadata": {
                    "ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "d"}]
                },
                "spec": {"containers": []},
            },
            Outcome.DAEMONSET,
        ),
        (pod(nodeName="node-1"), Outcome.BOUND),
    ],
    ids=["own-scheduler", "daemonset", "bound-to-node"],
)
def test_pods_fargate_must_leave_alone_get_no_patch(p: dict[str, Any], outcome: Outcome) -> None:
    result = schedule(p, [FargateProfile("fp", (Selector("*"),))])
    assert (result.ops, result.warnings, result.outcome) == ([], (), outcome)


def test_replicaset_owned_pod_is_scheduled() -> None:
    p = pod()
    p["metadata"]["ownerReferences"] = [{"kind": "ReplicaSet", "name": "r"}]
    assert schedule(p, [FargateProfile("fp", (Selector("ns"),))]).outcome is Outcome.SCHEDULED


def test_unsupported_features_are_warned_about() -> None:
    p = pod(
        hostNetwork=True,
        initContainers=[{"name": "init", "securityContext": {"privileged": True}}],
        volumes=[
            {"name": "logs", "hostPath": {"path": "/var/log"}},
            {"name": "tmp", "emptyDir": {}},
        ],
    )
    p["spec"]["containers"] = [
        {"name": "web", "ports": [{"containerPort": 80, "hostPort": 8080}, {"containerPort": 9}]},
        {"name": "sidecar", "securityContext": {"privileged": False}},
    ]
    result = schedule(p, [FargateProfile("fp", (Selector("ns"),))])
    assert result.warnings == (
        "Fargate does not support hostNetwork: true; the pod will not start",
        "init container 'init' is privileged, which Fargate does not allow",
        "container 'web' sets hostPort 8080, which Fargate does not support",
        "volume 'logs' is a hostPath volume, which Fargate does not support",
    )


def test_unsupported_features_of_a_non_matching_pod_are_not_warned_about() -> None:
    result = schedule(pod(hostNetwork=True), [FargateProfile("fp", (Selector("other"),))])
    assert result.warnings == ()


@pytest.mark.parametrize(
    "p",
    [
        pod(),
        pod({"app": "web"}),
        {"spec": {"containers": []}},
        pod(schedulerName="default-scheduler"),
    ],
    ids=["no-labels", "labels", "no-metadata", "default-scheduler"],
)
def test_patch_applies_and_a_second_pass_yields_nothing(p: dict[str, Any]) -> None:
    profiles = [FargateProfile("b", (Selector("ns"),)), FargateProfile("a", (Selector("*"),))]
    original = copy.deepcopy(p)
    first = schedule(p, profiles)
    assert p == original  # the core never changes its input
    mutated = jsonpatch.apply_patch(p, first.ops)
    assert mutated["spec"]["schedulerName"] == SCHEDULER
    assert mutated["metadata"]["labels"]["eks.amazonaws.com/fargate-profile"] == "a"
    second = schedule(mutated, profiles)
    assert second.ops == []
    assert second.outcome is Outcome.ALREADY_SCHEDULED
    assert second.detail == "a"


def test_odd_field_types_do_not_raise() -> None:
    p = pod(volumes="x", hostNetwork="yes")
    p["spec"]["containers"] = [{"name": "c", "ports": "80", "securityContext": "privileged"}]
    p["metadata"]["ownerReferences"] = "DaemonSet"
    result = schedule(p, [FargateProfile("fp", (Selector("ns"),))])
    assert result.outcome is Outcome.SCHEDULED
    assert result.warnings == ()
