"""Sources through the real server: reload on change, bad files, container credentials."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path
from typing import Any

import httpx
import orjson

from tests.support.polling import eventually
from tests.support.server import CertFiles, run_webhook, serve_expecting_exit
from webhook.assembly.webhook import assemble
from webhook.flags.settings import Settings
from webhook.server.admission.apps import WebhookApp

ROLE_A = "arn:aws:iam::111122223333:role/a"
ROLE_B = "arn:aws:iam::111122223333:role/b"


def sa_yaml(role: str) -> str:
    return f"kind: ServiceAccount\nmetadata: {{name: app, namespace: ns, annotations: {{eks.amazonaws.com/role-arn: '{role}'}}}}\n"


def review() -> bytes:
    return orjson.dumps(
        {
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": "u",
                "namespace": "ns",
                "operation": "CREATE",
                "object": {
                    "metadata": {"name": "p"},
                    "spec": {
                        "serviceAccountName": "app",
                        "containers": [{"name": "c", "image": "i"}],
                    },
                },
            },
        }
    )


def env_of(client: httpx.Client) -> dict[str, str]:
    answer = client.post("/mutate", content=review(), headers={"Content-Type": "application/json"})
    response = answer.json()["response"]
    if "patch" not in response:
        return {}
    ops: list[dict[str, Any]] = orjson.loads(base64.b64decode(response["patch"]))
    env = next(op["value"] for op in ops if op["path"] == "/spec/containers/0/env")
    return {e["name"]: e["value"] for e in env}


def test_service_accounts_file_change_is_seen_by_the_next_admission(
    tmp_path: Path, cert_files: CertFiles
) -> None:
    sa_file = tmp_path / "sa.yaml"
    sa_file.write_text(sa_yaml(ROLE_A))
    with (
        run_webhook(tmp_path, "--service-accounts-file", str(sa_file), certs=cert_files) as webhook,
        webhook.client() as client,
    ):
        assert env_of(client)["AWS_ROLE_ARN"] == ROLE_A
        sa_file.write_text(sa_yaml(ROLE_B))
        assert eventually(lambda: env_of(client).get("AWS_ROLE_ARN") == ROLE_B)
        sa_file.write_text("kind: ServiceAccount\nmetadata: {namespace: ns}\n")
        assert eventually(
            lambda: "document 1.metadata.name: missing or not a string" in webhook.log()
        )
        assert env_of(client)["AWS_ROLE_ARN"] == ROLE_B  # the last good file stays in force
        assert str(sa_file) in webhook.log()


def test_container_credentials_file_switches_mode_and_empty_file_clears_it(
    tmp_path: Path, cert_files: CertFiles
) -> None:
    sa_file = tmp_path / "sa.yaml"
    sa_file.write_text(sa_yaml(ROLE_A))
    cc_file = tmp_path / "cc.json"
    cc_file.write_text('{"identities": [{"namespace": "ns", "serviceAccount": "app"}]}')
    args = (
        "--service-accounts-file",
        str(sa_file),
        "--watch-container-credentials-config",
        str(cc_file),
    )
    with run_webhook(tmp_path, *args, certs=cert_files) as webhook, webhook.client() as client:
        env = env_of(client)
        assert env["AWS_CONTAINER_CREDENTIALS_FULL_URI"] == "http://169.254.170.23/v1/credentials"
        assert "AWS_ROLE_ARN" not in env
        cc_file.write_text("")
        assert eventually(lambda: env_of(client).get("AWS_ROLE_ARN") == ROLE_A)


def test_bad_service_accounts_file_fails_start_up_naming_file_field_and_reason(
    tmp_path: Path, cert_files: CertFiles
) -> None:
    sa_file = tmp_path / "sa.yaml"
    sa_file.write_text(
        "kind: List\nitems:\n- {kind: ServiceAccount, metadata: {name: a, annotations: {eks.amazonaws.com/token-expiration: 3600}}}\n"
    )
    result = serve_expecting_exit(
        "--service-accounts-file",
        str(sa_file),
        "--tls-cert",
        str(cert_files.cert),
        "--tls-key",
        str(cert_files.key),
    )
    assert result.returncode == 2
    assert (
        f"{sa_file}: document 1.items[0].metadata.annotations: expected a mapping of strings to strings"
        in result.stderr
    )
    assert "Traceback" not in result.stderr


def test_missing_tls_files_fail_start_up_clearly(tmp_path: Path) -> None:
    sa_file = tmp_path / "sa.yaml"
    sa_file.write_text(sa_yaml(ROLE_A))
    result = serve_expecting_exit(
        "--in-cluster=false",  # with upstream's default true, the message adds what to mount
        "--service-accounts-file",
        str(sa_file),
        "--tls-cert",
        str(tmp_path / "none.crt"),
        "--tls-key",
        str(tmp_path / "none.key"),
    )
    assert result.returncode == 2
    assert result.stderr == (
        f"pod-identity-webhook serve: --tls-cert='{tmp_path / 'none.crt'}' is invalid: "
        "expected an existing PEM file\n"
    )
    assert "Traceback" not in result.stderr


def test_readyz_is_503_until_the_service_accounts_are_loaded(tmp_path: Path) -> None:
    sa_file = tmp_path / "sa.yaml"
    sa_file.write_text(sa_yaml(ROLE_A))
    service = assemble(Settings(service_accounts_file=sa_file))
    app = WebhookApp(service)

    async def scenario() -> tuple[httpx.Response, httpx.Response]:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t"
        ) as client:
            before = await client.get("/readyz")
            service.load_sources()
            after = await client.get("/readyz")
            return before, after

    before, after = asyncio.run(scenario())
    assert before.status_code == 503
    assert before.text == "not ready: ServiceAccounts have not been loaded yet\n"
    assert after.status_code == 200
