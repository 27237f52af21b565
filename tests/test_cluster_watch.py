"""The webhook against the fake API server: a watch-fed ServiceAccount cache, in process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.admission import role_of
from tests.support.fakeapi import SERVICE_ACCOUNTS, FakeApiServer
from tests.support.inprocess import InProcessWebhook, serve_in_process
from tests.support.polling import eventually
from tests.support.server import CertFiles, run_webhook

ROLE = "eks.amazonaws.com/role-arn"
ARN = "arn:aws:iam::111122223333:role/"


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[FakeApiServer, InProcessWebhook]]:
    tmp = tmp_path_factory.mktemp("cluster")
    with FakeApiServer() as api:
        api.put_service_account("default", "preexisting", {ROLE: ARN + "preexisting"})
        api.put_service_account("default", "plain")
        kubeconfig = api.write_kubeconfig(tmp / "kubeconfig")
        with serve_in_process(
            "--kubeconfig", str(kubeconfig), "--resync-period", "30s", "--enable-debugging-handlers"
        ) as webhook:
            webhook.wait_ready()
            yield api, webhook


def metric(webhook: InProcessWebhook, name: str) -> float:
    for line in webhook.metrics("/metrics").text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_initial_list_is_served_once_ready(cluster: tuple[FakeApiServer, InProcessWebhook]) -> None:
    _, webhook = cluster
    assert webhook.metrics("/readyz").status_code == 200
    with webhook.client() as client:
        assert role_of(client, "default", "preexisting") == ARN + "preexisting"
        assert role_of(client, "default", "plain") is None
    assert metric(webhook, "pod_identity_webhook_used") == 1
    assert metric(webhook, "pod_identity_webhook_serviceaccount_cache_size") >= 2


def test_added_modified_and_deleted_service_accounts_reach_the_next_admission(
    cluster: tuple[FakeApiServer, InProcessWebhook],
) -> None:
    api, webhook = cluster
    with webhook.client() as client:

        def probe() -> str | None:
            return role_of(client, "shop", "cart")

        api.put_service_account("shop", "cart", {ROLE: ARN + "v1"})
        assert eventually(probe, ARN + "v1") == ARN + "v1"
        api.put_service_account("shop", "cart", {ROLE: ARN + "v2"})
        assert eventually(probe, ARN + "v2") == ARN + "v2"
        api.delete(SERVICE_ACCOUNTS, "shop", "cart")
        assert eventually(probe, None) is None


def test_expired_watch_relists_without_losing_the_update_it_missed(
    cluster: tuple[FakeApiServer, InProcessWebhook],
) -> None:
    api, webhook = cluster
    before = metric(
        webhook,
        'pod_identity_webhook_watch_restarts_total{reason="expired",resource="serviceaccounts"}',
    )
    with api.atomically():  # the update and the compaction land together: no watch sees the event
        api.put_service_account("shop", "ledger", {ROLE: ARN + "ledger"})
        api.compact()
    with webhook.client() as client:
        assert (
            eventually(lambda: role_of(client, "shop", "ledger"), ARN + "ledger") == ARN + "ledger"
        )
    after = metric(
        webhook,
        'pod_identity_webhook_watch_restarts_total{reason="expired",resource="serviceaccounts"}',
    )
    assert after == before + 1


def test_debug_handler_dumps_the_cache(cluster: tuple[FakeApiServer, InProcessWebhook]) -> None:
    _, webhook = cluster
    cache = webhook.metrics("/debug/alpha/cache").json()
    assert cache["default/preexisting"] == {
        "RoleARN": ARN + "preexisting",
        "Audience": "sts.amazonaws.com",
        "UseRegionalSTS": False,
        "TokenExpiration": 86400,
    }


def test_api_server_restart_is_survived_and_changes_made_while_down_arrive(
    cluster: tuple[FakeApiServer, InProcessWebhook],
) -> None:
    api, webhook = cluster
    api.stop()
    api.put_service_account("shop", "while-down", {ROLE: ARN + "while-down"})
    api.restart(down_seconds=0.3)
    with webhook.client() as client:
        assert (
            eventually(lambda: role_of(client, "shop", "while-down"), ARN + "while-down")
            == ARN + "while-down"
        )
    assert webhook.metrics("/readyz").status_code == 200
    assert (
        metric(
            webhook,
            'pod_identity_webhook_watch_restarts_total{reason="error",resource="serviceaccounts"}',
        )
        >= 1
    )


def test_not_ready_until_first_list_then_ready(tmp_path: Path) -> None:
    with FakeApiServer() as api:
        api.fail("list", status_code=503, times=2)  # then back-off: up to 4.8 s
        kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig")
        with serve_in_process("--kubeconfig", str(kubeconfig)) as webhook:
            first = webhook.metrics("/readyz")
            ready = eventually(lambda: webhook.metrics("/readyz").status_code, 200)
    assert first.status_code == 503
    assert "serviceaccounts have not been listed yet" in first.text
    assert ready == 200


def test_readiness_fails_when_watch_fails_longer_than_three_resync_periods(
    tmp_path: Path,
) -> None:
    with FakeApiServer() as api:
        kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig")
        with serve_in_process(
            "--kubeconfig", str(kubeconfig), "--resync-period", "500ms"
        ) as webhook:
            webhook.wait_ready()
            api.stop()
            status = eventually(lambda: webhook.metrics("/readyz").status_code, 503)
            body = webhook.metrics("/readyz").text
    assert status == 503
    assert "serviceaccounts watch has been failing" in body


def test_without_any_source_start_up_names_the_flags(tmp_path: Path, cert_files: CertFiles) -> None:
    env = {"KUBERNETES_SERVICE_HOST": "", "KUBERNETES_SERVICE_PORT": ""}
    with (
        pytest.raises(
            RuntimeError, match=r"--kubeconfig PATH or --kube-api URL, or --service-accounts-file"
        ),
        run_webhook(tmp_path, certs=cert_files, env=env),
    ):
        pass
