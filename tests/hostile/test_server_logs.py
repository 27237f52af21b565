"""What a client writes into the log: escaped, capped, and never an annotation value."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from tests.hostile.server_support import BODIES, SERVICE_ACCOUNTS
from tests.support.server import CertFiles, RunningWebhook, run_webhook

JSON = {"Content-Type": "application/json"}


def _review(**metadata: Any) -> bytes:
    review = orjson.loads((BODIES / "typical.json").read_bytes())
    pod_metadata = review["request"]["object"]["metadata"]
    pod_metadata.pop("name", None)
    pod_metadata.update(metadata)
    return orjson.dumps(review)


def _post(webhook: RunningWebhook, body: bytes) -> dict[str, Any]:
    with webhook.client() as client:
        answer = client.post("/mutate", content=body, headers=JSON)
    assert answer.status_code == 200
    response: dict[str, Any] = answer.json()["response"]
    return response


def _admission_lines(webhook: RunningWebhook) -> list[str]:
    webhook.stop()  # written out at exit
    return [line for line in webhook.log().splitlines() if "webhook.admission: admission" in line]


def test_a_newline_in_the_uid_or_generatename_cannot_forge_a_text_line(
    tmp_path: Path, cert_files: CertFiles
) -> None:
    forged = "x\n2026-01-01 00:00:00,000 INFO webhook.admission: admission path=/mutate uid=forged"
    review = orjson.loads(_review(generateName=forged + "-"))
    review["request"]["uid"] = "uid\r\n" + forged
    with run_webhook(
        tmp_path, "--service-accounts-file", SERVICE_ACCOUNTS, certs=cert_files
    ) as webhook:
        _post(webhook, orjson.dumps(review))
        lines = _admission_lines(webhook)
    assert len(lines) == 1, lines
    assert "uid=uid\\r\\nx\\n2026-01-01" in lines[0]
    assert "pod=x\\n2026-01-01" in lines[0]


def test_a_5mb_generatename_writes_a_short_line(tmp_path: Path, cert_files: CertFiles) -> None:
    with run_webhook(
        tmp_path, "--service-accounts-file", SERVICE_ACCOUNTS, certs=cert_files
    ) as webhook:
        _post(webhook, _review(generateName="g" * 5_000_000))
        lines = _admission_lines(webhook)
    assert len(lines) == 1
    assert "pod=" + "g" * 255 + "…" in lines[0]
    assert len(lines[0]) < 1024


def test_annotation_values_are_not_logged_even_at_debug(
    tmp_path: Path, cert_files: CertFiles
) -> None:
    annotations = {
        "eks.amazonaws.com/token-expiration": "SECRET-1",
        "eks.amazonaws.com/skip-containers": "SECRET-2,\nSECRET-3",
        "eks.amazonaws.com/role-arn": "SECRET-4",
    }
    with run_webhook(
        tmp_path,
        "--service-accounts-file",
        SERVICE_ACCOUNTS,
        "--log-level",
        "debug",
        certs=cert_files,
    ) as webhook:
        response = _post(webhook, _review(generateName="p-", annotations=annotations))
        webhook.stop()
        log = webhook.log()
    assert response.get("warnings"), "the pod's annotations were read"
    assert "admission uid=" in log  # the debug line is there
    assert "SECRET" not in log
