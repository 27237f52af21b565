"""`pod-identity-webhook sts` as a process, and boto3 or the AWS CLI run with a container's env
against it (tests/test_sts_clients.py, tests/e2e/test_sts.py).

boto3 and the AWS CLI live in their own venv (build/aws-venv, made by `make tools`): botocore
requires python-dateutil < 3, which the webhook's pinned set does not have.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT

AWS_VENV = ROOT / "build" / "aws-venv"
AWS_PYTHON = AWS_VENV / "bin" / "python"
AWS_CLI = AWS_VENV / "bin" / "aws"
CLIENTS = ("boto3", "aws-cli")
CLIENT_SECONDS = 60

needs_aws_clients = pytest.mark.skipif(
    not (AWS_PYTHON.exists() and AWS_CLI.exists()),
    reason=f"boto3 and the AWS CLI are not installed in {AWS_VENV} (make tools installs them)",
)

_BOTO3 = """
import json, boto3, botocore.exceptions
try:
    print(json.dumps(boto3.client("sts").get_caller_identity()))
except botocore.exceptions.ClientError as exc:
    print(json.dumps({"code": exc.response["Error"]["Code"], "error": str(exc)}))
"""


@contextlib.contextmanager
def running_sts(log: Path, *args: str) -> Iterator[str]:
    """The local STS on a free loopback port, its stderr in `log`; yields its URL."""
    with log.open("w") as stderr:  # a file, not a pipe: a full pipe would block the server
        process = subprocess.Popen([sys.executable, "-m", "webhook", "sts", *args], stderr=stderr)
    try:
        deadline = time.monotonic() + CLIENT_SECONDS
        while not log.read_text().endswith("\n") and time.monotonic() < deadline:
            assert process.poll() is None, log.read_text()
            time.sleep(0.05)
        first = log.read_text().splitlines()[0]
        assert first.startswith("pod-identity-webhook sts: a local STS for tests only"), first
        match = re.search(r"Listening on (https?)://(\S+):(\d+) ", first)
        assert match, first
        scheme, host, port = match.groups()
        # a server on every interface is reached on loopback
        yield f"{scheme}://{'127.0.0.1' if host in ('0.0.0.0', '[::]') else host}:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def run_client(client: str, env: dict[str, str], token: str, home: Path) -> dict[str, str]:
    """boto3's or the CLI's GetCallerIdentity answer (or its error's code and text) in a
    process whose env is `env` alone, the token written where AWS_WEB_IDENTITY_TOKEN_FILE
    points, as kubelet writes it; `home` holds no ~/.aws, so nothing else supplies credentials."""
    token_file = Path(env["AWS_WEB_IDENTITY_TOKEN_FILE"])
    token_file.parent.mkdir(parents=True, exist_ok=True)
    token_file.write_text(token)
    home.mkdir(parents=True, exist_ok=True)
    process_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), **env}
    argv = (
        [str(AWS_PYTHON), "-c", _BOTO3]
        if client == "boto3"
        else [str(AWS_CLI), "sts", "get-caller-identity", "--output", "json"]
    )
    done = subprocess.run(
        argv, env=process_env, capture_output=True, text=True, timeout=CLIENT_SECONDS, check=False
    )
    if client == "boto3" or done.returncode == 0:
        assert done.returncode == 0, done.stderr
        answer: dict[str, str] = json.loads(done.stdout)
        return answer
    error = done.stderr.strip()
    code = re.search(r"An error occurred \((\w+)\)", error)
    assert code, error
    return {"code": code.group(1), "error": error}
