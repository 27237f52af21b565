"""A flaky or hostile API server cannot turn the ServiceAccount watch into a LIST storm, and
--resync-period costs it nothing. The real server against tests/support/fakeapi.py."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.support.admission import role_of
from tests.support.fakeapi import FakeApiServer
from tests.support.polling import eventually
from tests.support.server import CertFiles, RunningWebhook, run_webhook
from tests.support.sources import metric_value

ROLE = "eks.amazonaws.com/role-arn"
ARN = "arn:aws:iam::111122223333:role/"


@contextmanager
def webhook_on(
    api: FakeApiServer, tmp_path: Path, cert_files: CertFiles, *args: str
) -> Iterator[RunningWebhook]:
    kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig")
    with run_webhook(tmp_path, "--kubeconfig", str(kubeconfig), *args, certs=cert_files) as hook:
        yield hook


def lists_in(api: FakeApiServer, seconds: float) -> int:
    before = api.count("list")
    time.sleep(seconds)
    return api.count("list") - before


def restarts(webhook: RunningWebhook, reason: str) -> float:
    name = "pod_identity_webhook_watch_restarts_total"
    return metric_value(webhook.metrics_url, name, reason=reason, resource="serviceaccounts")


def test_watch_broken_right_after_connecting_backs_off_instead_of_relisting(
    tmp_path: Path, cert_files: CertFiles
) -> None:
    with FakeApiServer() as api:
        api.put_service_account("ns", "app", {ROLE: ARN + "app"})
        api.sabotage_watches("break")
        with webhook_on(api, tmp_path, cert_files) as webhook:
            lists = lists_in(api, 4.0)
            assert lists <= 3, f"{lists} LISTs in 4 s"  # before the back-off: about 17
            assert restarts(webhook, "error") >= 1
            assert "serviceaccounts watch failed" in webhook.log()
            with webhook.client() as client:  # the cache from the lists still serves
                assert role_of(client, "ns", "app") == ARN + "app"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("sabotage", "reason"),
    [("break", "error"), ("end", "closed"), ("expire", "expired")],
    ids=["broken-stream", "clean-end", "410-gone"],
)
def test_at_most_ten_lists_in_twenty_seconds_whatever_ends_the_watch(
    tmp_path: Path, cert_files: CertFiles, sabotage: str, reason: str
) -> None:
    with FakeApiServer() as api:
        api.put_service_account("ns", "app", {ROLE: ARN + "app"})
        api.sabotage_watches(sabotage)
        with webhook_on(api, tmp_path, cert_files) as webhook:
            watches = api.count("watch")
            lists = lists_in(api, 20.0)
            watches = api.count("watch") - watches
            assert lists <= 10, f"{lists} LISTs in 20 s"  # before: 81 (broken), 427 (410)
            assert watches <= 11, f"{watches} WATCHes in 20 s"  # before: 438 (clean end)
            count = restarts(webhook, reason)
            assert 1 <= count <= 10
            lines = [line for line in webhook.log().splitlines() if "serviceaccounts watch" in line]
            assert len(lines) <= 2 * 10  # each restart logged, at the back-off's rate


def test_resync_period_causes_no_api_traffic_and_the_watch_stays_live(
    tmp_path: Path, cert_files: CertFiles
) -> None:
    with FakeApiServer() as api:
        api.put_service_account("ns", "app", {ROLE: ARN + "v1"})
        with webhook_on(api, tmp_path, cert_files, "--resync-period", "1s") as webhook:
            requests_before = len(api.requests)
            time.sleep(2.5)  # more than two resync periods
            assert api.requests[requests_before:] == []  # before: a LIST and a WATCH each second
            api.put_service_account("ns", "app", {ROLE: ARN + "v2"})
            with webhook.client() as client:
                assert eventually(lambda: role_of(client, "ns", "app"), ARN + "v2") == ARN + "v2"
            assert httpx.get(webhook.metrics_url + "/readyz").status_code == 200
