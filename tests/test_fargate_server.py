"""/mutate-fargate through the real HTTPS server, and `mutate --fargate-profiles`."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import yaml

from tests.conftest import ROOT
from tests.support.inprocess import serve_in_process
from tests.support.polling import eventually
from tests.support.server import CertFiles, run_webhook, serve_expecting_exit
from webhook.cli import main

PROFILES_A = "- {name: fp-a, selectors: [{namespace: ns, labels: {app: web}}]}\n"
PROFILES_B = "fargateProfiles:\n- {name: fp-b, selectors: [{namespace: 'n?'}]}\n"


def review(labels: dict[str, str]) -> bytes:
    return orjson.dumps(
        {
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": "u-1",
                "namespace": "ns",
                "operation": "CREATE",
                "object": {
                    "metadata": {"name": "p", "labels": labels},
                    "spec": {"containers": [{"name": "c", "image": "i"}]},
                },
            },
        }
    )


def post(client: httpx.Client, labels: dict[str, str]) -> dict[str, Any]:
    answer = client.post(
        "/mutate-fargate", content=review(labels), headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 200
    response: dict[str, Any] = answer.json()["response"]
    return response


def ops_of(response: dict[str, Any]) -> list[dict[str, Any]]:
    if "patch" not in response:
        return []
    ops: list[dict[str, Any]] = orjson.loads(base64.b64decode(response["patch"]))
    return ops


def profile_of(response: dict[str, Any]) -> str:
    values = [op["value"] for op in ops_of(response) if "fargate-profile" in op["path"]]
    return str(values[0]) if values else ""


def test_matching_pod_is_handed_to_fargate_and_reload_keeps_the_last_good_profiles(
    tmp_path: Path, cert_files: CertFiles
) -> None:
    profiles = tmp_path / "profiles.yaml"
    profiles.write_text(PROFILES_A)
    sa_file = tmp_path / "sa.yaml"
    sa_file.write_text("")
    args = (
        "--service-accounts-file",
        str(sa_file),
        "--fargate-profiles",
        str(profiles),
        "--fargate-scheduler-name",
        "fs",
    )
    with run_webhook(tmp_path, *args, certs=cert_files) as webhook, webhook.client() as client:
        response = post(client, {"app": "web"})
        assert response == {
            "uid": "u-1",
            "allowed": True,
            "patchType": "JSONPatch",
            "patch": response["patch"],
        }
        assert ops_of(response) == [
            {"op": "add", "path": "/spec/schedulerName", "value": "fs"},
            {
                "op": "add",
                "path": "/metadata/labels/eks.amazonaws.com~1fargate-profile",
                "value": "fp-a",
            },
        ]
        assert post(client, {"app": "db"}) == {"uid": "u-1", "allowed": True}

        profiles.write_text(PROFILES_B)  # the mapping shape, with a wildcard
        assert eventually(lambda: profile_of(post(client, {"app": "db"})) == "fp-b")

        profiles.write_text("- {name: fp-c, selectors: [{labels: {app: web}}]}\n")
        assert eventually(lambda: "selectors[0].namespace: missing or empty" in webhook.log())
        assert profile_of(post(client, {"app": "db"})) == "fp-b"  # old profiles stay
        assert str(profiles) in webhook.log()
        assert httpx.get(webhook.metrics_url + "/readyz").status_code == 200

        metrics = httpx.get(webhook.metrics_url + "/metrics").text
        assert 'pod_identity_webhook_fargate_pods_scheduled_total{profile="fp-a"} 1' in metrics
        assert 'pod_identity_webhook_fargate_pods_scheduled_total{profile="fp-b"}' in metrics
        for result in ("success", "failure"):
            assert (
                f'pod_identity_webhook_config_reloads_total{{result="{result}",source="fargate-profiles"}}'
                in metrics
            )
        # admission lines are written in batches, within HOLD_SECONDS
        assert eventually(lambda: "path=/mutate-fargate uid=u-1" in webhook.log())


def test_without_fargate_profiles_the_path_allows_without_patch(tmp_path: Path) -> None:
    sa_file = tmp_path / "sa.yaml"
    sa_file.write_text("")
    with (
        serve_in_process("--service-accounts-file", str(sa_file)) as webhook,
        webhook.client() as client,
    ):
        assert post(client, {"app": "web"}) == {"uid": "u-1", "allowed": True}
        bad = client.post(
            "/mutate-fargate", content=b"{", headers={"Content-Type": "application/json"}
        )
        assert bad.status_code == 400


def test_bad_profiles_file_fails_start_up_naming_file_profile_and_field(
    tmp_path: Path, cert_files: CertFiles
) -> None:
    profiles = tmp_path / "profiles.yaml"
    profiles.with_name("sa.yaml").write_text("")
    profiles.write_text(
        "- {name: a, selectors: [{namespace: n}]}\n- {name: a, selectors: [{namespace: m}]}\n"
    )
    result = serve_expecting_exit(
        "--service-accounts-file",
        str(profiles.with_name("sa.yaml")),
        "--fargate-profiles",
        str(profiles),
        "--tls-cert",
        str(cert_files.cert),
        "--tls-key",
        str(cert_files.key),
    )
    assert result.returncode == 2
    assert f"{profiles}: [1].name: 'a' is also the name of [0]" in result.stderr
    assert "Traceback" not in result.stderr


POD = """\
apiVersion: v1
kind: Pod
metadata: {name: p, namespace: jobs, labels: {team: data-a}}
spec:
  serviceAccountName: s3-reader
  containers: [{name: c, image: i, securityContext: {privileged: true}}]
"""


def test_mutate_cli_applies_identity_then_fargate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pod_file = tmp_path / "pod.yaml"
    sa = tmp_path / "sa.yaml"
    sa.write_text(
        "kind: ServiceAccount\nmetadata: {name: s3-reader, namespace: jobs, "
        "annotations: {eks.amazonaws.com/role-arn: 'arn:aws:iam::111122223333:role/r'}}\n"
    )
    pod_file.write_text(POD)
    code = main(
        [
            "mutate",
            "-f",
            str(pod_file),
            "--service-accounts-file",
            str(sa),
            "--fargate-profiles",
            str(ROOT / "examples" / "fargate-profiles.yaml"),
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0
    pod = yaml.safe_load(out)
    assert pod["spec"]["schedulerName"] == "fargate-scheduler"
    assert pod["metadata"]["labels"] == {
        "team": "data-a",
        "eks.amazonaws.com/fargate-profile": "fp-batch",
    }
    assert [e["name"] for e in pod["spec"]["containers"][0]["env"]] == [
        "AWS_ROLE_ARN",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
    ]
    # where the pod would run is information; only what kubectl would show is a warning
    assert "note: fargate: scheduled on fargate (profile 'fp-batch')\n" in err
    assert "warning: fargate" not in err
    assert "warning: container 'c' is privileged, which Fargate does not allow" in err


def test_mutate_cli_reports_a_bad_profiles_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pod_file = tmp_path / "pod.yaml"
    pod_file.write_text(POD)
    profiles = tmp_path / "fp.yaml"
    profiles.write_text("- {name: a}\n")
    assert main(["mutate", "-f", str(pod_file), "--fargate-profiles", str(profiles)]) == 2
    assert f"{profiles}: [0] (profile 'a').selectors: missing or empty" in capsys.readouterr().err


def test_mutate_cli_leaves_daemonset_pods_off_fargate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    daemonset = {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "d", "namespace": "batch-1"},
        "spec": {"template": {"metadata": {}, "spec": {"containers": [{"name": "c"}]}}},
    }
    path = tmp_path / "ds.yaml"
    path.write_text(yaml.safe_dump(daemonset))
    examples = str(ROOT / "examples" / "fargate-profiles.yaml")
    assert main(["mutate", "-f", str(path), "--fargate-profiles", examples, "-o", "patch"]) == 0
    out, err = capsys.readouterr()
    assert orjson.loads(out) == []
    assert "DaemonSet pods are never scheduled on Fargate" in err
