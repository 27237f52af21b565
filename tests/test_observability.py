"""Metrics and logs of the real server: upstream names, every metric moving, one log line per
admission in text and JSON, and nothing secret in it."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import orjson
import pytest
from cryptography import x509

from tests.support.admission import review
from tests.support.polling import eventually
from tests.support.server import CertFiles, RunningWebhook, run_webhook

SERVICE_ACCOUNTS = """
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: ServiceAccount
  metadata: {name: app, namespace: team-a, annotations: {eks.amazonaws.com/role-arn: "arn:aws:iam::111122223333:role/app"}}
- apiVersion: v1
  kind: ServiceAccount
  metadata: {name: plain, namespace: team-a}
"""
JSON = {"Content-Type": "application/json"}
SECRET = "s3cr3t-d0-not-log"


def _metrics(webhook: RunningWebhook) -> dict[str, float]:
    values: dict[str, float] = {}
    for line in httpx.get(webhook.metrics_url + "/metrics").text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    return values


def _post(webhook: RunningWebhook, body: object) -> httpx.Response:
    with webhook.client() as client:
        return client.post("/mutate", content=orjson.dumps(body), headers=JSON)


def test_every_metric_is_exposed_under_its_name_and_moves(
    tmp_path: Path, cert_files: CertFiles
) -> None:
    sa_file = tmp_path / "sa.yaml"
    sa_file.write_text(SERVICE_ACCOUNTS)
    with run_webhook(
        tmp_path, "--service-accounts-file", str(sa_file), certs=cert_files
    ) as webhook:
        for account in ("app", "app", "plain", "missing"):
            assert _post(webhook, review("team-a", account)).status_code == 200
        assert _post(webhook, {"kind": "nonsense"}).status_code == 400
        with webhook.client() as client:
            assert client.get("/mutate").status_code == 405
        metrics = _metrics(webhook)
        # upstream's names, exactly as its Go client prints them (no _total suffix)
        assert metrics['http_request_count{code="200",path="/mutate",verb="POST"}'] == 4
        assert metrics['http_request_count{code="400",path="/mutate",verb="POST"}'] == 1
        assert metrics['http_request_count{code="405",path="/mutate",verb="GET"}'] == 1
        assert metrics['http_request_latencies_count{path="/mutate",verb="POST"}'] == 5
        assert metrics['http_request_duration_microseconds_count{path="/mutate",verb="POST"}'] == 5
        assert metrics['pod_identity_webhook_pod_count{method="sts_web_identity"}'] == 2
        assert metrics["pod_identity_webhook_missing_sa_count"] == 1
        assert metrics["pod_identity_webhook_used"] == 1
        assert metrics["process_resident_memory_bytes"] > 10_000_000
        assert metrics["process_open_fds"] > 0
        # ours
        assert (
            metrics[
                'pod_identity_webhook_request_duration_seconds_count{code="200",path="/mutate"}'
            ]
            == 4
        )
        assert metrics["pod_identity_webhook_serviceaccount_cache_size"] == 2
        reloads = 'pod_identity_webhook_config_reloads_total{result="%s",source="serviceaccounts"}'
        assert metrics[reloads % "success"] == 1
        expiry = x509.load_pem_x509_certificate(cert_files.cert.read_bytes()).not_valid_after_utc
        assert metrics[
            "pod_identity_webhook_certificate_expiry_timestamp_seconds"
        ] == pytest.approx(expiry.timestamp())
        assert metrics["pod_identity_webhook_time_budget_exceeded_total"] == 0

        sa_file.write_text(SERVICE_ACCOUNTS.rsplit("- apiVersion", 1)[0])  # drop `plain`
        size = "pod_identity_webhook_serviceaccount_cache_size"
        assert eventually(lambda: _metrics(webhook)[size], 1.0) == 1
        assert _metrics(webhook)[reloads % "success"] == 2
        sa_file.write_text("items: [not a serviceaccount")
        assert eventually(lambda: _metrics(webhook).get(reloads % "failure"), 1.0) == 1
        assert _metrics(webhook)[size] == 1  # the last good file stays in force


@pytest.mark.parametrize(
    ("log_format", "verbosity"),
    [("text", ("-v",)), ("json", ())],
    ids=["text-debug", "json-info"],
)
def test_one_info_line_per_admission_with_its_facts_and_no_secrets(
    tmp_path: Path, cert_files: CertFiles, log_format: str, verbosity: tuple[str, ...]
) -> None:
    sa_file = tmp_path / "sa.yaml"
    sa_file.write_text(SERVICE_ACCOUNTS)
    body = review("team-a", "app")
    pod = body["request"]["object"]
    pod["metadata"] = {"generateName": "web-", "annotations": {"note": SECRET}}
    pod["spec"]["containers"][0]["env"] = [{"name": "PASSWORD", "value": SECRET}]
    pod["spec"]["containers"][0]["image"] = "registry.example/" + SECRET
    with run_webhook(
        tmp_path,
        "--service-accounts-file",
        str(sa_file),
        "--log-format",
        log_format,
        *verbosity,
        certs=cert_files,
    ) as webhook:
        assert _post(webhook, body).status_code == 200
        assert _post(webhook, review("team-a", "missing")).status_code == 200
        time.sleep(0.2)
        log = webhook.log()
    lines = [line for line in log.splitlines() if "admission path=/mutate" in line]
    assert len(lines) == 2
    assert SECRET not in log  # at debug level too, in the text case
    assert "arn:aws:iam" not in log
    if log_format == "json":
        entries = [orjson.loads(line) for line in lines]
        for entry in entries:
            assert entry["level"] == "info"
            assert entry["logger"] == "webhook.admission"
            assert entry["time"].endswith("Z")
            assert entry["latency_ms"] >= 0
        facts = [
            {k: entry[k] for k in ("namespace", "pod", "serviceaccount", "outcome")}
            for entry in entries
        ]
        assert facts == [
            {
                "namespace": "team-a",
                "pod": "web-",
                "serviceaccount": "team-a/app",
                "outcome": "mutated",
            },
            {
                "namespace": "team-a",
                "pod": "p",
                "serviceaccount": "team-a/missing",
                "outcome": "not found",
            },
        ]
        # every line of the log is JSON, uvicorn's own included
        for line in log.splitlines():
            orjson.loads(line)
    else:
        assert " INFO webhook.admission: admission path=/mutate uid=" in lines[0]
        assert (
            "namespace=team-a pod=web- serviceaccount=team-a/app outcome=mutated latency_ms="
            in lines[0]
        )
        assert "pod=p serviceaccount=team-a/missing outcome=not found latency_ms=" in lines[1]
        # -v is debug: a second line with the patch's paths, never their values
        assert " DEBUG webhook.admission: admission uid=" in log
        assert "patch paths=['/spec/volumes', '/spec/containers/0/env/-', " in log


def test_log_level_warning_hides_the_admission_lines(tmp_path: Path, cert_files: CertFiles) -> None:
    sa_file = tmp_path / "sa.yaml"
    sa_file.write_text(SERVICE_ACCOUNTS)
    with run_webhook(
        tmp_path,
        "--service-accounts-file",
        str(sa_file),
        "--log-level",
        "warning",
        certs=cert_files,
    ) as quiet:
        _post(quiet, review("team-a", "app"))
        time.sleep(0.2)
        quiet_log = quiet.log()
    assert " INFO " not in quiet_log
    assert "admission path=/mutate" not in quiet_log
