"""Annotation values are untrusted input: whatever a tenant writes into a ServiceAccount or a
pod, the watch lives, admissions answer 200, and the value is ignored or adjusted with a
warning and a counted metric. The real server, fed by tests/support/fakeapi.py or a file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.fakeapi import FakeApiServer
from tests.support.polling import eventually
from tests.support.server import CertFiles, RunningWebhook, run_webhook
from tests.support.sources import admit, metric_value

P = "eks.amazonaws.com/"
ARN = "arn:aws:iam::111122223333:role/"
GIANT = "9" * 5000  # Python's int() refuses more than 4,300 digits
TWENTY = "99999999999999999999"  # beyond int64: orjson cannot encode it


def expiration_of(pod: dict[str, Any]) -> int:
    for volume in pod["spec"].get("volumes", []):
        for source in volume.get("projected", {}).get("sources", []):
            if "serviceAccountToken" in source:
                seconds: int = source["serviceAccountToken"]["expirationSeconds"]
                return seconds
    raise AssertionError("no token volume")


def counted(webhook: RunningWebhook, source: str, annotation: str) -> float:
    return metric_value(
        webhook.metrics_url,
        "pod_identity_webhook_invalid_annotations_total",
        source=source,
        annotation=annotation,
    )


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory, cert_files: CertFiles
) -> Iterator[tuple[FakeApiServer, RunningWebhook]]:
    tmp = tmp_path_factory.mktemp("hostile-annotations")
    with FakeApiServer() as api:
        api.put_service_account(
            "ns", "twenty", {P + "role-arn": ARN + "a", P + "token-expiration": TWENTY}
        )
        api.put_service_account(
            "ns", "over", {P + "role-arn": ARN + "a", P + "token-expiration": "4294967297"}
        )
        api.put_service_account("ns", "plain", {P + "role-arn": ARN + "a"})
        api.put_service_account(
            "ns",
            "sts-http",
            {P + "role-arn": ARN + "a", P + "sts-endpoint-url": "http://sts.example.com\r\nX: 1"},
        )
        kubeconfig = api.write_kubeconfig(tmp / "kubeconfig")
        with run_webhook(tmp, "--kubeconfig", str(kubeconfig), certs=cert_files) as webhook:
            yield api, webhook


@pytest.mark.parametrize(
    ("service_account", "seconds", "warning"),
    [
        ("twenty", 86400, "is not a whole number of seconds; ignored"),
        ("over", 4294967296, "capped to 4294967296"),
    ],
    ids=["20-digits", "over-2^32"],
)
def test_service_account_expiration_out_of_range_is_ignored_or_capped_not_a_500(
    cluster: tuple[FakeApiServer, RunningWebhook], service_account: str, seconds: int, warning: str
) -> None:
    _, webhook = cluster
    with webhook.client() as client:
        pod, warnings = admit(client, "ns", service_account)
    assert expiration_of(pod) == seconds
    assert any(warning in w for w in warnings), warnings
    assert counted(webhook, "serviceaccount", "token-expiration") >= 2


def test_an_sts_endpoint_that_is_not_allowed_is_not_injected_warned_and_counted(
    cluster: tuple[FakeApiServer, RunningWebhook],
) -> None:
    _, webhook = cluster
    with webhook.client() as client:
        pod, warnings = admit(client, "ns", "sts-http")
    names = [e["name"] for e in pod["spec"]["containers"][0]["env"]]
    assert names == ["AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE"]
    assert any("sts-endpoint-url" in w and "AWS_ENDPOINT_URL_STS not set" in w for w in warnings)
    assert counted(webhook, "serviceaccount", "sts-endpoint-url") >= 1


def test_watch_lives_on_after_a_giant_expiration_arrives_as_an_event(
    cluster: tuple[FakeApiServer, RunningWebhook],
) -> None:
    api, webhook = cluster
    api.put_service_account(
        "ns", "giant", {P + "role-arn": ARN + "a", P + "token-expiration": GIANT}
    )
    api.put_service_account("ns", "after", {P + "role-arn": ARN + "after"})
    with webhook.client() as client:

        def role() -> str:
            pod, _ = admit(client, "ns", "after")
            env = pod["spec"]["containers"][0].get("env", [])
            return next((e["value"] for e in env if e["name"] == "AWS_ROLE_ARN"), "")

        assert eventually(role, ARN + "after") == ARN + "after"  # before: the thread was dead
        pod, warnings = admit(client, "ns", "giant")
    assert expiration_of(pod) == 86400
    assert any("(5000 characters)" in w for w in warnings), warnings
    assert "9" * 50 not in webhook.log()  # the value itself is never logged
    assert httpx.get(webhook.metrics_url + "/readyz").status_code == 200
    assert httpx.get(webhook.metrics_url + "/healthz").status_code == 200


@pytest.mark.parametrize(
    "value", [TWENTY, GIANT, "3600\n", "-"], ids=["20-digits", "5000-digits", "newline", "sign"]
)
def test_pod_expiration_that_is_not_a_whole_number_in_range_keeps_the_default(
    cluster: tuple[FakeApiServer, RunningWebhook], value: str
) -> None:
    _, webhook = cluster
    before = counted(webhook, "pod", "token-expiration")
    with webhook.client() as client:
        pod, warnings = admit(
            client,
            "ns",
            "plain",
            annotations={P + "token-expiration": value},
            containers=("app", "sidecar"),
        )
    assert expiration_of(pod) == 86400
    assert any("not a whole number" in w for w in warnings), warnings
    assert counted(webhook, "pod", "token-expiration") == before + 1


def test_skip_containers_that_go_cannot_read_skips_nothing(
    cluster: tuple[FakeApiServer, RunningWebhook],
) -> None:
    _, webhook = cluster
    with webhook.client() as client:
        pod, warnings = admit(
            client,
            "ns",
            "plain",
            annotations={P + "skip-containers": 'app,side"car'},
            containers=("app", "sidecar"),
        )
    assert all("env" in container for container in pod["spec"]["containers"])
    assert any("no container skipped" in w for w in warnings), warnings
    assert counted(webhook, "pod", "skip-containers") >= 1


def test_include_containers_that_go_cannot_read_wires_nothing_and_is_counted(
    cluster: tuple[FakeApiServer, RunningWebhook],
) -> None:
    _, webhook = cluster
    before = counted(webhook, "pod", "include-containers")
    with webhook.client() as client:
        pod, warnings = admit(
            client,
            "ns",
            "plain",
            annotations={P + "include-containers": 'app,side"car'},
            containers=("app", "sidecar"),
        )
    assert all("env" not in container for container in pod["spec"]["containers"])
    assert any("no container gets credentials" in w for w in warnings), warnings
    assert counted(webhook, "pod", "include-containers") == before + 1


def test_giant_expiration_in_the_first_list_does_not_keep_the_webhook_unready(
    tmp_path: Path, cert_files: CertFiles
) -> None:
    with FakeApiServer() as api:
        api.put_service_account("ns", "giant", {P + "token-expiration": GIANT})
        kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig")
        # Before: the first list killed the watch thread, and /readyz stayed 503 for ever.
        with run_webhook(tmp_path, "--kubeconfig", str(kubeconfig), certs=cert_files) as hook:
            assert httpx.get(hook.metrics_url + "/readyz").status_code == 200
            assert counted(hook, "serviceaccount", "token-expiration") == 1


def test_service_accounts_file_with_a_giant_expiration_starts_and_serves(
    tmp_path: Path, cert_files: CertFiles
) -> None:
    sa_file = tmp_path / "sa.yaml"
    sa_file.write_text(
        "kind: ServiceAccount\nmetadata: {name: giant, namespace: ns, annotations: "
        f"{{{P}role-arn: '{ARN}a', {P}token-expiration: '{GIANT}'}}}}\n"
    )
    # Before: start-up exited 1 with a ValueError traceback.
    with run_webhook(tmp_path, "--service-accounts-file", str(sa_file), certs=cert_files) as hook:
        with hook.client() as client:
            pod, _ = admit(client, "ns", "giant")
        assert expiration_of(pod) == 86400
        sa_file.write_text(sa_file.read_text().replace(GIANT, TWENTY))
        assert eventually(lambda: counted(hook, "serviceaccount", "token-expiration"), 2.0) == 2.0
        assert httpx.get(hook.metrics_url + "/healthz").status_code == 200
