from __future__ import annotations

import base64
import json
from pathlib import Path

import jsonpatch

from tests.conftest import ROOT
from tests.support.server import CertFiles, run_webhook


def test_example_review_is_mutated_through_real_https_server(
    tmp_path: Path, cert_files: CertFiles
) -> None:
    body = (ROOT / "examples" / "admissionreview.json").read_bytes()
    with (
        run_webhook(
            tmp_path,
            "--service-accounts-file",
            str(ROOT / "examples" / "serviceaccounts.yaml"),
            certs=cert_files,
        ) as webhook,
        webhook.client() as client,
    ):
        answer = client.post("/mutate", content=body, headers={"Content-Type": "application/json"})
    assert answer.status_code == 200
    review = answer.json()
    assert review["response"]["uid"] == "705ab4f5-6393-11e8-b7cc-42010a800002"
    ops = json.loads(base64.b64decode(review["response"]["patch"]))
    pod = json.loads(body)["request"]["object"]
    mutated = jsonpatch.apply_patch(pod, ops)
    env = {e["name"]: e["value"] for e in mutated["spec"]["containers"][0]["env"]}
    assert env["AWS_ROLE_ARN"] == "arn:aws:iam::111122223333:role/s3-reader"
