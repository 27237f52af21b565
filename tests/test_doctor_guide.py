"""docs/self-hosted.md is executable: its `pod-identity-webhook` commands run here, against a
kubeadm-like /etc/kubernetes/pki in a temporary directory, and the AWS CLI itself parses every
`aws` command and builds its request for a local stub (dummy credentials, nothing leaves the
machine); the stub records each request so the test checks the action and its parameters.

Blocks are marked in the markdown with an HTML comment on the line before the fence:
`<!-- check: cli -->`, `<!-- check: aws -->`, `<!-- check: yaml -->`, `<!-- check: file NAME -->`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import venv
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from tests.conftest import ROOT

GUIDE = ROOT / "docs" / "self-hosted.md"
FIXTURES = Path(__file__).parent / "fixtures" / "oidc"
AWSCLI_VENV = ROOT / "build" / "awscli-venv"
ISSUER = "https://my-oidc.s3.eu-west-1.amazonaws.com/cluster-a"
_BLOCK = re.compile(r"<!-- check: (\w+)(?: (\S+))? -->\n```(\w*)\n(.*?)\n```", re.DOTALL)
_ASSIGNMENT = re.compile(r"^[A-Z_]+=\S+$", re.MULTILINE)
_INLINE_AWS = re.compile(r"`(aws [^`]+)`")


@dataclass(frozen=True)
class Block:
    kind: str
    name: str
    text: str


def blocks(kind: str | None = None) -> list[Block]:
    found = [Block(m[1], m[2] or "", m[4]) for m in _BLOCK.finditer(GUIDE.read_text())]
    return [block for block in found if kind is None or block.kind == kind]


def kubeadm_node(tmp_path: Path) -> Path:
    """The working directory of a control-plane node, with kubeadm's sa.key and sa.pub."""
    pki = tmp_path / "pki"
    pki.mkdir()
    shutil.copy(FIXTURES / "k8s-rsa.key.pem", pki / "sa.key")
    shutil.copy(FIXTURES / "k8s-rsa.pub.pem", pki / "sa.pub")
    work = tmp_path / "node"
    work.mkdir()
    return work


def kubectl_standins(work: Path) -> None:
    """What the guide's kubectl and `aws iam get-role` lines would have written."""
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "checkout-7d9f", "namespace": "payments"},
        "spec": {"serviceAccountName": "checkout", "containers": [{"name": "app", "image": "a"}]},
    }
    (work / "pod.yaml").write_text(yaml.safe_dump(pod))
    role = "arn:aws:iam::111122223333:role/payments-checkout"
    account = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {
            "name": "checkout",
            "namespace": "payments",
            "annotations": {"eks.amazonaws.com/role-arn": role},
        },
    }
    (work / "sa.yaml").write_text(yaml.safe_dump(account))
    shutil.copy(work / "token", work / "pod-token")
    policy = json.loads((work / "irsa" / "trust-policy.json").read_text())
    get_role = {
        "Role": {"RoleName": "payments-checkout", "Arn": role, "AssumeRolePolicyDocument": policy}
    }
    (work / "role.json").write_text(json.dumps(get_role))


def run_block(text: str, work: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """One block in bash, after the variable assignments of the blocks before it."""
    script = text.replace("/etc/kubernetes/pki", str(work.parent / "pki"))
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def our_env() -> dict[str, str]:
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    return {"PATH": path, "HOME": os.environ.get("HOME", "/tmp"), "LANG": "C.UTF-8"}


def run_cli_blocks(work: Path) -> str:
    """Every cli block in order; returns the variable assignments they made."""
    assignments = ""
    for block in blocks("cli"):
        if "pod-identity-webhook doctor" in block.text:
            kubectl_standins(work)
        result = run_block(assignments + block.text, work, our_env())
        assert result.returncode == 0, f"{block.text}\n{result.stderr}"
        assignments += "".join(f"{line}\n" for line in _ASSIGNMENT.findall(block.text))
        if "pod-identity-webhook doctor" in block.text:
            assert ", 0 failed," in result.stdout, result.stdout
    return assignments


def test_the_guide_marks_every_command_block() -> None:
    text = GUIDE.read_text()
    fenced = re.findall(r"(?:<!-- check: [^>]+ -->\n)?```(?:sh|bash)\n.*?\n```", text, re.DOTALL)
    unmarked = [block for block in fenced if not block.startswith("<!-- check:")]
    assert unmarked == []
    assert len(blocks("cli")) >= 5 and len(blocks("aws")) >= 4


def test_the_guides_webhook_commands_run_on_a_kubeadm_node(tmp_path: Path) -> None:
    work = kubeadm_node(tmp_path)
    assert "ISSUER=" + ISSUER in run_cli_blocks(work)
    site = work / "irsa" / "site"
    keys = json.loads((site / "keys.json").read_text())["keys"]
    assert len(keys) == 2  # the separate-key route publishes the old and the new key
    combined = (tmp_path / "pki" / "sa-and-irsa.pub").read_text()
    assert combined.count("BEGIN PUBLIC KEY") == 2
    assert (
        json.loads((site / ".well-known" / "openid-configuration").read_text())["issuer"] == ISSUER
    )
    assert not (work / "token").read_text().endswith("\n")


def test_the_guides_files_and_kubeadm_configs_parse() -> None:
    for block in blocks("file"):
        assert isinstance(json.loads(block.text), dict), block.name
    configs = {doc["apiVersion"]: doc for doc in (yaml.safe_load(b.text) for b in blocks("yaml"))}
    v1beta3 = configs["kubeadm.k8s.io/v1beta3"]["apiServer"]["extraArgs"]
    assert isinstance(v1beta3, dict)  # a map: one value per flag
    assert v1beta3["service-account-issuer"] == ISSUER
    v1beta4 = configs["kubeadm.k8s.io/v1beta4"]["apiServer"]["extraArgs"]
    issuers = [arg["value"] for arg in v1beta4 if arg["name"] == "service-account-issuer"]
    assert issuers == [ISSUER, "https://kubernetes.default.svc.cluster.local"]  # signing one first
    for args in (
        v1beta3["api-audiences"],
        *(a["value"] for a in v1beta4 if a["name"] == "api-audiences"),
    ):
        assert args.split(",") == ["https://kubernetes.default.svc.cluster.local", ISSUER]


# -- the AWS CLI against a local stub -----------------------------------------------------------


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    form: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


class AwsStub:
    """Answers every AWS API call with an empty success; query-protocol actions (IAM, STS) get
    the `<ActionResponse><ActionResult/>` envelope their parser expects."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _answer(self) -> None:
                size = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(size) if size else b""
                url = urlsplit(self.path)
                form = parse_qs(body.decode("utf-8", "replace")) if b"Action=" in body else {}
                headers = {key.lower(): value for key, value in self.headers.items()}
                stub.requests.append(
                    Recorded(
                        self.command,
                        url.path,
                        parse_qs(url.query, keep_blank_values=True),
                        form,
                        headers,
                        body,
                    )
                )
                reply = b""
                if form.get("Action"):
                    action = form["Action"][0]
                    reply = f"<{action}Response><{action}Result/></{action}Response>".encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(reply)))
                self.send_header("ETag", '"0"')
                self.end_headers()
                self.wfile.write(reply)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _answer

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def actions(self) -> list[str]:
        return [r.form["Action"][0] for r in self.requests if r.form.get("Action")]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def awscli() -> Path:
    """The AWS CLI from PyPI in a virtualenv of its own (its pins are not ours); built once."""
    aws = AWSCLI_VENV / "bin" / "aws"
    if not aws.exists():
        venv.create(AWSCLI_VENV, with_pip=True)
        subprocess.run(
            [str(AWSCLI_VENV / "bin" / "pip"), "install", "-q", "awscli"], check=True, timeout=600
        )
    return aws


@pytest.fixture
def aws_stub() -> Iterator[AwsStub]:
    stub = AwsStub()
    yield stub
    stub.close()


@pytest.mark.slow
def test_the_guides_aws_commands_parse_and_build_the_right_requests(
    tmp_path: Path, aws_stub: AwsStub
) -> None:
    aws = awscli()
    work = kubeadm_node(tmp_path)
    assignments = run_cli_blocks(work)
    for block in blocks("file"):
        (work / block.name).write_text(block.text)
    env = {
        **our_env(),
        "PATH": f"{aws.parent}{os.pathsep}{os.environ['PATH']}",
        "AWS_ENDPOINT_URL": aws_stub.url,
        "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "dummy",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
        "AWS_MAX_ATTEMPTS": "1",
    }
    inline = [" ".join(m.split()) for m in _INLINE_AWS.findall(GUIDE.read_text())]
    commands = [block.text for block in blocks("aws")] + [
        line
        for line in inline
        if not line.startswith("aws s3control")  # needs a DNS host prefix
    ]
    for text in commands:
        result = run_block(assignments + text, work, env)
        assert result.returncode == 0, f"{text}\n{result.stderr}"

    assert aws_stub.actions() == [
        "CreateOpenIDConnectProvider",
        "CreateRole",
        "AttachRolePolicy",
        "AssumeRoleWithWebIdentity",
        "GetRole",
    ]
    forms = {r.form["Action"][0]: r.form for r in aws_stub.requests if r.form.get("Action")}
    assert forms["CreateOpenIDConnectProvider"]["Url"] == [ISSUER]
    assert forms["CreateOpenIDConnectProvider"]["ClientIDList.member.1"] == ["sts.amazonaws.com"]
    trust = json.loads(forms["CreateRole"]["AssumeRolePolicyDocument"][0])
    assert trust == json.loads((work / "irsa" / "trust-policy.json").read_text())
    token = forms["AssumeRoleWithWebIdentity"]["WebIdentityToken"][0]
    assert token == (work / "token").read_text()
    rest = [r for r in aws_stub.requests if not r.form]
    uploads = [r for r in rest if r.method == "PUT" and r.path.startswith("/my-oidc/cluster-a/")]
    assert sorted(r.path for r in uploads) == sorted(
        2 * ["/my-oidc/cluster-a/.well-known/openid-configuration", "/my-oidc/cluster-a/keys.json"]
    )
    assert {r.headers["content-type"] for r in uploads} == {"application/json"}
    policies = [json.loads(r.body) for r in rest if "policy" in r.query]
    assert [p["Statement"][0]["Resource"] for p in policies] == 2 * [
        "arn:aws:s3:::my-oidc/cluster-a/*"
    ]
    assert any("publicAccessBlock" in r.query for r in rest)
    assert [r.path for r in rest if r.method == "POST"] == [
        "/2020-05-31/origin-access-control",
        "/2020-05-31/distribution",
    ]
