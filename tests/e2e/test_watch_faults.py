"""Faults a real API server makes on the ServiceAccount watch: a kube-apiserver restart and a
resourceVersion that etcd compacted away (docs/cluster.md "Sources", "Back-off", "Readiness")."""

from __future__ import annotations

import contextlib
import datetime
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import yaml

from tests.e2e import deployment
from tests.e2e.balancer import Balancer, run_balancer
from tests.e2e.conftest import deployed
from tests.e2e.controlplane import START_TIMEOUT, ControlPlane, kubeconfig, wait_ready
from tests.e2e.objects import (
    ROLE,
    create,
    env_of,
    eventually,
    new_pods,
    pod,
    service_account,
    set_role,
    stored_pod,
)
from tests.support.server import CertFiles, RunningWebhook

pytestmark = pytest.mark.usefixtures("identity")
OTHER = "arn:aws:iam::111122223333:role/e2e-after-restart"


@pytest.fixture
def webhook(
    plane: ControlPlane,
    base_manifests: list[dict[str, Any]],
    serving_certs: CertFiles,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RunningWebhook]:
    with deployed(
        plane, tmp_path_factory.mktemp("webhook-watch"), base_manifests, serving_certs
    ) as running:
        yield running


def restarts(webhook: RunningWebhook, reason: str) -> float:
    text = httpx.get(webhook.metrics_url + "/metrics", timeout=5).text
    wanted = (
        f'pod_identity_webhook_watch_restarts_total{{reason="{reason}",resource="serviceaccounts"}}'
    )
    for line in text.splitlines():
        if line.startswith(wanted):
            return float(line.split()[-1])
    return 0.0


def service_account_lists(plane: ControlPlane, since: float) -> list[dict[str, Any]]:
    """The webhook's LISTs of ServiceAccounts recorded since `since` (epoch seconds)."""
    found = []
    for event in deployment.requests_of(plane):
        ref = event.get("objectRef") or {}
        if event["verb"] == "list" and ref.get("resource") == "serviceaccounts":
            stamp = event.get("requestReceivedTimestamp", "")
            if _epoch(stamp) >= since:
                found.append(event)
    return found


def _epoch(stamp: str) -> float:
    return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def test_apiserver_restart(plane: ControlPlane, webhook: RunningWebhook, namespace: str) -> None:
    create(plane, service_account("reader", namespace, role_arn=ROLE))
    create(plane, pod("before", namespace, "reader"))
    errors_before = restarts(webhook, "error") + restarts(webhook, "closed")
    started = time.time()

    apiserver = plane.processes["kube-apiserver"]
    apiserver.stop()
    time.sleep(5)
    # down for a few seconds: still live, and still ready (the watch has failed for less than
    # three resync periods), answering from the cache
    assert httpx.get(webhook.metrics_url + "/healthz", timeout=5).status_code == 200
    assert httpx.get(webhook.metrics_url + "/readyz", timeout=5).status_code == 200
    apiserver.start()
    wait_ready(plane, "kube-apiserver", START_TIMEOUT)
    _wait_authorized(plane, plane.admin_kubeconfig)
    # what changed after the restart reaches the cache through the new list and watch
    set_role(plane, namespace, "reader", OTHER)
    role_of_next_pod = new_pods(plane, namespace, "reader", "after")
    eventually(lambda: role_of_next_pod() == OTHER, timeout=40, every=1)
    assert restarts(webhook, "error") + restarts(webhook, "closed") > errors_before
    elapsed = time.time() - started
    lists = service_account_lists(plane, started)
    # docs/cluster.md: about 4 LISTs in 20 s while the watch keeps failing, at most 10
    assert 1 <= len(lists) <= max(10, int(10 * elapsed / 20)), (elapsed, len(lists))
    assert httpx.get(webhook.metrics_url + "/readyz", timeout=5).status_code == 200


def test_compaction_while_the_webhook_moves_to_another_apiserver(
    plane: ControlPlane,
    namespace: str,
    base_manifests: list[dict[str, Any]],
    serving_certs: CertFiles,
    tmp_path: Any,
) -> None:
    _wait_for_quiet(plane)
    first = plane.processes["kube-apiserver"]
    with _behind_a_balancer(plane, tmp_path, base_manifests, serving_certs) as (
        balancer,
        webhook,
    ):
        create(plane, service_account("reader", namespace, role_arn=ROLE))
        eventually(lambda: _mutated(plane, namespace, "warm-up"))
        for index in range(20):
            plane.kubectl("create", "configmap", f"filler-{index}", "-n", namespace)
        compacted = plane.compact_etcd()
        second_url, second = plane.start_second_apiserver()
        lists_before = len(service_account_lists(plane, 0))
        # a joining API server answers /readyz before its RBAC cache has every binding; a
        # balancer's health check waits for that too (else the webhook's LIST gets a 403)
        second_config = _kubeconfig_for(plane, second_url, tmp_path)
        _wait_authorized(plane, second_config)
        balancer.target = second_url
        # the balancer drains its streams to the first API server, then that one goes away.
        # (Stopped first, it would send a last bookmark, which may carry a resourceVersion
        # the second one still has: then the move costs no 410, which is the point of
        # bookmarks but not what this case is about.)
        balancer.end_streams()
        first.stop()
        try:
            # the webhook's watch ended cleanly; its re-watch from the resourceVersion of its
            # last event reaches the second API server, whose history begins after the
            # compaction: 410, counted as expired, then exactly one LIST
            set_role(plane, namespace, "reader", OTHER, kubeconfig=second_config)
            eventually(lambda: restarts(webhook, "expired") == 1, timeout=30)
            role_of_next_pod = new_pods(
                plane, namespace, "reader", "moved", kubeconfig=second_config
            )
            eventually(lambda: role_of_next_pod() == OTHER, timeout=30, every=0.5)
            assert restarts(webhook, "error") + restarts(webhook, "closed") == 0
            assert len(service_account_lists(plane, 0)) - lists_before == 1
            assert compacted > 0
            assert any(target == second_url for target, _ in balancer.requests)
        finally:
            first.start()
            wait_ready(plane, "kube-apiserver", START_TIMEOUT)
            second.stop()


@contextlib.contextmanager
def _behind_a_balancer(
    plane: ControlPlane,
    directory: Any,
    documents: list[dict[str, Any]],
    certs: CertFiles,
    *extra: str,
) -> Iterator[tuple[Balancer, RunningWebhook]]:
    """The webhook deployed with the suite's balancer between it and the API servers."""
    pki = plane.pki
    with (
        run_balancer(plane.url, ca=pki.ca, cert=pki.serving_cert, key=pki.serving_key) as balancer,
        deployed(plane, directory, documents, certs, *extra, server=balancer.url) as webhook,
    ):
        yield balancer, webhook


def _wait_for_quiet(plane: ControlPlane) -> None:
    """Earlier cases' namespaces going away delete their ServiceAccounts; those events would
    move the webhook's resourceVersion in the middle of a case that needs to know it."""
    eventually(lambda: "Terminating" not in plane.kubectl("get", "namespaces").stdout, timeout=90)


def _mutated(plane: ControlPlane, namespace: str, name: str) -> bool:
    plane.kubectl("delete", "pod", name, "-n", namespace, "--ignore-not-found", "--wait=false")
    create(plane, pod(name, namespace, "reader"))
    return (
        env_of(stored_pod(plane, namespace, name)["spec"]["containers"][0]).get("AWS_ROLE_ARN")
        == ROLE
    )


def _kubeconfig_for(plane: ControlPlane, url: str, directory: Any) -> Any:
    path = directory / "second.kubeconfig"
    user = {"client-certificate": str(plane.pki.admin_cert), "client-key": str(plane.pki.admin_key)}
    path.write_text(yaml.safe_dump(kubeconfig(url, plane.pki.ca, user)))
    return path


def test_a_late_watch_event_is_covered_by_the_grace_period_get(
    plane: ControlPlane,
    namespace: str,
    base_manifests: list[dict[str, Any]],
    serving_certs: CertFiles,
    tmp_path: Any,
) -> None:
    """The ServiceAccount's watch event is held back (a slow link between the webhook and the
    API server): the pod's admission misses the cache, and within
    --service-account-lookup-grace-period the webhook GETs that one ServiceAccount."""
    grace = "--service-account-lookup-grace-period=2s"
    with _behind_a_balancer(plane, tmp_path, base_manifests, serving_certs, grace) as (
        balancer,
        _,
    ):
        balancer.hold_watches = True
        try:
            create(plane, service_account("late", namespace, role_arn=ROLE))
            create(plane, pod("late", namespace, "late"))
        finally:
            balancer.hold_watches = False
    stored = stored_pod(plane, namespace, "late")
    assert env_of(stored["spec"]["containers"][0])["AWS_ROLE_ARN"] == ROLE
    gets = [
        e
        for e in deployment.requests_of(plane)
        if e["verb"] == "get"
        and (e.get("objectRef") or {}).get("resource") == "serviceaccounts"
        and e["objectRef"].get("namespace") == namespace
    ]
    assert gets and gets[0]["responseStatus"]["code"] == 200, gets


def _wait_authorized(plane: ControlPlane, kubeconfig: Any) -> None:
    def allowed() -> bool:
        answer = plane.kubectl(
            "auth",
            "can-i",
            "list",
            "serviceaccounts",
            "--all-namespaces",
            f"--as={deployment.USERNAME}",
            kubeconfig=kubeconfig,
            check=False,
        )
        return answer.stdout.strip() == "yes"

    eventually(allowed, timeout=30)


def _query(path: str) -> dict[str, str]:
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(path).query))


@pytest.mark.timeout(240)
def test_a_bookmark_carries_the_next_watch_forward(
    plane: ControlPlane,
    namespace: str,
    base_manifests: list[dict[str, Any]],
    serving_certs: CertFiles,
    tmp_path: Any,
) -> None:
    """kube-apiserver sends a watch a BOOKMARK about once a minute, at the newest
    resourceVersion it knows, which is past the last ServiceAccount event when other objects
    changed since. The webhook keeps it, so the next watch (after a timeout, or a balancer's
    stream limit) starts from the bookmark, with no LIST (docs/cluster.md "Sources")."""
    _wait_for_quiet(plane)
    with _behind_a_balancer(plane, tmp_path, base_manifests, serving_certs) as (
        balancer,
        webhook,
    ):

        def watches() -> list[str]:
            return [
                path
                for _, path in balancer.requests
                if "/serviceaccounts?" in path and _query(path).get("watch") == "true"
            ]

        def stream() -> list[tuple[str, int]]:
            return [(kind, int(rv)) for path, kind, rv in balancer.watch_events if path == first]

        first = eventually(watches, timeout=20)[0]
        assert _query(first).get("allowWatchBookmarks") == "true"
        create(plane, service_account("marker", namespace, role_arn=ROLE))
        eventually(lambda: any(kind == "ADDED" for kind, _ in stream()))
        # other objects change; a consistent LIST makes the API server's cache of
        # ServiceAccounts catch up with etcd's revision, which the next bookmark carries
        plane.kubectl("create", "configmap", "past-the-last-event", "-n", namespace)

        def bookmark_past_the_last_change() -> tuple[int, int] | None:
            plane.kubectl("get", "serviceaccounts", "--all-namespaces")
            events = stream()
            changes = [rv for kind, rv in events if kind != "BOOKMARK"]
            kind, rv = events[-1]
            return (rv, max(changes)) if kind == "BOOKMARK" and rv > max(changes) else None

        # the first bookmark comes a minute into the watch; under load the API server's cache
        # may catch up only after it, so wait for the second one too
        bookmark, last_change = eventually(bookmark_past_the_last_change, timeout=170, every=3)
        time.sleep(0.5)
        assert stream()[-1] == ("BOOKMARK", bookmark), stream()[-3:]
        lists_before = len(service_account_lists(plane, 0))
        seen_before = len(watches())
        balancer.end_streams()
        following = eventually(lambda: watches()[seen_before:], timeout=20)[0]
        assert _query(following).get("resourceVersion") == str(bookmark), (last_change, following)
        assert len(service_account_lists(plane, 0)) == lists_before
        assert restarts(webhook, "expired") + restarts(webhook, "closed") == 0
