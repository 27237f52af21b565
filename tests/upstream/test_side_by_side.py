"""Upstream's webhook and ours, side by side on the same generated inputs (docs/upstream.md,
"Side by side"): every difference is a named rule of tests/upstream/compare.py or a failure
that prints the smallest pod showing it."""

from __future__ import annotations

import json
import os
import random
import re
import time
from collections import Counter

import httpx
import pytest

from tests.upstream import cases
from tests.upstream.cases import Case
from tests.upstream.compare import RULES, TOKEN_EXPIRATION_CAP, Difference, check_case, shrink
from tests.upstream.conftest import World
from tests.upstream.peers import Peer

CASES = int(os.environ.get("UPSTREAM_CASES", "2000"))
SHOWN = 3  # failing cases shrunk and printed; the rest are counted


def _report(world: World, case: Case, found: dict[str, list[Difference]]) -> str:
    lines = [
        f"case {case.index} (seed {world.seed}), flag set {case.flag_set.name}: "
        f"{' '.join(case.flag_set.flags) or '(defaults)'}",
        "smallest pod that still differs:",
        json.dumps(case.pod, indent=1, ensure_ascii=False),
        "ServiceAccount: "
        + json.dumps(
            world.accounts.get(
                (case.pod["metadata"]["namespace"], case.pod["spec"]["serviceAccountName"])
            ),
            ensure_ascii=False,
        ),
    ]
    for where, differences in found.items():
        lines.append(f"-- {where}")
        lines.extend(f"  {d}" for d in differences[:8])
    return "\n".join(lines)


# The session's servers start in this test's setup; the cases take under a minute here.
@pytest.mark.timeout(300)
def test_generated_cases_give_the_same_pods(world: World) -> None:
    start = time.monotonic()
    generated = cases.cases(world.rng, world.sets, CASES, world.accounts, world.entries)
    failing: list[tuple[Case, dict[str, list[Difference]]]] = []
    for case in generated:
        name = case.flag_set.name
        found = check_case(world.senders[name], world.peers[name], case, world.rules_used)
        if found:
            failing.append((case, found))
    elapsed = time.monotonic() - start
    sent = sum(sum(s.sent.values()) for s in world.senders.values())
    world.note(
        f"{len(generated)} cases, {sent} reviews sent in {elapsed:.1f} s; "
        f"{len(failing)} with a difference no rule covers"
    )
    changed = sum(s.changed["ours"] for s in world.senders.values())
    answered = sum(s.sent["ours"] for s in world.senders.values())
    per_set = ", ".join(
        f"{name} {s.changed['ours']}/{s.sent['ours']}" for name, s in world.senders.items()
    )
    world.note(f"{changed} of our {answered} answers changed the pod ({per_set})")
    if not failing:
        return
    kinds = Counter(
        re.sub(r"/\d+", "/N", d.where) for _, found in failing for ds in found.values() for d in ds
    )
    reports = [
        "where the pods differ, over every failing case: "
        + ", ".join(f"{where} x{count}" for where, count in kinds.most_common(12))
    ]
    for case, _found in failing[:SHOWN]:
        name = case.flag_set.name

        def differs(trial: Case, name: str = name) -> bool:
            return bool(check_case(world.senders[name], world.peers[name], trial, set()))

        small = shrink(case, differs)
        name = small.flag_set.name
        reports.append(
            _report(world, small, check_case(world.senders[name], world.peers[name], small, set()))
        )
    pytest.fail(
        f"{len(failing)} of {len(generated)} cases differ from upstream (seed {world.seed}); "
        f"the first {min(SHOWN, len(failing))}, shrunk:\n\n" + "\n\n".join(reports),
        pytrace=False,
    )


def test_malformed_review_is_a_4xx_here(world: World) -> None:
    """Rule malformed-review-4xx: upstream answers 200 with allowed false, ours a 4xx."""
    rule = RULES["malformed-review-4xx"]
    for name, peers in world.peers.items():
        senders = world.senders[name]
        for label, _peer in peers.items():
            response = senders.clients[label].post(
                "/mutate",
                content=b'{"apiVersion": "admission.k8s.io/v1", "request": [',
                headers={"Content-Type": "application/json"},
            )
            senders.sent[label] += 1
            if label == "ours":
                assert 400 <= response.status_code < 500, (
                    rule.name,
                    response.status_code,
                    response.text,
                )
            else:
                assert response.status_code == 200, (rule.name, label, response.text)
                assert response.json()["response"]["allowed"] is False, (
                    rule.name,
                    label,
                    response.text,
                )
    world.rules_used.add(rule.name)


def _counters(text: str, families: tuple[str, ...]) -> dict[str, float]:
    """Samples of these families whose value is a count (not a duration), by name and labels."""
    values = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name_labels, _, value = line.rpartition(" ")
        name = name_labels.split("{", 1)[0]
        if not name.startswith(families):
            continue
        if ("latenc" in name or "duration" in name) and not name.endswith("_count"):
            continue
        values[name_labels] = float(value)
    return values


def _families(text: str) -> set[str]:
    return {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")}


FAMILIES = ("http_request", "pod_identity_webhook_")


def _scrape(peers: dict[str, Peer]) -> dict[str, str]:
    return {
        label: httpx.get(peer.metrics_url + "/metrics", timeout=5).text
        for label, peer in peers.items()
    }


def _moved(before: str, after: str, upstream_families: set[str]) -> dict[str, float]:
    """Samples of upstream's families that changed between the two scrapes, by how much."""
    old, new = _counters(before, FAMILIES), _counters(after, FAMILIES)
    return {
        key: value - old.get(key, 0.0)
        for key, value in new.items()
        if key.split("{", 1)[0].removesuffix("_count") in upstream_families
        and value != old.get(key, 0.0)
    }


def test_metrics_count_the_same_admissions(world: World) -> None:
    """The same reviews to every server of a flag set: upstream's own families (names, labels
    and counts; durations by their `_count`) move the same way in both expositions."""
    sample = cases.cases(random.Random(world.seed), world.sets, 60, world.accounts, world.entries)
    for name, peers in world.peers.items():
        before = _scrape(peers)
        for case in sample:
            if case.flag_set.name == name:
                check_case(world.senders[name], peers, case, set())
        after = _scrape(peers)
        for label in peers:
            if label == "ours":
                continue
            upstream_families = _families(after[label])
            theirs = _moved(before[label], after[label], upstream_families)
            ours = _moved(before["ours"], after["ours"], upstream_families)
            assert theirs, f"{name} {label}: no sample of {FAMILIES} moved"
            assert theirs == ours, (name, label, sorted(set(theirs.items()) ^ set(ours.items())))


def test_the_cap_is_what_kube_apiserver_takes(world: World) -> None:
    """Rule token-expiration-cap: 2^32 is the largest expirationSeconds kube-apiserver keeps."""
    for seconds, taken in ((TOKEN_EXPIRATION_CAP, True), (TOKEN_EXPIRATION_CAP + 1, False)):
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": f"cap-{seconds}", "namespace": cases.NAMESPACES[0]},
            "spec": {
                "serviceAccountName": "sa-0",
                "containers": [{"name": "app", "image": "app:1"}],
                "volumes": [
                    {
                        "name": "token",
                        "projected": {
                            "sources": [
                                {"serviceAccountToken": {"path": "t", "expirationSeconds": seconds}}
                            ]
                        },
                    }
                ],
            },
        }
        result = world.plane.kubectl(
            "create", "--dry-run=server", "-f", "-", stdin=json.dumps(pod), check=False
        )
        assert (result.returncode == 0) is taken, (seconds, result.stderr)
