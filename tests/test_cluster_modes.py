"""Grace-period lookup, ConfigMap mode and --compose-role-arn, against fake API and IMDS servers."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.admission import role_of
from tests.support.fakeapi import FakeApiServer
from tests.support.inprocess import serve_in_process
from tests.support.polling import eventually
from tests.support.server import CertFiles, RunningWebhook, run_webhook
from webhook.assembly.settingsmap import StartupError
from webhook.assembly.webhook import assemble
from webhook.flags.settings import Settings

ROLE = "eks.amazonaws.com/role-arn"
ARN = "arn:aws:iam::111122223333:role/"


def test_grace_period_fetches_a_service_account_the_watch_has_not_delivered(
    tmp_path: Path,
) -> None:
    with FakeApiServer() as api:
        kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig")
        with (
            serve_in_process(
                "--kubeconfig", str(kubeconfig), "--service-account-lookup-grace-period", "3s"
            ) as webhook,
            webhook.client() as client,
        ):
            webhook.wait_ready()
            api.put_service_account("late", "fresh", {ROLE: ARN + "fresh"}, silent=True)
            assert role_of(client, "late", "fresh") == ARN + "fresh"
            assert api.count("get") == 1

            results: dict[str, Any] = {}

            def missing() -> None:
                started = time.monotonic()
                results["missing"] = role_of(client, "late", "never")
                results["missing_seconds"] = time.monotonic() - started

            waiter = threading.Thread(target=missing)
            waiter.start()
            time.sleep(0.2)
            started = time.monotonic()
            results["other"] = role_of(client, "late", "fresh")  # served while the miss waits
            results["other_seconds"] = time.monotonic() - started
            waiter.join()
            metrics = webhook.metrics("/metrics").text
    assert results["missing"] is None and results["missing_seconds"] >= 2.9
    assert results["other"] == ARN + "fresh" and results["other_seconds"] < 2
    assert "pod_identity_webhook_missing_sa_count 1" in metrics


CONFIG_MAP = {
    "payments/api": {"RoleARN": ARN + "cm-exact"},
    "*/api": {"RoleARN": ARN + "cm-any"},
    "team-*/worker": {"RoleARN": ARN + "cm-team", "TokenExpiration": 3600},
    "payments/annotated": {"RoleARN": ARN + "cm-loses"},
}
CONFIG_MAP_FLAGS = ("--watch-config-map", "--namespace", "eks")


@contextmanager
def config_map_api() -> Iterator[FakeApiServer]:
    with FakeApiServer() as api:
        api.put_config_map("eks", "pod-identity-webhook", {"config": json.dumps(CONFIG_MAP)})
        api.put_config_map("eks", "unrelated", {"config": "{broken"})
        api.put_service_account("payments", "annotated", {ROLE: ARN + "annotation-wins"})
        yield api


@pytest.fixture(scope="module")
def config_map_identities(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """A client of one webhook in ConfigMap mode, shared by the tests that only read from it."""
    kubeconfig_path = tmp_path_factory.mktemp("config-map") / "kubeconfig"
    with config_map_api() as api:
        kubeconfig = api.write_kubeconfig(kubeconfig_path)
        with (
            serve_in_process("--kubeconfig", str(kubeconfig), *CONFIG_MAP_FLAGS) as webhook,
            webhook.client() as client,
        ):
            webhook.wait_ready()
            yield client


@pytest.fixture()
def config_map_webhook(
    tmp_path: Path, cert_files: CertFiles
) -> Iterator[tuple[FakeApiServer, RunningWebhook]]:
    with config_map_api() as api:
        kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig")
        with run_webhook(
            tmp_path, "--kubeconfig", str(kubeconfig), *CONFIG_MAP_FLAGS, certs=cert_files
        ) as webhook:
            yield api, webhook


@pytest.mark.parametrize(
    ("namespace", "name", "role"),
    [
        ("payments", "api", ARN + "cm-exact"),
        ("shop", "api", ARN + "cm-any"),
        ("team-blue", "worker", ARN + "cm-team"),
        ("blue-team", "worker", None),
        ("payments", "annotated", ARN + "annotation-wins"),
    ],
    ids=[
        "exact-key",
        "star-namespace",
        "wildcard-namespace",
        "pattern-does-not-match",
        "annotation-wins",
    ],
)
def test_config_map_identities_apply_with_annotations_taking_precedence(
    config_map_identities: httpx.Client, namespace: str, name: str, role: str | None
) -> None:
    assert role_of(config_map_identities, namespace, name) == role


def test_bad_config_map_update_is_kept_out_and_counted(
    config_map_webhook: tuple[FakeApiServer, RunningWebhook],
) -> None:
    api, webhook = config_map_webhook
    api.put_config_map(
        "eks", "pod-identity-webhook", {"config": '{"payments/api": {"RoleARN": 7}}'}
    )
    failure = 'pod_identity_webhook_config_reloads_total{result="failure",source="configmap"} 1'
    assert eventually(lambda: failure in httpx.get(webhook.metrics_url + "/metrics").text, True)
    with webhook.client() as client:
        assert role_of(client, "payments", "api") == ARN + "cm-exact"
        api.put_config_map(
            "eks",
            "pod-identity-webhook",
            {"config": json.dumps({"payments/api": {"RoleARN": ARN + "new"}})},
        )
        assert eventually(lambda: role_of(client, "payments", "api"), ARN + "new") == ARN + "new"
        assert role_of(client, "shop", "api") is None  # entries dropped from the ConfigMap are gone
    assert "RoleARN: expected a string" in webhook.log()


# -- --compose-role-arn ---------------------------------------------------------------------------


def write_service_accounts(path: Path) -> Path:
    path.write_text(
        "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: app\n  namespace: default\n"
        "  annotations:\n    eks.amazonaws.com/role-arn: team/app-role\n"
    )
    return path


class FakeImds:
    def __init__(self, document: dict[str, str]) -> None:
        self.document = document
        self.token_requests = 0
        imds = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def _answer(self, code: int, body: bytes) -> None:
                self.send_response(code)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_PUT(self) -> None:
                imds.token_requests += 1
                ok = self.path == "/latest/api/token" and self.headers.get(
                    "X-aws-ec2-metadata-token-ttl-seconds"
                )
                self._answer(200 if ok else 400, b"secret-token")

            def do_GET(self) -> None:
                if self.headers.get("X-aws-ec2-metadata-token") != "secret-token":
                    self._answer(401, b"")
                elif self.path == "/latest/dynamic/instance-identity/document":
                    self._answer(200, json.dumps(imds.document).encode())
                else:
                    self._answer(404, b"")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def composed_role(settings: Settings) -> str:
    service = assemble(settings)
    service.load_sources()
    identity = service.store.get("default", "app")
    assert identity is not None
    return identity.role_arn


def test_compose_role_arn_uses_account_and_partition_flags(tmp_path: Path) -> None:
    settings = Settings(
        service_accounts_file=write_service_accounts(tmp_path / "sa.yaml"),
        compose_role_arn=True,
        aws_account_id="123456789012",
        aws_partition="aws-us-gov",
    )
    assert composed_role(settings) == "arn:aws-us-gov:iam::123456789012:role/team/app-role"


@pytest.mark.parametrize(
    ("region", "partition"),
    [
        ("eu-west-1", "aws"),
        ("cn-north-1", "aws-cn"),
        ("us-gov-west-1", "aws-us-gov"),
        ("us-isob-east-1", "aws-iso-b"),
    ],
    ids=["aws", "china", "govcloud", "iso-b"],
)
def test_compose_role_arn_reads_account_and_partition_from_instance_metadata(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, region: str, partition: str
) -> None:
    imds = FakeImds({"accountId": "210987654321", "region": region})
    monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.url)
    try:
        settings = Settings(
            service_accounts_file=write_service_accounts(tmp_path / "sa.yaml"),
            compose_role_arn=True,
        )
        assert composed_role(settings) == f"arn:{partition}:iam::210987654321:role/team/app-role"
    finally:
        imds.close()
    assert imds.token_requests == 1


def test_compose_role_arn_without_reachable_metadata_fails_start_up_clearly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:9")
    settings = Settings(
        service_accounts_file=write_service_accounts(tmp_path / "sa.yaml"), compose_role_arn=True
    )
    with pytest.raises(
        StartupError,
        match=r"cannot read EC2 instance metadata at http://127.0.0.1:9.*--aws-account-id",
    ):
        assemble(settings).load_sources()
