"""The container-credentials file behaves as upstream's: absent means no identities yet (the
webhook starts and picks it up when it appears), deleted means cleared, invalid keeps the
last good list with the error logged and counted. The real server."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.support.polling import eventually
from tests.support.server import CertFiles, RunningWebhook, run_webhook
from tests.support.sources import admit, metric_value

ROLE = "arn:aws:iam::111122223333:role/app"
SA = (
    "kind: ServiceAccount\nmetadata: {name: app, namespace: ns, annotations: "
    f"{{eks.amazonaws.com/role-arn: '{ROLE}'}}}}\n"
)
LISTED = b'{"identities": [{"namespace": "ns", "serviceAccount": "app"}]}'
CONTAINER_CREDENTIALS = "AWS_CONTAINER_CREDENTIALS_FULL_URI"


def mode_of(client: httpx.Client) -> str:
    """ "container credentials", "role" or "none" for a pod running as ns/app."""
    pod, _ = admit(client, "ns", "app")
    env = {e["name"] for c in pod["spec"]["containers"] for e in c.get("env", [])}
    if CONTAINER_CREDENTIALS in env:
        return "container credentials"
    return "role" if "AWS_ROLE_ARN" in env else "none"


def failures(metrics_url: str) -> float:
    name = "pod_identity_webhook_config_reloads_total"
    return metric_value(metrics_url, name, result="failure", source="container-credentials")


@contextmanager
def serving(
    tmp_path: Path, cert_files: CertFiles, cc_file: Path
) -> Iterator[tuple[RunningWebhook, httpx.Client]]:
    sa_file = tmp_path / "sa.yaml"
    sa_file.write_text(SA)
    args = ("--service-accounts-file", str(sa_file), "--watch-container-credentials-config")
    with (
        run_webhook(tmp_path, *args, str(cc_file), certs=cert_files) as webhook,
        webhook.client() as client,
    ):
        yield webhook, client


def test_container_credentials_file_absent_then_present_then_deleted_then_invalid(
    tmp_path: Path, cert_files: CertFiles
) -> None:
    cc_file = tmp_path / "cc.json"  # absent at start: before, start-up exited 2
    with serving(tmp_path, cert_files, cc_file) as (webhook, client):
        assert mode_of(client) == "role"
        cc_file.write_bytes(LISTED)
        assert eventually(lambda: mode_of(client) == "container credentials")
        cc_file.unlink()  # before: the old list stayed in force
        assert eventually(lambda: mode_of(client) == "role")
        cc_file.write_bytes(LISTED)
        assert eventually(lambda: mode_of(client) == "container credentials")
        cc_file.write_bytes(b'{"identities": [{"namespace": 1}]}')
        assert eventually(lambda: failures(webhook.metrics_url) == 1)
        assert mode_of(client) == "container credentials"  # the last good list stays
        assert "identities[0].namespace: missing or not a string" in webhook.log()
        assert httpx.get(webhook.metrics_url + "/readyz").status_code == 200


def test_container_credentials_file_invalid_at_start_is_logged_and_picked_up_when_fixed(
    tmp_path: Path, cert_files: CertFiles
) -> None:
    cc_file = tmp_path / "cc.json"
    cc_file.write_bytes(b"{not json")  # before: start-up exited 2; upstream starts
    with serving(tmp_path, cert_files, cc_file) as (webhook, client):
        assert mode_of(client) == "role"
        assert failures(webhook.metrics_url) == 1
        assert f"{cc_file}: not valid JSON" in webhook.log()
        cc_file.write_bytes(LISTED)
        assert eventually(lambda: mode_of(client) == "container credentials")
