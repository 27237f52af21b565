"""A real Kubernetes control plane as local processes: etcd, kube-apiserver, kube-controller-manager.

The binaries are the ones `make e2e-tools` builds from their Go modules into build/e2e/bin/
(hack/e2e/versions.env pins them). They run on 127.0.0.1 the way envtest runs them, with what
envtest leaves out and a cluster has: RBAC authorization, the default admission plugins
(ServiceAccount and MutatingAdmissionWebhook among them), a service-account signing key made by
`pod-identity-webhook oidc keygen` and an https issuer, and an audit log that records who
asked for what (the RBAC check reads it). There is no scheduler and no kubelet: pods stay
Pending and tests read the stored object back (docs/cluster.md, "The real-cluster suite").
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import ipaddress
import json
import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.support.server import free_port
from webhook.commands.oidc import PRIVATE_KEY_FILE, PUBLIC_KEY_FILE

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("E2E_BIN", ROOT / "build" / "e2e" / "bin"))
ISSUER = "https://oidc.e2e.pod-identity-webhook.test/cluster-a"
START_TIMEOUT = 90.0
AUDIT_POLICY_FILE = "audit-policy.yaml"

# Every request the API server serves is recorded at Metadata level: user, verb, resource, code.
AUDIT_POLICY = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    "omitStages": ["RequestReceived"],
    "rules": [{"level": "Metadata"}],
}


def binary(name: str) -> Path:
    path = BIN / name
    if not os.access(path, os.X_OK):
        raise FileNotFoundError(f"{path} is missing: run `make e2e-tools` first")
    return path


@dataclass(frozen=True)
class Pki:
    """A CA, the API server's serving pair and an admin client pair (system:masters)."""

    ca: Path
    ca_key: Path
    serving_cert: Path
    serving_key: Path
    admin_cert: Path
    admin_key: Path


def _name(common_name: str, organization: str | None = None) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(attributes)


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def write_pki(directory: Path) -> Pki:
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5)
    later = now + datetime.timedelta(days=2)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("e2e control plane CA")
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(later)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )

    def leaf(
        subject: x509.Name, usage: x509.ObjectIdentifier, sans: list[x509.GeneralName]
    ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(later)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        )
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        return builder.sign(ca_key, hashes.SHA256()), key

    serving, serving_key = leaf(
        _name("kube-apiserver"),
        ExtendedKeyUsageOID.SERVER_AUTH,
        [
            x509.DNSName("localhost"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            x509.IPAddress(ipaddress.ip_address("10.0.0.1")),
        ],
    )
    admin, admin_key = leaf(
        _name("e2e-admin", "system:masters"), ExtendedKeyUsageOID.CLIENT_AUTH, []
    )
    pki = Pki(
        *(
            directory / n
            for n in ("ca.crt", "ca.key", "tls.crt", "tls.key", "admin.crt", "admin.key")
        )
    )
    pki.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    pki.ca_key.write_bytes(_pem_key(ca_key))
    pki.serving_cert.write_bytes(serving.public_bytes(serialization.Encoding.PEM))
    pki.serving_key.write_bytes(_pem_key(serving_key))
    pki.admin_cert.write_bytes(admin.public_bytes(serialization.Encoding.PEM))
    pki.admin_key.write_bytes(_pem_key(admin_key))
    return pki


def kubeconfig(server: str, ca: Path, user: dict[str, str], name: str = "e2e") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": name, "cluster": {"server": server, "certificate-authority": str(ca)}}
        ],
        "users": [{"name": name, "user": user}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
        "current-context": name,
    }


@dataclass
class Process:
    name: str
    command: list[str]
    log_path: Path
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.popen = subprocess.Popen(
                self.command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self, timeout: float = 20) -> None:
        if self.popen is None:
            return
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self.popen = None

    def log_tail(self, lines: int = 80) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return ""
        return "\n".join(text[-lines:])


@dataclass
class ControlPlane:
    """The running processes and how to reach them as the admin user."""

    workdir: Path
    pki: Pki
    signing_key: Path
    public_key: Path
    etcd_url: str
    url: str
    admin_kubeconfig: Path
    audit_log: Path
    issuer: str = ISSUER
    processes: dict[str, Process] = field(default_factory=dict)

    # --- talking to it -----------------------------------------------------------------------

    def ssl_context(self, *, admin: bool = True) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.pki.ca))
        if admin:
            context.load_cert_chain(str(self.pki.admin_cert), str(self.pki.admin_key))
        return context

    def get(self, path: str, *, timeout: float = 5, url: str | None = None) -> tuple[int, bytes]:
        request = urllib.request.Request((url or self.url) + path)
        try:
            with urllib.request.urlopen(request, context=self.ssl_context(), timeout=timeout) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def kubectl(
        self,
        *args: str,
        kubeconfig: Path | None = None,
        stdin: str | None = None,
        check: bool = True,
        timeout: float = 60,
    ) -> subprocess.CompletedProcess[str]:
        command = [str(binary("kubectl")), f"--kubeconfig={kubeconfig or self.admin_kubeconfig}"]
        result = subprocess.run(
            [*command, *args], input=stdin, capture_output=True, text=True, timeout=timeout
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} exited {result.returncode}:\n{result.stderr}"
            )
        return result

    def apply(self, *documents: dict[str, Any], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        text = yaml.safe_dump_all(documents)
        return self.kubectl(
            "apply", "--server-side", "--force-conflicts", "-f", "-", stdin=text, **kwargs
        )

    def get_json(self, *args: str) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.kubectl("get", "-o", "json", *args).stdout)
        return result

    def audit_events(self) -> list[dict[str, Any]]:
        """Every API server's audit log (the second one of an HA plane too), in one list."""
        events = []
        for log in sorted(self.workdir.glob("audit*.log")):
            for line in log.read_text().splitlines():
                with contextlib.suppress(ValueError):
                    events.append(json.loads(line))
        return events

    # --- faults --------------------------------------------------------------------------------

    def restart_apiserver(self, *, down_for: float = 0.0) -> None:
        apiserver = self.processes["kube-apiserver"]
        apiserver.stop()
        time.sleep(down_for)
        apiserver.start()
        wait_ready(self, "kube-apiserver", START_TIMEOUT)

    def start_second_apiserver(self) -> tuple[str, Process]:
        """Another kube-apiserver on the same etcd (an HA control plane); its URL and process."""
        port = free_port()
        name = f"kube-apiserver-{port}"
        process = Process(
            name,
            apiserver_command(self, port, self.workdir / f"audit-{port}.log"),
            self.workdir / f"{name}.log",
        )
        self.processes[name] = process
        process.start()
        url = f"https://127.0.0.1:{port}"
        wait_ready(self, name, START_TIMEOUT, url=url)
        return url, process

    def etcd_revision(self) -> int:
        answer = self._etcd("/v3/kv/range", {"key": base64.b64encode(b"/registry").decode()})
        return int(answer["header"]["revision"])

    def compact_etcd(self) -> int:
        """Compacts etcd's history up to now: watches from an older resourceVersion get 410."""
        revision = self.etcd_revision()
        self._etcd("/v3/kv/compaction", {"revision": revision, "physical": True})
        return revision

    def _etcd(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        request = urllib.request.Request(
            self.etcd_url + path, data=json.dumps(body).encode(), method="POST"
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            result: dict[str, Any] = json.loads(answer.read())
            return result

    def logs(self, lines: int = 80) -> str:
        return "\n".join(
            f"----- {name} ({process.log_path}) -----\n{process.log_tail(lines)}"
            for name, process in self.processes.items()
        )

    def stop(self) -> None:
        for process in reversed(list(self.processes.values())):
            process.stop()


def versions() -> dict[str, str]:
    """What each binary says it is (printed at the start of the suite)."""

    def first_line(*command: str) -> str:
        result = subprocess.run(command, capture_output=True, text=True, timeout=30)
        return (result.stdout or result.stderr).strip().splitlines()[0]

    return {
        "etcd": first_line(str(binary("etcd")), "--version"),
        "kube-apiserver": first_line(str(binary("kube-apiserver")), "--version"),
        "kube-controller-manager": first_line(str(binary("kube-controller-manager")), "--version"),
        "kubectl": first_line(str(binary("kubectl")), "version", "--client"),
    }


def _service_account_keys(directory: Path) -> tuple[Path, Path]:
    """The signing key pair, made by the product's own `oidc keygen` as the docs tell users to."""
    subprocess.run(
        [sys.executable, "-m", "webhook", "oidc", "keygen", "--out", str(directory)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return directory / PRIVATE_KEY_FILE, directory / PUBLIC_KEY_FILE


def wait_ready(plane: ControlPlane, name: str, timeout: float, *, url: str | None = None) -> None:
    deadline = time.monotonic() + timeout
    process = plane.processes[name]
    while time.monotonic() < deadline:
        if not process.running():
            raise RuntimeError(f"{name} exited:\n{process.log_tail()}")
        try:
            if name == "etcd":
                with urllib.request.urlopen(plane.etcd_url + "/health", timeout=2) as answer:
                    if json.loads(answer.read()).get("health") == "true":
                        return
            elif name.startswith("kube-apiserver"):
                code, _ = plane.get("/readyz", timeout=2, url=url)
                if code == 200:
                    return
            else:
                return
        except (OSError, ValueError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{name} not ready in {timeout:.0f} s:\n{process.log_tail()}")


def apiserver_command(plane: ControlPlane, port: int, audit_log: Path) -> list[str]:
    """kube-apiserver on 127.0.0.1:port; a second one on the same etcd is an HA control plane."""
    return [
        str(binary("kube-apiserver")),
        f"--etcd-servers={plane.etcd_url}",
        "--bind-address=127.0.0.1",
        "--advertise-address=127.0.0.1",
        f"--secure-port={port}",
        f"--cert-dir={plane.workdir / f'apiserver-certs-{port}'}",
        f"--tls-cert-file={plane.pki.serving_cert}",
        f"--tls-private-key-file={plane.pki.serving_key}",
        f"--client-ca-file={plane.pki.ca}",
        "--service-cluster-ip-range=10.0.0.0/24",
        "--allow-privileged=true",
        "--authorization-mode=RBAC",
        f"--service-account-issuer={plane.issuer}",
        f"--service-account-key-file={plane.public_key}",
        f"--service-account-signing-key-file={plane.signing_key}",
        f"--audit-policy-file={plane.workdir / AUDIT_POLICY_FILE}",
        f"--audit-log-path={audit_log}",
        "--audit-log-format=json",
        "--audit-log-mode=blocking",
        "--profiling=false",
        "--v=1",
        # on SIGTERM, watches get this long to end (cleanly, with a last bookmark) instead of 60 s
        "--shutdown-watch-termination-grace-period=3s",
    ]


def _commands(
    plane: ControlPlane,
    etcd_data: Path,
    peer_port: int,
    secure_port: int,
    cm_kubeconfig: Path,
) -> dict[str, list[str]]:
    return {
        "etcd": [
            str(binary("etcd")),
            "--name=e2e",
            f"--data-dir={etcd_data}",
            f"--listen-client-urls={plane.etcd_url}",
            f"--advertise-client-urls={plane.etcd_url}",
            f"--listen-peer-urls=http://127.0.0.1:{peer_port}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}",
            f"--initial-cluster=e2e=http://127.0.0.1:{peer_port}",
            "--unsafe-no-fsync=true",
            "--log-level=warn",
        ],
        "kube-apiserver": apiserver_command(plane, secure_port, plane.audit_log),
        "kube-controller-manager": [
            str(binary("kube-controller-manager")),
            f"--kubeconfig={cm_kubeconfig}",
            f"--authentication-kubeconfig={cm_kubeconfig}",
            f"--authorization-kubeconfig={cm_kubeconfig}",
            "--bind-address=127.0.0.1",
            f"--secure-port={free_port()}",
            f"--cert-dir={plane.workdir / 'controller-manager-certs'}",
            "--leader-elect=false",
            "--use-service-account-credentials=false",
            # what turns a Deployment into pods, gives namespaces their default ServiceAccount
            # and cleans up after deletions; the cloud and node controllers have nothing to do
            "--controllers=deployment-controller,replicaset-controller,"
            "serviceaccount-controller,namespace-controller,garbage-collector-controller",
            f"--root-ca-file={plane.pki.ca}",
            "--v=1",
        ],
    }


@contextlib.contextmanager
def run_control_plane(workdir: Path, *, controller_manager: bool = True) -> Iterator[ControlPlane]:
    workdir.mkdir(parents=True, exist_ok=True)
    pki = write_pki(workdir / "pki")
    signing_key, public_key = _service_account_keys(workdir / "sa-keys")
    etcd_port, peer_port, secure_port = free_port(), free_port(), free_port()
    admin_kubeconfig = workdir / "admin.kubeconfig"
    url = f"https://127.0.0.1:{secure_port}"
    admin_kubeconfig.write_text(
        yaml.safe_dump(
            kubeconfig(
                url,
                pki.ca,
                {"client-certificate": str(pki.admin_cert), "client-key": str(pki.admin_key)},
            )
        )
    )
    (workdir / AUDIT_POLICY_FILE).write_text(yaml.safe_dump(AUDIT_POLICY))
    plane = ControlPlane(
        workdir=workdir,
        pki=pki,
        signing_key=signing_key,
        public_key=public_key,
        etcd_url=f"http://127.0.0.1:{etcd_port}",
        url=url,
        admin_kubeconfig=admin_kubeconfig,
        audit_log=workdir / "audit.log",
    )
    commands = _commands(plane, workdir / "etcd", peer_port, secure_port, admin_kubeconfig)
    names: Sequence[str] = ("etcd", "kube-apiserver") + (
        ("kube-controller-manager",) if controller_manager else ()
    )
    try:
        for name in names:
            process = Process(name, commands[name], workdir / f"{name}.log")
            plane.processes[name] = process
            process.start()
            wait_ready(plane, name, START_TIMEOUT)
        yield plane
    finally:
        plane.stop()
