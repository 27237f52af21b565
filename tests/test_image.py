"""The image, built and run in a real Docker engine as the Deployment and as upstream run it.

Slow by nature (`make test-slow`): the first build on a machine makes the stand-in base
(hack/image/base.sh, about a minute) and installs the lock (about a minute). Skipped, saying
why, where no Docker engine can start (hack/image/engine.sh).
"""

from __future__ import annotations

import base64
import contextlib
import ipaddress
import json
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import jsonpatch
import orjson
import pytest

from tests.support.admission import APP_SERVICE_ACCOUNTS_FILE, review
from tests.support.fakeapi import FakeApiServer
from tests.support.polling import eventually
from tests.support.server import CertFiles, write_certs
from tests.support.upstream import UPSTREAM_DEPLOY_BASE
from tests.test_tls import Load, _secret_volume, _serial, serial_at
from webhook import __version__

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parent.parent
IMAGE = "pod-identity-webhook:image-test"
BASE = "python:3.11-slim"
ROLE = "arn:aws:iam::111122223333:role/app"
JSON = {"Content-Type": "application/json"}
GRACE_SECONDS = 10  # the manifests' --shutdown-grace-period
CERTS = "/etc/webhook/certs"
# the Deployment's container, minus what needs a cluster: --namespace names where the cluster
# is watched from, so a file of ServiceAccounts stands in for the cluster here
DEPLOYMENT_ARGS = [
    "serve",
    "--port=8443",
    "--metrics-port=9999",
    f"--tls-cert={CERTS}/tls.crt",
    f"--tls-key={CERTS}/tls.key",
    "--service-accounts-file=/etc/webhook/sa/sa.yaml",
    "--annotation-prefix=eks.amazonaws.com",
    "--token-audience=sts.amazonaws.com",
    f"--shutdown-grace-period={GRACE_SECONDS}s",
    "--log-format=json",
]
# upstream's deploy/deployment-base.yaml `command` after /webhook
UPSTREAM_ARGS = UPSTREAM_DEPLOY_BASE[1:]
UPSTREAM_EXTRA = [f"--tls-cert={CERTS}/tls.crt", f"--tls-key={CERTS}/tls.key"]
# what containerd 1.x (EKS today) leaves in place: only root binds ports below 1024
PRIVILEGED_PORTS = ["--sysctl", "net.ipv4.ip_unprivileged_port_start=1024"]


def docker(*args: str, timeout: float = 120, check: bool = True) -> str:
    result = subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check:
        assert result.returncode == 0, f"docker {' '.join(args)}: {result.stderr}"
    return result.stdout.strip()


@pytest.fixture(scope="module")
def image() -> str:
    if shutil.which("docker") is None and shutil.which("dockerd") is None:
        pytest.skip("no Docker engine can start here: neither docker nor dockerd is installed")
    engine = subprocess.run(
        [str(ROOT / "hack/image/engine.sh")], capture_output=True, text=True, check=False
    )
    if engine.returncode != 0:
        pytest.skip(f"no Docker engine can start here: {engine.stderr.strip()}")
    started = time.monotonic()
    build = subprocess.run(
        [str(ROOT / "hack/image/build.sh"), IMAGE],
        capture_output=True,
        text=True,
        timeout=840,
        check=False,
    )
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    print(f"image built in {time.monotonic() - started:.1f}s")
    return IMAGE


@pytest.fixture
def secret_volume(tmp_path: Path) -> Iterator[tuple[Path, CertFiles, CertFiles]]:
    """A kubelet-style Secret volume (..data symlink swap) holding `first`; `second` is next."""
    first, second = write_certs(tmp_path / "first"), write_certs(tmp_path / "second", days=60)
    volume = tmp_path / "volume"
    _secret_volume(volume, first, 1)
    volume.chmod(0o755)
    yield volume, first, second


@dataclass
class Container:
    name: str
    https_port: int
    metrics_port: int

    def logs(self) -> str:
        result = subprocess.run(
            ["docker", "logs", self.name], capture_output=True, text=True, check=False
        )
        return result.stdout + result.stderr

    def client(self, *cafiles: Path, keepalive: bool = True) -> httpx.Client:
        import ssl

        context = ssl.create_default_context()
        for cafile in cafiles:
            context.load_verify_locations(cafile=str(cafile))
        limits = httpx.Limits() if keepalive else httpx.Limits(max_keepalive_connections=0)
        return httpx.Client(
            base_url=f"https://127.0.0.1:{self.https_port}",
            verify=context,
            timeout=5,
            limits=limits,
        )

    def metrics(self, path: str) -> httpx.Response:
        return httpx.get(f"http://127.0.0.1:{self.metrics_port}{path}", timeout=5)

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if self.metrics("/readyz").status_code == 200:
                    return
            state = docker("inspect", "-f", "{{.State.Running}}", self.name)
            assert state == "true", f"the container exited:\n{self.logs()}"
            time.sleep(0.2)
        pytest.fail(f"not ready within {timeout}s:\n{self.logs()}")


@contextlib.contextmanager
def container(
    image: str, run: list[str], args: list[str], *, https_port: int = 8443
) -> Iterator[Container]:
    name = f"piw-test-{uuid.uuid4().hex[:8]}"
    docker(
        "run",
        "--detach",
        f"--name={name}",
        f"--publish=127.0.0.1::{https_port}",
        "--publish=127.0.0.1::9999",
        *run,
        image,
        *args,
    )
    try:
        ports = {
            inside: int(docker("port", name, f"{inside}/tcp").splitlines()[0].rsplit(":", 1)[1])
            for inside in (https_port, 9999)
        }
        yield Container(name, ports[https_port], ports[9999])
    finally:
        docker("rm", "--force", name, check=False)


def mutated_role(client: httpx.Client) -> str | None:
    body = review("team-a", "app")
    answer = client.post("/mutate", content=orjson.dumps(body), headers=JSON)
    assert answer.status_code == 200, answer.text
    response = answer.json()["response"]
    assert response["uid"] == body["request"]["uid"]
    if "patch" not in response:
        return None
    pod = jsonpatch.apply_patch(
        body["request"]["object"], orjson.loads(base64.b64decode(response["patch"]))
    )
    (app,) = pod["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in app["env"]}
    mounts = {m["name"]: m["mountPath"] for m in app["volumeMounts"]}
    assert mounts["aws-iam-token"] == "/var/run/secrets/eks.amazonaws.com/serviceaccount"
    role: str | None = env.get("AWS_ROLE_ARN")
    return role


def check_rotation(box: Container, volume: Path, first: CertFiles, second: CertFiles) -> float:
    """Swap the Secret volume to `second`; seconds until new handshakes get it."""
    assert serial_at(box.https_port, first.ca) == _serial(first.cert)
    swapped = time.monotonic()
    _secret_volume(volume, second, 2)
    served = eventually(
        lambda: serial_at(box.https_port, first.ca, second.ca),
        _serial(second.cert),
        timeout=10,
    )
    assert served == _serial(second.cert), box.logs()
    return time.monotonic() - swapped


def test_image_is_lean_compiled_and_labelled(image: str) -> None:
    labels = json.loads(docker("image", "inspect", "-f", "{{json .Config.Labels}}", image))
    revision = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
    ).stdout.strip()
    assert labels["org.opencontainers.image.version"] == __version__
    assert labels["org.opencontainers.image.revision"] == (revision or "unknown")
    assert labels["org.opencontainers.image.licenses"] == "Apache-2.0"
    assert labels["org.opencontainers.image.source"].startswith("https://")
    config = json.loads(docker("image", "inspect", "-f", "{{json .Config}}", image))
    assert config["User"] == "65532:65532"
    assert not [e for e in config["Env"] if e.startswith("PIP_")]  # build arguments stay behind
    probe = """
import importlib.util, os, shutil, sysconfig
gone = [m for m in ("pip", "setuptools", "ensurepip", "wheel", "aiohttp") if importlib.util.find_spec(m)]
gone += ["kubernetes.aio"] if importlib.util.find_spec("kubernetes.aio") else []
tools = [t for t in ("pip", "pip3", "gcc", "cc", "make") if shutil.which(t)]
sources = [
    os.path.join(d, f)
    for root in (sysconfig.get_path("stdlib"), "/opt/webhook/lib")
    for d, _, files in os.walk(root)
    if "dist-packages" not in d
    for f in files
    if f.endswith(".py")
]
uncompiled = [s for s in sources if not os.path.exists(importlib.util.cache_from_source(s))]
import kubernetes.client, kubernetes.config, webhook.cli
print(len(gone), len(tools), len(sources), len(uncompiled), gone, tools, uncompiled[:5])
"""
    out = docker("run", "--rm", "--read-only", "--entrypoint=python", image, "-c", probe)
    n_gone, n_tools, n_sources, n_uncompiled, _ = out.split(" ", 4)
    assert (n_gone, n_tools) == ("0", "0"), out
    assert int(n_sources) > 1000 and n_uncompiled == "0", out
    size = int(docker("image", "inspect", "-f", "{{.Size}}", image))
    base = int(docker("image", "inspect", "-f", "{{.Size}}", BASE))
    walk = "import os; print(sum(os.lstat(os.path.join(d, f)).st_size for d, _, fs in os.walk('/opt/webhook') for f in fs))"
    environment = int(docker("run", "--rm", "--entrypoint=python", image, "-c", walk))
    print(
        f"image {size / 1e6:.0f} MB, base {base / 1e6:.0f} MB, /opt/webhook {environment / 1e6:.0f} MB"
    )
    # the environment is about 140 MB with its bytecode, 59 MB of it the kubernetes client;
    # before kubernetes.aio, aiohttp, pip and setuptools were left out it was 234 MB
    assert environment < 160e6, f"/opt/webhook holds {environment / 1e6:.0f} MB"


def locked_down(volume: Path, tmp_path: Path) -> list[str]:
    """docker run flags for the manifests' securityContext, certificates and ServiceAccounts."""
    accounts = tmp_path / "sa"
    accounts.mkdir()
    shutil.copyfile(APP_SERVICE_ACCOUNTS_FILE, accounts / "sa.yaml")
    return [
        "--read-only",
        "--cap-drop=ALL",
        "--security-opt=no-new-privileges",
        f"--volume={volume}:{CERTS}:ro",
        f"--volume={accounts}:/etc/webhook/sa:ro",
    ]


def test_runs_as_the_deployment_runs_it(
    image: str, tmp_path: Path, secret_volume: tuple[Path, CertFiles, CertFiles]
) -> None:
    volume, first, second = secret_volume
    hardened = [
        "--user=65532:65532",
        "--tmpfs=/tmp:size=1m",  # the manifests' emptyDir (medium: Memory, sizeLimit: 1Mi)
        *locked_down(volume, tmp_path),
    ]
    with container(image, hardened, DEPLOYMENT_ARGS) as box:
        box.wait_ready()
        assert box.metrics("/healthz").text == "ok"
        with box.client(first.ca) as client:
            assert mutated_role(client) == ROLE
        assert "pod_identity_webhook_" in box.metrics("/metrics").text
        print(f"rotation served after {check_rotation(box, volume, first, second):.2f}s")
        reloads = box.metrics("/metrics").text
        assert 'pod_identity_webhook_config_reloads_total{result="success",source="tls"} 1\n' in (
            reloads
        )
        with Load(f"https://127.0.0.1:{box.https_port}", second.ca) as load:
            eventually(lambda: load.ok > 20, True)
            stopping = time.monotonic()
            docker("stop", f"--time={GRACE_SECONDS + 20}", box.name, timeout=60)
            stopped = time.monotonic() - stopping
        exit_code = docker("inspect", "-f", "{{.State.ExitCode}}", box.name)
        outcome = (exit_code, stopped < GRACE_SECONDS, load.failures[:5], load.ok > 20)
        assert outcome == ("0", True, [], True), (
            f"exit {exit_code} after {stopped:.1f}s; {load.ok} answered, {load.refused} "
            f"refused, failures {load.failures[:5]}; log:\n{box.logs()[-4000:]}"
        )


def bridge_gateway() -> str:
    """The host's address on Docker's default bridge, where containers reach the fake API."""
    (ipam,) = json.loads(docker("network", "inspect", "bridge", "-f", "{{json .IPAM.Config}}"))
    # Docker gives the bridge the subnet's first address unless told otherwise
    return str(ipam.get("Gateway") or next(ipaddress.ip_network(ipam["Subnet"]).hosts()))


@contextlib.contextmanager
def upstream_container(
    image: str, tmp_path: Path, volume: Path, args: list[str]
) -> Iterator[Container]:
    """/webhook as upstream's deploy/ runs it: no securityContext (the image's user 65532,
    the runtime's default capabilities), port 443, ServiceAccounts from an API server, and a
    read-only root with no /tmp at all (certificate reloads need no writable path)."""
    gateway = bridge_gateway()
    with FakeApiServer(host=gateway) as api:
        api.put_service_account("team-a", "app", {"eks.amazonaws.com/role-arn": ROLE})
        kube = tmp_path / "kube"
        kube.mkdir()
        api.write_kubeconfig(kube / "config")
        (kube / "config").chmod(0o644)
        kube.chmod(0o755)
        run = [
            "--read-only",
            *PRIVILEGED_PORTS,
            "--entrypoint=/webhook",
            f"--volume={volume}:{CERTS}:ro",
            f"--volume={kube}:/kube:ro",
        ]
        with container(
            image, run, [*args, *UPSTREAM_EXTRA, "--kubeconfig=/kube/config"], https_port=443
        ) as box:
            box.wait_ready()
            yield box


def test_webhook_entry_binds_443_as_its_user_and_reloads_with_no_writable_path(
    image: str, tmp_path: Path, secret_volume: tuple[Path, CertFiles, CertFiles]
) -> None:
    volume, first, second = secret_volume
    args = ["serve", "--port=443", "--namespace=default", *UPSTREAM_ARGS[3:5]]
    with upstream_container(image, tmp_path, volume, args) as box:
        assert docker("inspect", "-f", "{{.Config.User}}", box.name) == "65532:65532"
        with box.client(first.ca) as client:
            assert mutated_role(client) == ROLE
        check_rotation(box, volume, first, second)
        with box.client(second.ca) as client:
            assert mutated_role(client) == ROLE
        assert "Permission denied" not in box.logs()


def test_webhook_entry_runs_where_every_capability_is_dropped(
    image: str, tmp_path: Path, secret_volume: tuple[Path, CertFiles, CertFiles]
) -> None:
    volume, first, _ = secret_volume
    run = ["--entrypoint=/webhook", *locked_down(volume, tmp_path)]
    with container(image, run, DEPLOYMENT_ARGS) as box:
        box.wait_ready()
        with box.client(first.ca) as client:
            assert mutated_role(client) == ROLE


# upstream's deploy/deployment-base.yaml args, run through /webhook as the image's user.
def test_webhook_entry_with_upstreams_deployment_args_answers_mutate(
    image: str, tmp_path: Path, secret_volume: tuple[Path, CertFiles, CertFiles]
) -> None:
    volume, first, _ = secret_volume
    with upstream_container(image, tmp_path, volume, UPSTREAM_ARGS) as box:
        with box.client(first.ca) as client:
            assert mutated_role(client) == ROLE
        assert box.metrics("/metrics").status_code == 200
