"""`doctor` reading the issuer over real HTTPS (127.0.0.1, certificates from webhook/certs.py)
and the ServiceAccount from a cluster (the fake API server, through the kubernetes client)."""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.support.fakeapi import FakeApiServer
from tests.test_doctor import World, failures
from webhook.certs import issue
from webhook.cli import main
from webhook.doctor.fetch import MAX_DOCUMENT_BYTES


class IssuerSite:
    """A static HTTPS site: path -> body; anything else is 404."""

    def __init__(self, directory: Path) -> None:
        pem = issue(
            common_name="issuer",
            dns_names=["localhost"],
            ip_addresses=["127.0.0.1"],
            days=1,
            ca_days=1,
        )
        for name, data in (("ca.pem", pem.ca_cert), ("cert.pem", pem.cert), ("key.pem", pem.key)):
            (directory / name).write_bytes(data)
        self.ca_file = directory / "ca.pem"
        self.files: dict[str, bytes] = {}
        site = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_GET(self) -> None:
                body = site.files.get(self.path)
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body or b"")))
                self.end_headers()
                self.wfile.write(body or b"")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(directory / "cert.pem"), str(directory / "key.pem"))
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.server.server_address[1]}/clusters/prod"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def publish(self, world: World) -> None:
        self.files = {
            "/clusters/prod/.well-known/openid-configuration": json.dumps(world.discovery).encode(),
            "/clusters/prod/keys.json": json.dumps(world.jwks).encode(),
        }

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def site(tmp_path: Path) -> Iterator[IssuerSite]:
    (tmp_path / "site").mkdir()
    served = IssuerSite(tmp_path / "site")
    yield served
    served.close()


def fetched(
    world: World, site: IssuerSite, tmp_path: Path, capsys: pytest.CaptureFixture[str], *extra: str
) -> tuple[int, dict[str, dict[str, str]]]:
    argv = world.write(tmp_path)
    for flag in ("--discovery", "--jwks"):
        index = argv.index(flag)
        del argv[index : index + 2]
    code = main([*argv, "--issuer-url", site.url, *extra, "-o", "json"])
    return code, {c["name"]: c for c in json.loads(capsys.readouterr().out)["checks"]}


def test_issuer_documents_are_fetched_over_https_and_the_port_is_named(
    site: IssuerSite, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world = World(issuer=site.url)
    site.publish(world)
    code, checks = fetched(world, site, tmp_path, capsys, "--issuer-ca-file", str(site.ca_file))
    # everything verifies; IAM alone would refuse this URL, for its port
    assert failures(checks) == ["issuer.url"]
    assert "a port" in checks["issuer.url"]["seen"]
    assert checks["token.signature"]["status"] == "pass"
    assert checks["issuer.discovery"]["status"] == "pass"
    assert code == 1


@pytest.mark.parametrize(
    ("breakage", "check", "words"),
    [
        ("discovery-issuer", "issuer.discovery", "differs from the URL it is served under"),
        ("no-keys-json", "issuer.jwks", "HTTP 404"),
        ("huge-keys-json", "issuer.jwks", f"larger than {MAX_DOCUMENT_BYTES} bytes"),
        ("no-discovery", "issuer.discovery", "HTTP 404"),
        ("untrusted-certificate", "issuer.discovery", "CERTIFICATE_VERIFY_FAILED"),
    ],
)
def test_what_sts_would_fetch_fails_by_name(
    breakage: str,
    check: str,
    words: str,
    site: IssuerSite,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    world = World(issuer=site.url)
    if breakage == "discovery-issuer":
        world.discovery["issuer"] = "https://oidc.example.com"
    site.publish(world)
    if breakage == "no-keys-json":
        del site.files["/clusters/prod/keys.json"]
    elif breakage == "huge-keys-json":
        site.files["/clusters/prod/keys.json"] = b" " * (MAX_DOCUMENT_BYTES + 10) + b"{}"
    elif breakage == "no-discovery":
        site.files.clear()
    extra = () if breakage == "untrusted-certificate" else ("--issuer-ca-file", str(site.ca_file))
    code, checks = fetched(world, site, tmp_path, capsys, *extra)
    assert set(failures(checks)) == {"issuer.url", check}
    assert words in checks[check]["seen"] + checks[check]["summary"]
    assert code == 1


@pytest.fixture
def api() -> Iterator[FakeApiServer]:
    with FakeApiServer() as server:
        yield server


def _pod_only(world: World, tmp_path: Path) -> list[str]:
    argv = world.write(tmp_path)
    (tmp_path / "pod.yaml").write_text(json.dumps(world.pod))
    return argv


def test_the_serviceaccount_is_read_from_the_cluster(
    api: FakeApiServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world = World()
    api.put("serviceaccounts", world.service_account)
    argv = _pod_only(world, tmp_path)
    kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig")
    assert main([*argv, "--kubeconfig", str(kubeconfig), "-o", "json"]) == 0
    checks = {c["name"]: c for c in json.loads(capsys.readouterr().out)["checks"]}
    assert checks["pod.serviceaccount"]["summary"].endswith(f"(--kubeconfig {kubeconfig})")
    assert checks["pod.role-arn"]["status"] == "pass"
    assert ("get", "/api/v1/namespaces/payments/serviceaccounts/checkout") in api.requests


def test_a_serviceaccount_missing_from_the_cluster_fails(
    api: FakeApiServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = _pod_only(World(), tmp_path)
    kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig")
    assert main([*argv, "--kubeconfig", str(kubeconfig), "-o", "json"]) == 1
    checks = {c["name"]: c for c in json.loads(capsys.readouterr().out)["checks"]}
    assert failures(checks) == ["pod.serviceaccount"]


def test_an_unreachable_cluster_is_bad_input(
    api: FakeApiServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = _pod_only(World(), tmp_path)
    kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig")
    api.fail("get", status_code=500)
    assert main([*argv, "--kubeconfig", str(kubeconfig)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(
        f"pod-identity-webhook doctor: --kubeconfig {kubeconfig}: get serviceaccount"
    )
    assert err.count("\n") == 1


def test_pod_from_the_cluster_needs_a_kubeconfig(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor", "--pod", "web-0", "-n", "payments"]) == 2
    assert capsys.readouterr().err == (
        "pod-identity-webhook doctor: --pod needs --kubeconfig, the cluster to read the pod from\n"
    )


def test_a_file_and_a_pod_from_the_cluster_are_one_too_many(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["doctor", "-f", str(tmp_path / "pod.yaml"), "--pod", "web-0"])
    assert exited.value.code == 2
    assert "-f/--filename" in capsys.readouterr().err


def test_a_missing_pod_in_the_cluster_is_bad_input_naming_it(
    api: FakeApiServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig")
    assert (
        main(["doctor", "--pod", "web-0", "-n", "payments", "--kubeconfig", str(kubeconfig)]) == 2
    )
    assert capsys.readouterr().err == (
        "pod-identity-webhook doctor: --pod web-0: no pod web-0 in namespace payments "
        f"(--kubeconfig {kubeconfig}); -n NAMESPACE names another\n"
    )
