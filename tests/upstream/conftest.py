"""Fixtures of the side-by-side suite (`make test-upstream`, docs/upstream.md "Side by side").

One control plane (tests/e2e/controlplane.py) for the session; every ServiceAccount the cases
use is created on it before any server starts; then for each flag set upstream's builds and ours
run with the same flags against it. The seed, the number of cases and upstream's versions are
printed at the end of the run.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.e2e.controlplane import ControlPlane, run_control_plane
from tests.support.server import CertFiles, write_certs
from tests.upstream import cases
from tests.upstream.compare import Senders
from tests.upstream.metadata import instance_metadata
from tests.upstream.peers import V1, Peer, run_ours, run_upstream, upstream_binaries
from webhook.sources.imds import ENDPOINT_ENV

SUMMARY: list[str] = []
RULES_USED: set[str] = set()  # every rule a difference was allowed by, over the whole run


@dataclass
class World:
    """Everything the cases run against."""

    plane: ControlPlane
    certs: CertFiles
    seed: int
    rng: random.Random
    sets: list[cases.FlagSet]
    peers: dict[str, dict[str, Peer]]  # flag set name -> label -> peer
    senders: dict[str, Senders]
    versions: dict[str, str]
    accounts: cases.Accounts
    entries: cases.Entries  # the ConfigMap's
    rules_used: set[str] = field(default_factory=lambda: RULES_USED)

    def note(self, line: str) -> None:
        SUMMARY.append(line)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if SUMMARY:
        terminalreporter.section("upstream side by side")
        for line in SUMMARY:
            terminalreporter.write_line(line)
        terminalreporter.write_line("rules applied: " + ", ".join(sorted(RULES_USED)))


def _seed() -> int:
    given = os.environ.get("UPSTREAM_SEED")
    return int(given) if given else random.SystemRandom().randrange(2**32)


def _wait_for_accounts(
    senders: Senders,
    peers: dict[str, Peer],
    namespaces: tuple[str, ...],
    volume: str,
    timeout: float = 60,
) -> None:
    """Until every server gives a pod of sa-0 of each namespace the token volume `volume`.
    sa-0 is created last and read with the others (one list); with a container-credentials
    file the volume is that mode's, so the file has been read too."""
    deadline = time.monotonic() + timeout
    for namespace in namespaces:
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "probe", "namespace": namespace},
            "spec": {"serviceAccountName": "sa-0", "containers": [{"name": "app", "image": "a"}]},
        }
        for peer in peers.values():
            while True:
                answer = senders.answer(peer, pod, V1, "probe")
                volumes = answer.pod.get("spec", {}).get("volumes", [])
                if any(v.get("name") == volume for v in volumes):
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"{peer.label} gave {namespace}/sa-0 no volume {volume} within "
                        f"{timeout:.0f} s:\n{peer.log()}"
                    )
                time.sleep(0.2)


def _last_probe(account: dict[str, Any]) -> bool:
    return bool(account["metadata"]["name"] == "sa-0")


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    binaries, missing = upstream_binaries()
    if not binaries:
        pytest.skip("; ".join(missing))
    for line in missing:
        SUMMARY.append(f"left out: {line}")
    seed = _seed()
    rng = random.Random(seed)
    directory = tmp_path_factory.mktemp("upstream")
    with contextlib.ExitStack() as stack:
        plane = stack.enter_context(
            run_control_plane(directory / "plane", controller_manager=False)
        )
        plane.apply(
            *(
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
                for name in (*cases.NAMESPACES, cases.BARE_NAMESPACE, cases.CONFIG_NAMESPACE)
            )
        )
        config_map = cases.config_map(rng)
        plane.kubectl("apply", "-f", "-", stdin=json.dumps(config_map))
        # sa-0 of each namespace last: the readiness probe waits for it
        accounts = cases.service_accounts(rng)
        # as JSON: YAML would turn values such as 1_000 or 0x10 into numbers on the way
        listed = {"apiVersion": "v1", "kind": "List", "items": sorted(accounts, key=_last_probe)}
        plane.kubectl("apply", "--server-side", "-f", "-", stdin=json.dumps(listed))
        (directory / "container-credentials.json").write_text(
            json.dumps(cases.container_credentials_config())
        )
        certs = write_certs(directory / "certs")
        context = ssl.create_default_context(cafile=str(certs.ca))
        sets = cases.flag_sets(directory)
        endpoint, metadata_requests = stack.enter_context(instance_metadata())
        peers: dict[str, dict[str, Peer]] = {}
        senders: dict[str, Senders] = {}
        for flag_set in sets:
            env = {ENDPOINT_ENV: endpoint} if flag_set.instance_metadata else None
            running = {
                b.label: stack.enter_context(
                    run_upstream(b, plane, certs, directory, flag_set.flags, env)
                )
                for b in binaries
            }
            running["ours"] = stack.enter_context(
                run_ours(plane, certs, directory, flag_set.flags, env)
            )
            peers[flag_set.name] = running
            senders[flag_set.name] = Senders(list(running.values()), context)
            stack.callback(senders[flag_set.name].close)
        for flag_set in sets:
            probed = cases.NAMESPACES + (
                (cases.BARE_NAMESPACE,) if flag_set.name == "config-map" else ()
            )
            volume = cases.CC_TOKEN_VOLUME if flag_set.container_credentials else cases.TOKEN_VOLUME
            _wait_for_accounts(senders[flag_set.name], peers[flag_set.name], probed, volume)
        if any(s.instance_metadata for s in sets):
            # every server of those sets asked the stand-in, none the link-local address
            asked = metadata_requests.count("GET /latest/dynamic/instance-identity/document")
            assert asked >= len(binaries) + 1, metadata_requests
        versions = {b.label: f"{b.path.name} ({b.version})" for b in binaries}
        SUMMARY.append(
            "upstream: " + ", ".join(versions.values()) + f"; flag sets: {[s.name for s in sets]}"
        )
        SUMMARY.append(f"seed {seed} (UPSTREAM_SEED={seed} repeats this run)")
        annotations = {
            (a["metadata"]["namespace"], a["metadata"]["name"]): a["metadata"]["annotations"]
            for a in accounts
        }
        entries = json.loads(config_map["data"]["config"])
        yield World(plane, certs, seed, rng, sets, peers, senders, versions, annotations, entries)
