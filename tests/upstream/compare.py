"""Sending one review to every server, applying each patch, and comparing what comes back.

A difference is either covered by a named rule (`RULES`, each standing for a row of
docs/upstream.md, which tests/test_upstream_rules.py checks is there) or it fails the run.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import json
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import jsonpatch

from tests.upstream.cases import (
    CONTAINER_CREDENTIALS_AUDIENCE,
    UNKNOWN_FIELD,
    Case,
    review,
    smaller,
)
from tests.upstream.peers import V1, V1BETA1, Peer


@dataclass(frozen=True)
class Rule:
    """A deliberate difference: its name, the first cell of its docs/upstream.md row, and what
    the suite does about it."""

    name: str
    row: str
    does: str


RULES = {
    rule.name: rule
    for rule in (
        Rule(
            "applied-pods",
            "Patches",
            "patches are compared as the pods they make, not as operations: upstream rewrites "
            "whole arrays, ours appends",
        ),
        Rule(
            "go-marshalling",
            "Patches",
            "`resources: {}` and `null` that Go's structs add to a rewritten container, and the "
            "empty strings their `omitempty` drops, are taken out of both pods before comparing",
        ),
        Rule(
            "unknown-fields",
            "Patches",
            "a container field unknown to upstream's structs is gone from a container upstream "
            "rewrote; ours must have kept it as sent",
        ),
        Rule(
            "admission-warnings",
            "Warnings",
            "`response.warnings` is ours only and left out of the envelope comparison",
        ),
        Rule(
            "typemeta-v0.6.17",
            "Response TypeMeta",
            "v0.6.17 answers without `apiVersion` and `kind`; ours echoes the request's, as the "
            "reference commit does",
        ),
        Rule(
            "token-expiration-cap",
            "`token-expiration` annotation above 2^32",
            "where upstream's expirationSeconds is above 2^32, ours must be exactly 2^32",
        ),
        Rule(
            "malformed-review-4xx",
            "Malformed review",
            "a review that cannot be decoded: upstream 200 with allowed false, ours a 4xx",
        ),
        Rule(
            "drawn-token-lifetime",
            "Side by side",
            "a container-credentials token's default lifetime is drawn at random in "
            "[79200, 86400] by both; any drawn value matches any other",
        ),
        Rule(
            "compose-empty-role",
            "Empty `role-arn` with `--compose-role-arn`",
            "with --compose-role-arn and an empty role-arn annotation, upstream mutates with "
            "`...:role/` (no role name); ours must have left the pod as it was",
        ),
        Rule(
            "config-map-audience",
            "ConfigMap `Audience`",
            "for a ConfigMap entry without Audience, upstream's token has no audience; ours "
            "must have --token-audience",
        ),
        Rule(
            "config-map-expiration",
            "ConfigMap `TokenExpiration`",
            "for a ConfigMap entry's TokenExpiration below 600, upstream keeps it; ours must "
            "have 600",
        ),
        Rule(
            "content-type",
            "Response Content-Type",
            "upstream's response is labelled text/plain, ours application/json; bodies compared",
        ),
    )
}

TOKEN_EXPIRATION_CAP = 2**32
MIN_TOKEN_EXPIRATION = 600
DEFAULT_TOKEN_AUDIENCE = "sts.amazonaws.com"  # the config-map flag set's --token-audience


@dataclass
class Answer:
    """One server's answer to one review, with the pod its patch makes."""

    status: int
    envelope: dict[str, Any]
    pod: Any
    warnings: list[str] = field(default_factory=list)
    content_type: str = "application/json"
    sent: Any = None  # the pod in the review


@dataclass
class Difference:
    where: str
    upstream: Any
    ours: Any

    def __str__(self) -> str:
        return f"{self.where}:\n    upstream: {self.upstream!r}\n    ours:     {self.ours!r}"


class Senders:
    """One keep-alive HTTPS client per server, reused for every review."""

    def __init__(self, peers: list[Peer], context: ssl.SSLContext) -> None:
        self.peers = peers
        self.clients = {
            p.label: httpx.Client(base_url=p.url, verify=context, timeout=10) for p in peers
        }
        self.sent: dict[str, int] = {p.label: 0 for p in peers}
        self.changed: dict[str, int] = {p.label: 0 for p in peers}  # answers that patched

    def close(self) -> None:
        for client in self.clients.values():
            client.close()

    def answer(self, peer: Peer, pod: dict[str, Any], api_version: str, uid: str) -> Answer:
        body = json.dumps(review(pod, api_version, uid)).encode()
        response = self.clients[peer.label].post(
            "/mutate", content=body, headers={"Content-Type": "application/json"}
        )
        self.sent[peer.label] += 1
        document = response.json()
        inner = document.get("response") or {}
        patch = inner.pop("patch", None)
        warnings = inner.pop("warnings", None) or []
        envelope = {
            "apiVersion": document.get("apiVersion"),
            "kind": document.get("kind"),
            **{k: inner.get(k) for k in ("uid", "allowed", "patchType")},
            "status": inner.get("status"),
        }
        applied: Any = copy.deepcopy(pod)
        if patch is not None:
            operations = json.loads(base64.b64decode(patch))
            try:
                applied = jsonpatch.apply_patch(applied, operations)
            except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as error:
                # a patch that does not apply is a difference to show, not a crash
                applied = {"patch does not apply": f"{error}: {operations}"}
        if applied != pod:
            self.changed[peer.label] += 1
        content_type = response.headers.get("content-type", "")
        return Answer(response.status_code, envelope, applied, warnings, content_type, pod)


def _normalise(value: Any) -> Any:
    """Rule go-marshalling: what Go's structs add to, or drop from, what they write back:
    `resources: {}` and `null` added; `""` dropped from fields tagged `omitempty` (an env var's
    `value`, a projected token's `audience`), which mean the same absent or empty."""
    if isinstance(value, dict):
        return {
            key: _normalise(item)
            for key, item in value.items()
            if item is not None and item != "" and not (key == "resources" and item == {})
        }
    if isinstance(value, list):
        return [_normalise(item) for item in value]
    return value


def _expirations(pod: Any) -> Iterator[tuple[int, int, dict[str, Any]]]:
    for vi, volume in enumerate(pod.get("spec", {}).get("volumes", []) or []):
        for si, source in enumerate((volume.get("projected") or {}).get("sources", []) or []):
            token = source.get("serviceAccountToken") if isinstance(source, dict) else None
            if isinstance(token, dict) and isinstance(token.get("expirationSeconds"), int):
                yield vi, si, token


def _unknown_fields(upstream: Any, ours: Any, sent: Any, used: set[str]) -> None:
    """Rule unknown-fields, on containers and init containers."""
    if not isinstance(sent, dict):
        return
    for key in ("containers", "initContainers"):
        given = sent.get("spec", {}).get(key, [])
        theirs = upstream.get("spec", {}).get(key, []) if isinstance(upstream, dict) else []
        mine = ours.get("spec", {}).get(key, []) if isinstance(ours, dict) else []
        for i, container in enumerate(given):
            if UNKNOWN_FIELD not in container or i >= len(theirs) or i >= len(mine):
                continue
            if UNKNOWN_FIELD not in theirs[i] and mine[i].get(UNKNOWN_FIELD) == _normalise(
                container[UNKNOWN_FIELD]
            ):
                del mine[i][UNKNOWN_FIELD]
                used.add("unknown-fields")


def _cap_expirations(upstream: Any, ours: Any, used: set[str]) -> None:
    """Rule token-expiration-cap: upstream keeps a lifetime above 2^32, ours caps it there."""
    mine = {(vi, si): token for vi, si, token in _expirations(ours)}
    for vi, si, token in _expirations(upstream):
        other = mine.get((vi, si))
        capped = other is not None and other.get("expirationSeconds") == TOKEN_EXPIRATION_CAP
        if token["expirationSeconds"] > TOKEN_EXPIRATION_CAP and capped:
            token["expirationSeconds"] = TOKEN_EXPIRATION_CAP
            used.add("token-expiration-cap")


def _drawn(pod: Any, used: set[str]) -> None:
    """Rule drawn-token-lifetime: the drawn value of a container-credentials token."""
    for _, _, token in _expirations(pod):
        drawn = 79200 <= token["expirationSeconds"] <= 86400
        if drawn and token.get("audience") == CONTAINER_CREDENTIALS_AUDIENCE:
            token["expirationSeconds"] = "drawn in [79200, 86400]"
            used.add("drawn-token-lifetime")


def _config_entry_rules(upstream: Any, ours: Any, entry: dict[str, Any], used: set[str]) -> None:
    """Rules config-map-audience and config-map-expiration, on the first token volume."""
    theirs = next(_expirations(upstream), None)
    mine = next(_expirations(ours), None)
    if theirs is None or mine is None:
        return
    token, our_token = theirs[2], mine[2]
    if (
        "Audience" not in entry
        and "audience" not in token
        and our_token.get("audience") == (DEFAULT_TOKEN_AUDIENCE)
    ):
        token["audience"] = DEFAULT_TOKEN_AUDIENCE
        used.add("config-map-audience")
    below = 0 < entry.get("TokenExpiration", 0) < MIN_TOKEN_EXPIRATION
    kept = below and token["expirationSeconds"] == entry["TokenExpiration"]
    if kept and our_token.get("expirationSeconds") == MIN_TOKEN_EXPIRATION:
        token["expirationSeconds"] = MIN_TOKEN_EXPIRATION
        used.add("config-map-expiration")


def diff(a: Any, b: Any, where: str = "") -> list[Difference]:
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[Difference] = []
        for key in sorted(set(a) | set(b), key=str):
            if key not in a or key not in b:
                out.append(
                    Difference(f"{where}/{key}", a.get(key, "<absent>"), b.get(key, "<absent>"))
                )
            else:
                out.extend(diff(a[key], b[key], f"{where}/{key}"))
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        out = []
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            out.extend(diff(x, y, f"{where}/{i}"))
        return out
    return [] if a == b else [Difference(where or "/", a, b)]


def compare(
    upstream: Answer,
    ours: Answer,
    upstream_label: str,
    used: set[str],
    *,
    nameless_role: bool = False,
    config_entry: dict[str, Any] | None = None,
) -> list[Difference]:
    """The differences no rule covers, between one upstream answer and ours. `nameless_role`:
    the case composes role ARNs and its ServiceAccount's role-arn annotation is empty;
    `config_entry`: the ConfigMap entry that gives the case's ServiceAccount its identity."""
    differences: list[Difference] = []
    if upstream.status != ours.status:
        differences.append(Difference("HTTP status", upstream.status, ours.status))
    if upstream.content_type != ours.content_type:
        if (
            upstream.content_type.startswith("text/plain")
            and ours.content_type == "application/json"
        ):
            used.add("content-type")
        else:
            differences.append(Difference("Content-Type", upstream.content_type, ours.content_type))
    theirs = dict(upstream.envelope)
    mine = dict(ours.envelope)
    if ours.warnings:
        used.add("admission-warnings")
    if upstream_label == "v0.6.17" and theirs["apiVersion"] is None and theirs["kind"] is None:
        theirs["apiVersion"], theirs["kind"] = mine["apiVersion"], mine["kind"]
        used.add("typemeta-v0.6.17")
    if theirs.get("patchType") != mine.get("patchType"):
        # a patch that changes nothing and no patch make the same pod
        used.add("applied-pods")
        theirs.pop("patchType"), mine.pop("patchType")
    differences.extend(diff(theirs, mine, "response"))
    if nameless_role and ours.pod == ours.sent:
        upstream = dataclasses.replace(upstream, pod=upstream.sent)
        used.add("compose-empty-role")
    upstream_pod = _normalise(copy.deepcopy(upstream.pod))
    our_pod = _normalise(copy.deepcopy(ours.pod))
    if upstream_pod != upstream.pod or our_pod != ours.pod:
        used.add("go-marshalling")
    _unknown_fields(upstream_pod, our_pod, ours.sent, used)
    _cap_expirations(upstream_pod, our_pod, used)
    if config_entry is not None:
        _config_entry_rules(upstream_pod, our_pod, config_entry, used)
    _drawn(upstream_pod, used)
    _drawn(our_pod, used)
    differences.extend(diff(upstream_pod, our_pod, "pod"))
    return differences


Check = Callable[[Case], dict[str, list[Difference]]]


def check_case(
    senders: Senders, peers: dict[str, Peer], case: Case, used: set[str]
) -> dict[str, list[Difference]]:
    """Every admission version each server speaks; for each upstream build and version, the
    differences with ours ("v0.6.17 admission.k8s.io/v1": [...]); empty lists left out."""
    ours = peers["ours"]
    found: dict[str, list[Difference]] = {}
    nameless_role = (
        "--compose-role-arn=true" in case.flag_set.flags and case.annotation("role-arn") == ""
    )
    for version in (V1, V1BETA1):
        uid = f"case-{case.index}-{version.rsplit('/', 1)[1]}"
        mine = senders.answer(ours, case.pod, version, uid)
        for label, peer in peers.items():
            if label == "ours" or version not in peer.admission_versions:
                continue
            theirs = senders.answer(peer, case.pod, version, uid)
            differences = compare(
                theirs,
                mine,
                label,
                used,
                nameless_role=nameless_role,
                config_entry=case.config_entry(),
            )
            if differences:
                found[f"{label} {version}"] = differences
    return found


def shrink(case: Case, differs: Callable[[Case], bool], budget: int = 200) -> Case:
    """The smallest pod (by one removal at a time) that still shows a difference."""
    current = case
    while budget > 0:
        for candidate in smaller(current.pod):
            budget -= 1
            trial = current.with_pod(candidate)
            if differs(trial):
                current = trial
                break
            if budget <= 0:
                break
        else:
            return current
    return current
