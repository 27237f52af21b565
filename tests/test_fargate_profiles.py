"""The Fargate profiles file: both shapes and every validation error."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import ROOT
from webhook.mutation.fargate import FargateProfile, Selector
from webhook.sources.errors import ConfigError
from webhook.sources.files.fargateprofiles import parse_fargate_profiles

EXPECTED = (
    FargateProfile("fp-a", (Selector("default", (("app", "web"),)), Selector("kube-system"))),
    FargateProfile("fp-b", (Selector("batch-*"),)),
)
AS_LIST = b"""
- name: fp-a
  podExecutionRoleARN: arn:aws:iam::111122223333:role/x
  status: ACTIVE
  selectors:
  - namespace: default
    labels: {app: web}
  - namespace: kube-system
- name: fp-b
  selectors: [{namespace: batch-*}]
"""
AS_MAPPING = b"""
apiVersion: eksctl.io/v1alpha5
kind: ClusterConfig
metadata: {name: c, region: us-west-2}
fargateProfiles:
- name: fp-a
  selectors:
  - {namespace: default, labels: {app: web}}
  - {namespace: kube-system, labels: null}
- {name: fp-b, selectors: [{namespace: batch-*}]}
"""


@pytest.mark.parametrize("content", [AS_LIST, AS_MAPPING], ids=["list", "mapping"])
def test_both_shapes_parse_to_the_same_profiles(content: bytes) -> None:
    assert parse_fargate_profiles(content, source="f.yaml") == EXPECTED


@pytest.mark.parametrize(
    "content", [b"", b"fargateProfiles:\n", b"[]"], ids=["empty", "null", "list"]
)
def test_empty_files_hold_no_profiles(content: bytes) -> None:
    assert parse_fargate_profiles(content, source="f.yaml") == ()


def test_the_example_file_parses() -> None:
    path = ROOT / "examples" / "fargate-profiles.yaml"
    names = [profile.name for profile in parse_fargate_profiles(path.read_bytes(), source=path)]
    assert names == ["fp-default", "fp-batch"]


def selectors(count: int) -> str:
    return "[" + ", ".join(f"{{namespace: n{i}}}" for i in range(count)) + "]"


def profiles(count: int) -> str:
    return "\n".join(f"- {{name: p{i}, selectors: [{{namespace: n}}]}}" for i in range(count))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[a", "f.yaml: not valid YAML: "),
        (
            "kind: ClusterConfig",
            "f.yaml: expected a list of profiles or a mapping with a fargateProfiles key",
        ),
        ("fargateProfiles: 3", "f.yaml: fargateProfiles: expected a list of profiles, found int"),
        ("just text", "f.yaml: expected a list of profiles, found str"),
        (profiles(11), "f.yaml: 11 profiles; EKS allows at most 10"),
        ("- fp-a", "f.yaml: [0]: expected a profile {name: ..., selectors: [...]}"),
        (
            "- {selectors: [{namespace: n}]}",
            "f.yaml: [0].name: missing or empty; every profile needs a name",
        ),
        ("- {name: '', selectors: [{namespace: n}]}", "f.yaml: [0].name: missing or empty"),
        ("- {name: 7, selectors: [{namespace: n}]}", "f.yaml: [0].name: missing or empty"),
        (
            "- {name: a, selectors: [{namespace: n}]}\n- {name: b, selectors: [{namespace: n}]}\n"
            "- {name: a, selectors: [{namespace: m}]}",
            "f.yaml: [2].name: 'a' is also the name of [0]; profile names must be unique",
        ),
        (
            "fargateProfiles: [{name: a}]",
            "f.yaml: fargateProfiles[0] (profile 'a').selectors: missing or empty; "
            "a profile needs 1 to 5 selectors",
        ),
        ("- {name: a, selectors: []}", "f.yaml: [0] (profile 'a').selectors: missing or empty"),
        (
            f"- {{name: a, selectors: {selectors(6)}}}",
            "f.yaml: [0] (profile 'a').selectors: 6 selectors; EKS allows at most 5 per profile",
        ),
        (
            "- {name: a, selectors: [default]}",
            "f.yaml: [0] (profile 'a').selectors[0]: expected a selector {namespace: ..., labels: {...}}",
        ),
        (
            "- {name: a, selectors: [{namespace: n}, {labels: {app: web}}]}",
            "f.yaml: [0] (profile 'a').selectors[1].namespace: missing or empty; "
            "every selector needs a namespace",
        ),
        (
            "- {name: a, selectors: [{namespace: ''}]}",
            "f.yaml: [0] (profile 'a').selectors[0].namespace: missing or empty",
        ),
        (
            "- {name: a, selectors: [{namespace: n, labels: [app]}]}",
            "f.yaml: [0] (profile 'a').selectors[0].labels: expected a mapping of label keys to values",
        ),
        (
            "- {name: a, selectors: [{namespace: n, labels: {a: '1', b: '2', c: '3', d: '4', e: '5', f: '6'}}]}",
            "f.yaml: [0] (profile 'a').selectors[0].labels: 6 labels; EKS allows at most 5 per selector",
        ),
        (
            "- {name: a, selectors: [{namespace: n, labels: {1: x}}]}",
            "f.yaml: [0] (profile 'a').selectors[0].labels: label key 1 is not a string",
        ),
        (
            "- {name: a, selectors: [{namespace: n, labels: {spot: true}}]}",
            "f.yaml: [0] (profile 'a').selectors[0].labels['spot']: value True is not a string "
            '(quote values such as "true" and "1")',
        ),
    ],
    ids=[
        "bad-yaml",
        "mapping-without-key",
        "key-not-a-list",
        "not-a-list",
        "too-many-profiles",
        "profile-not-a-mapping",
        "name-missing",
        "name-empty",
        "name-not-a-string",
        "name-duplicate",
        "selectors-missing",
        "selectors-empty",
        "too-many-selectors",
        "selector-not-a-mapping",
        "namespace-missing",
        "namespace-empty",
        "labels-not-a-mapping",
        "too-many-labels",
        "label-key-not-a-string",
        "label-value-not-a-string",
    ],
)
def test_invalid_files_name_file_profile_field_and_reason(content: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_fargate_profiles(content.encode(), source=Path("f.yaml"))
    assert str(caught.value).startswith(message)


def test_ten_profiles_five_selectors_five_labels_are_allowed() -> None:
    labels = "{a: '1', b: '2', c: '3', d: '4', e: '5'}"
    selector = f"{{namespace: n, labels: {labels}}}"
    content = "\n".join(
        f"- {{name: p{i}, selectors: [{', '.join([selector] * 5)}]}}" for i in range(10)
    )
    parsed = parse_fargate_profiles(content.encode(), source="f.yaml")
    assert len(parsed) == 10 and all(len(p.selectors) == 5 for p in parsed)
