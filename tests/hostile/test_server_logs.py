"""What a client writes into the log: escaped, capped, and never an annotation value."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from tests.hostile.server_support import BODIES, SERVICE_ACCOUNTS
from tests.support.polling import eventually
from tests.support.server import CertFiles, RunningWebhook, run_webhook, shared_webhook

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


text_log = shared_webhook("--service-accounts-file", SERVICE_ACCOUNTS)


def _admission_lines(webhook: RunningWebhook, marker: str) -> list[str]:
    """The admission lines holding `marker`, once written (they wait up to 20 ms)."""

    def lines() -> list[str]:
        return [
            line
            for line in webhook.log().splitlines()
            if "webhook.admission: admission" in line and marker in line
        ]

    eventually(lambda: bool(lines()), timeout=5)
    return lines()


def test_a_newline_in_the_uid_or_generatename_cannot_forge_a_text_line(
    text_log: RunningWebhook,
) -> None:
    forged = "x\n2026-01-01 00:00:00,000 INFO webhook.admission: admission path=/mutate uid=forged"
    review = orjson.loads(_review(generateName=forged + "-"))
    review["request"]["uid"] = "uid-forge\r\n" + forged
    _post(text_log, orjson.dumps(review))
    lines = _admission_lines(text_log, "forged")
    assert len(lines) == 1, lines
    assert "uid=uid-forge\\r\\nx\\n2026-01-01" in lines[0]
    assert "pod=x\\n2026-01-01" in lines[0]


def test_a_5mb_generatename_writes_a_short_line(text_log: RunningWebhook) -> None:
    review = orjson.loads(_review(generateName="g" * 5_000_000))
    review["request"]["uid"] = "uid-long-name"
    _post(text_log, orjson.dumps(review))
    lines = _admission_lines(text_log, "uid-long-name")
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
