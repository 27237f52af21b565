"""The side-by-side suite's own logic, without any server (tests/upstream runs the servers):
every rule names a row of docs/upstream.md, the comparison lets through exactly what the rules
say, shrinking finds a smaller pod, and the generator covers what docs/upstream.md promises."""

from __future__ import annotations

import base64
import copy
import json
import random
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.upstream import cases
from tests.upstream.compare import (
    RULES,
    TOKEN_EXPIRATION_CAP,
    Answer,
    Senders,
    compare,
    shrink,
)
from tests.upstream.peers import V1, Peer, pins

ROOT = Path(__file__).resolve().parent.parent
UPSTREAM_DOC = (ROOT / "docs" / "upstream.md").read_text()


def _rows() -> dict[str, str]:
    rows = {}
    for line in UPSTREAM_DOC.splitlines():
        if line.startswith("| ") and not line.startswith("| area") and not line.startswith("|---"):
            rows[line.split(" | ")[0].removeprefix("| ")] = line
    return rows


@pytest.mark.parametrize("name", sorted(RULES))
def test_each_rule_names_its_row_of_docs_upstream(name: str) -> None:
    rule = RULES[name]
    if rule.row == "Side by side":
        section = UPSTREAM_DOC.split("## Side by side", 1)
        assert len(section) == 2 and f"`{name}`" in section[1], name
        return
    row = _rows().get(rule.row)
    assert row is not None, f"docs/upstream.md has no row {rule.row!r} for rule {name}"
    assert f"`{name}`" in row, f"the row {rule.row!r} does not name its rule `{name}`"


def test_every_rule_named_in_docs_is_a_rule() -> None:
    phrases = re.findall(r"Side-by-side rules? (.*?)(?:\. | \|)", UPSTREAM_DOC)
    named = {name for phrase in phrases for name in re.findall(r"`([\w.-]+)`", phrase)}
    assert len(named) >= 11 and named <= set(RULES), named - set(RULES)


POD: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "p", "namespace": "side-a"},
    "spec": {"serviceAccountName": "sa-1", "containers": [{"name": "app", "image": "a"}]},
}


def _answer(pod: dict[str, Any], **envelope: Any) -> Answer:
    base = {"apiVersion": V1, "kind": "AdmissionReview", "uid": "u", "allowed": True}
    return Answer(200, {"patchType": "JSONPatch", "status": None, **base, **envelope}, pod)


def _token_pod(seconds: int) -> dict[str, Any]:
    pod = copy.deepcopy(POD)
    pod["spec"]["volumes"] = [
        {
            "name": "aws-iam-token",
            "projected": {"sources": [{"serviceAccountToken": {"expirationSeconds": seconds}}]},
        }
    ]
    return pod


def test_a_difference_no_rule_covers_is_reported() -> None:
    other = copy.deepcopy(POD)
    other["spec"]["containers"][0]["env"] = [{"name": "AWS_REGION", "value": "x"}]
    used: set[str] = set()
    found = compare(_answer(POD), _answer(other), "3bf80a34", used)
    assert [d.where for d in found] == ["pod/spec/containers/0/env"]


def test_go_marshalling_artifacts_are_not_differences() -> None:
    theirs = copy.deepcopy(POD)
    theirs["spec"]["containers"][0]["resources"] = {}
    theirs["spec"]["containers"][0]["env"] = [{"name": "A"}]
    ours = copy.deepcopy(POD)
    ours["spec"]["containers"][0]["env"] = [{"name": "A", "value": ""}]
    used: set[str] = set()
    assert compare(_answer(theirs), _answer(ours), "3bf80a34", used) == []
    assert used == {"go-marshalling"}


def test_the_cap_rule_takes_only_2_32_against_a_larger_value() -> None:
    used: set[str] = set()
    big = _answer(_token_pod(TOKEN_EXPIRATION_CAP + 5))
    assert compare(big, _answer(_token_pod(TOKEN_EXPIRATION_CAP)), "3bf80a34", used) == []
    assert "token-expiration-cap" in used
    assert compare(big, _answer(_token_pod(TOKEN_EXPIRATION_CAP - 1)), "3bf80a34", set())


def test_missing_typemeta_is_allowed_only_from_v0_6_17() -> None:
    bare = _answer(POD, apiVersion=None, kind=None)
    assert compare(bare, _answer(POD), "v0.6.17", set()) == []
    assert compare(bare, _answer(POD), "3bf80a34", set())


def test_envelope_fields_are_compared() -> None:
    assert compare(_answer(POD, uid="other"), _answer(POD), "3bf80a34", set())
    assert compare(_answer(POD, allowed=False), _answer(POD), "3bf80a34", set())


def test_content_type_rule_is_the_one_pair_only() -> None:
    theirs = _answer(POD)
    theirs.content_type = "text/plain; charset=utf-8"
    used: set[str] = set()
    assert compare(theirs, _answer(POD), "3bf80a34", used) == [] and "content-type" in used
    theirs.content_type = "application/yaml"
    assert compare(theirs, _answer(POD), "3bf80a34", set())


def test_shrink_keeps_removing_while_the_difference_stays() -> None:
    big = copy.deepcopy(POD)
    big["spec"]["containers"] = [
        {"name": "app", "image": "a", "env": [{"name": "X", "value": "1"}]},
        {"name": "side", "image": "b", "env": [{"name": "BAD", "value": "1"}]},
    ]
    big["metadata"]["annotations"] = {"a": "1", "b": "2"}
    flag_set = cases.FlagSet("defaults", ())

    def differs(case: cases.Case) -> bool:  # "the bug": a variable named BAD anywhere
        return "BAD" in str(case.pod)

    small = shrink(cases.Case(0, flag_set, big), differs)
    assert small.pod["spec"]["containers"] == [
        {"name": "side", "image": "b", "env": [{"name": "BAD", "value": "1"}]}
    ]
    assert "annotations" not in small.pod["metadata"]


def test_the_generator_is_seeded_and_covers_what_the_docs_promise() -> None:
    sets = cases.flag_sets(Path("/nonexistent"))
    first = cases.cases(random.Random(5), sets, 2000)
    again = cases.cases(random.Random(5), sets, 2000)
    assert [c.pod for c in first] == [c.pod for c in again]
    text = [str(c.pod) for c in first]
    pods = [c.pod for c in first]
    init = [i for p in pods for i in p["spec"].get("initContainers", [])]
    assert any(i.get("restartPolicy") == "Always" for i in init), "native sidecars"
    assert any("restartPolicy" not in i for i in init), "plain init containers"
    assert any(len(p["spec"]["containers"]) == 3 for p in pods)
    assert any("valueFrom" in t and "AWS_ROLE_ARN" in t for t in text)
    assert any("'windows'" in t for t in text)
    assert any(
        v.get("name") == cases.TOKEN_VOLUME for p in pods for v in p["spec"].get("volumes", [])
    )
    assert any(p["spec"]["serviceAccountName"] == cases.MISSING_ACCOUNT for p in pods)
    assert {c.flag_set.name for c in first} == {s.name for s in sets}
    annotations = [k for p in pods for k in p["metadata"].get("annotations", {})]
    assert any(k.endswith("/skip-containers") for k in annotations)
    assert any(k.endswith("/token-expiration") for k in annotations)


def test_upstream_versions_are_pinned_beside_the_control_plane() -> None:
    values = pins()
    assert values["UPSTREAM_VERSION"] == "v0.6.17"
    assert values["UPSTREAM_REFERENCE_VERSION"].endswith("-3bf80a348116")
    assert values["UPSTREAM_MODULE"] == "github.com/aws/amazon-eks-pod-identity-webhook"


def test_a_nameless_composed_role_is_allowed_only_where_ours_left_the_pod() -> None:
    theirs = copy.deepcopy(POD)
    theirs["spec"]["volumes"] = [{"name": "aws-iam-token", "projected": {"sources": []}}]
    upstream = _answer(theirs)
    upstream.sent = POD
    unchanged = _answer(copy.deepcopy(POD))
    unchanged.sent = POD
    used: set[str] = set()
    assert compare(upstream, unchanged, "3bf80a34", used, nameless_role=True) == []
    assert "compose-empty-role" in used
    assert compare(upstream, unchanged, "3bf80a34", set())  # not a nameless-role case
    changed = _answer(copy.deepcopy(POD) | {"kind": "Other"})
    changed.sent = POD
    assert compare(upstream, changed, "3bf80a34", set(), nameless_role=True)


def test_a_case_reads_its_service_accounts_annotation_under_its_prefix() -> None:
    accounts = {("side-a", "sa-1"): {"eks.amazonaws.com/role-arn": "", "x/role-arn": "r"}}
    case = cases.Case(0, cases.FlagSet("defaults", ()), POD, accounts)
    assert case.annotation("role-arn") == ""
    assert case.with_pod(POD).annotation("audience") is None
    other = cases.Case(0, cases.FlagSet("other", (), prefix="x"), POD, accounts)
    assert other.annotation("role-arn") == "r"


def test_config_map_rules_apply_only_to_what_the_entry_leaves_out_or_sets_low() -> None:
    def token_pod(audience: str | None, seconds: int) -> dict[str, Any]:
        pod = _token_pod(seconds)
        source = pod["spec"]["volumes"][0]["projected"]["sources"][0]["serviceAccountToken"]
        if audience is not None:
            source["audience"] = audience
        return pod

    ours = _answer(token_pod("sts.amazonaws.com", 600))
    used: set[str] = set()
    low = {"RoleARN": "arn:aws:iam::111122223333:role/app", "TokenExpiration": 100}
    upstream = _answer(token_pod(None, 100))
    assert compare(upstream, ours, "3bf80a34", used, config_entry=low) == []
    assert {"config-map-audience", "config-map-expiration"} <= used
    assert compare(upstream, ours, "3bf80a34", set())  # without the entry: differences
    with_audience = {**low, "Audience": "sts.amazonaws.com"}
    assert compare(upstream, ours, "3bf80a34", set(), config_entry=with_audience)
    fine = {**with_audience, "TokenExpiration": 3600}
    assert compare(
        _answer(token_pod("sts.amazonaws.com", 3600)), ours, "3bf80a34", set(), config_entry=fine
    )


def test_a_patch_that_does_not_apply_is_a_difference_not_a_crash() -> None:
    bad = [{"op": "add", "path": "/spec/nothing/here/-", "value": 1}]
    body = {
        "apiVersion": V1,
        "kind": "AdmissionReview",
        "response": {
            "uid": "u",
            "allowed": True,
            "patchType": "JSONPatch",
            "patch": base64.b64encode(json.dumps(bad).encode()).decode(),
        },
    }
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=body))
    peer = Peer("3bf80a34", "https://127.0.0.1:1", "http://127.0.0.1:2", (V1,), None, Path())  # type: ignore[arg-type]
    senders = Senders([], None)  # type: ignore[arg-type]
    senders.clients[peer.label] = httpx.Client(base_url=peer.url, transport=transport)
    senders.sent[peer.label] = senders.changed[peer.label] = 0
    answer = senders.answer(peer, POD, V1, "u")
    assert "patch does not apply" in answer.pod
    assert compare(answer, _answer(POD), "3bf80a34", set())


def test_an_unknown_field_may_be_gone_upstream_only_if_ours_kept_it() -> None:
    sent = copy.deepcopy(POD)
    sent["spec"]["containers"][0][cases.UNKNOWN_FIELD] = {"on": True}
    ours = _answer(copy.deepcopy(sent))
    ours.sent = sent
    used: set[str] = set()
    assert compare(_answer(copy.deepcopy(POD)), ours, "3bf80a34", used) == []
    assert "unknown-fields" in used
    dropped = _answer(copy.deepcopy(POD))
    dropped.sent = sent
    assert compare(_answer(copy.deepcopy(sent)), dropped, "3bf80a34", set())  # ours lost it
