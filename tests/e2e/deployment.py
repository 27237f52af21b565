"""The webhook deployed on the real control plane the way manifests/ deploys it, minus the pod.

What a cluster would run is taken from the rendered manifests, not rewritten here:
- the container's args of the rendered Deployment, with the Downward API values filled in
  and only the listening ports and certificate paths pointed at this machine;
- the RBAC objects and the ServiceAccount, applied to the API server as they are; the webhook
  authenticates with a TokenRequest token of that ServiceAccount, so RBAC decides what it may do;
- the MutatingWebhookConfiguration, changed only in `clientConfig` (a `url` on 127.0.0.1 and
  the `caBundle`), because no Service routes to a process on this machine.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import json
import re
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from tests.e2e.controlplane import ROOT, ControlPlane, binary, kubeconfig
from tests.support.server import CertFiles, RunningWebhook, free_port, run_webhook

NAMESPACE = "pod-identity-webhook"
SERVICE_ACCOUNT = "pod-identity-webhook"
USERNAME = f"system:serviceaccount:{NAMESPACE}:{SERVICE_ACCOUNT}"
RBAC_KINDS = ("ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")
# what the container's args get in place of the pod's Downward API values
DOWNWARD = {"$(POD_IP)": "127.0.0.1", "$(POD_NAMESPACE)": NAMESPACE}
# flags that say where to listen and where the certificate is: this machine's, not the pod's
LOCAL_FLAGS = ("--port", "--metrics-port", "--metrics-bind-address", "--tls-cert", "--tls-key")


def render(*components: str, overlay: str | None = None) -> list[dict[str, Any]]:
    """`kubectl kustomize` of manifests/base (or an overlay) with these components added.

    Kustomize only loads relative paths, so the kustomization is written under build/."""
    if overlay is not None and not components:
        target = ROOT / "manifests" / "overlays" / overlay
    else:
        name = "-".join([overlay or "base", *components]) or "base"
        target = ROOT / "build" / "e2e" / "kustomize" / name
        target.mkdir(parents=True, exist_ok=True)
        up = "../../../../manifests"
        kustomization = {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": [f"{up}/overlays/{overlay}" if overlay else f"{up}/base"],
            "components": [f"{up}/components/{c}" for c in components],
        }
        (target / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    result = subprocess.run(
        [str(binary("kubectl")), "kustomize", str(target)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def only(documents: Sequence[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [d for d in documents if d["kind"] == kind]
    assert len(found) == 1, f"expected one {kind} in the rendered manifests, found {len(found)}"
    return found[0]


def container_args(
    documents: Sequence[dict[str, Any]],
    directory: Path | None = None,
    files: dict[str, dict[str, str]] | None = None,
) -> list[str]:
    """The webhook container's args as the rendered Deployment gives them, Downward API values
    filled in and the listening and certificate flags left out (the caller sets them).

    A ConfigMap volume is written to `directory` as kubelet would mount it (its data, or
    `files[configmap name]` in its place) and paths under its mountPath point there."""
    deployment = only(documents, "Deployment")
    pod_spec = deployment["spec"]["template"]["spec"]
    container = pod_spec["containers"][0]
    mounted = _config_map_mounts(documents, pod_spec, container, directory, files or {})
    args: list[str] = []
    for arg in container["args"]:
        for variable, value in DOWNWARD.items():
            arg = arg.replace(variable, value)
        if arg.split("=", 1)[0] in LOCAL_FLAGS:
            assert "=" in arg, f"{arg}: the manifests write these flags as --flag=value"
            continue
        for mount_path, local in mounted.items():
            arg = arg.replace(f"={mount_path}/", f"={local}/")
        args.append(arg)
    leftover = [a for a in args if re.search(r"\$\(\w+\)", a)]
    assert not leftover, f"Downward API values this suite does not fill in: {leftover}"
    return args


def _config_map_mounts(
    documents: Sequence[dict[str, Any]],
    pod_spec: dict[str, Any],
    container: dict[str, Any],
    directory: Path | None,
    files: dict[str, dict[str, str]],
) -> dict[str, Path]:
    config_maps = {d["metadata"]["name"]: d for d in documents if d["kind"] == "ConfigMap"}
    volumes = {v["name"]: v for v in pod_spec.get("volumes", [])}
    mounted: dict[str, Path] = {}
    for mount in container.get("volumeMounts", []):
        source = volumes[mount["name"]].get("configMap")
        if source is None:
            continue
        assert directory is not None, f"{mount['mountPath']}: a folder to mount it in is needed"
        name = source["name"]
        data = files.get(name, config_maps[name].get("data", {}))
        local = directory / "mounts" / mount["name"]
        local.mkdir(parents=True, exist_ok=True)
        for key, text in data.items():
            (local / key).write_text(text)
        mounted[mount["mountPath"].rstrip("/")] = local
    return mounted


def apply_identity(plane: ControlPlane, documents: Sequence[dict[str, Any]]) -> None:
    """The Namespace, the webhook's ServiceAccount and its RBAC objects, exactly as rendered."""
    wanted = ("Namespace", "ServiceAccount", *RBAC_KINDS)
    plane.apply(*(d for d in documents if d["kind"] in wanted))


def service_account_kubeconfig(
    plane: ControlPlane, directory: Path, server: str | None = None
) -> Path:
    """A kubeconfig holding a TokenRequest token of the webhook's own ServiceAccount."""
    token = plane.kubectl(
        "create", "token", SERVICE_ACCOUNT, "-n", NAMESPACE, "--duration=2h"
    ).stdout.strip()
    path = directory / "webhook.kubeconfig"
    path.write_text(yaml.safe_dump(kubeconfig(server or plane.url, plane.pki.ca, {"token": token})))
    return path


@contextlib.contextmanager
def run_deployed_webhook(
    plane: ControlPlane,
    directory: Path,
    documents: Sequence[dict[str, Any]],
    certs: CertFiles,
    *extra: str,
    files: dict[str, dict[str, str]] | None = None,
    server: str | None = None,
    wait_ready: bool = True,
) -> Iterator[RunningWebhook]:
    """`python -m webhook` with the rendered container args, on loopback, as its ServiceAccount
    (talking to `server`, by default the control plane's API server)."""
    args = container_args(documents, directory, files)
    config = service_account_kubeconfig(plane, directory, server)

    def command_line(port: int, metrics_port: int, files: CertFiles) -> list[str]:
        return [
            sys.executable,
            "-m",
            "webhook",
            *args,
            f"--kubeconfig={config}",
            "--bind-address=127.0.0.1",
            f"--port={port}",
            f"--metrics-port={metrics_port}",
            "--metrics-bind-address=127.0.0.1",
            f"--tls-cert={files.cert}",
            f"--tls-key={files.key}",
            *extra,
        ]

    with run_webhook(directory, certs=certs, command_line=command_line, wait_ready=wait_ready) as w:
        yield w


def registration(documents: Sequence[dict[str, Any]], url: str, ca: Path) -> dict[str, Any]:
    """The rendered MutatingWebhookConfiguration with each webhook's `clientConfig.service`
    turned into a `url` on this machine (same path) and the `caBundle` set; nothing else."""
    configuration = copy.deepcopy(only(documents, "MutatingWebhookConfiguration"))
    bundle = base64.b64encode(ca.read_bytes()).decode()
    for webhook in configuration["webhooks"]:
        service = webhook["clientConfig"].pop("service")
        webhook["clientConfig"] = {"url": url + service.get("path", "/"), "caBundle": bundle}
    return configuration


def register(plane: ControlPlane, configuration: dict[str, Any]) -> None:
    plane.apply(configuration)


def unregister(plane: ControlPlane, configuration: dict[str, Any]) -> None:
    plane.kubectl(
        "delete",
        "mutatingwebhookconfiguration",
        configuration["metadata"]["name"],
        "--ignore-not-found",
        "--wait=true",
    )


# --- a second mutating webhook, for reinvocation ----------------------------------------------


@dataclass
class SecondWebhook:
    """A small mutating webhook that adds one container to every pod it sees.

    It stands for another product's webhook (a service mesh's sidecar injector, say) that runs
    after ours: kube-apiserver calls ours again because of `reinvocationPolicy: IfNeeded`."""

    url: str
    calls: list[dict[str, Any]]
    server: ThreadingHTTPServer

    CONTAINER = "added-by-second-webhook"


@contextlib.contextmanager
def run_second_webhook(certs: CertFiles) -> Iterator[SecondWebhook]:
    calls: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            review = json.loads(self.rfile.read(length))
            request = review["request"]
            calls.append(request)
            pod = request["object"]
            names = [c["name"] for c in pod["spec"].get("containers", [])]
            response: dict[str, Any] = {"uid": request["uid"], "allowed": True}
            if SecondWebhook.CONTAINER not in names:
                patch = [
                    {
                        "op": "add",
                        "path": "/spec/containers/-",
                        "value": {"name": SecondWebhook.CONTAINER, "image": "sidecar:1"},
                    }
                ]
                response["patchType"] = "JSONPatch"
                response["patch"] = base64.b64encode(json.dumps(patch).encode()).decode()
            body = json.dumps(
                {
                    "apiVersion": review["apiVersion"],
                    "kind": "AdmissionReview",
                    "response": response,
                }
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(certs.cert), str(certs.key))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield SecondWebhook(f"https://127.0.0.1:{port}", calls, server)
    finally:
        server.shutdown()
        server.server_close()


def second_registration(url: str, ca: Path, namespace: str) -> dict[str, Any]:
    """Sorted after ours by name, so kube-apiserver calls it second; only in one namespace."""
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": "zz-e2e-second-webhook"},
        "webhooks": [
            {
                "name": "second.e2e.pod-identity-webhook.test",
                "clientConfig": {
                    "url": url + "/mutate",
                    "caBundle": base64.b64encode(ca.read_bytes()).decode(),
                },
                "rules": [
                    {
                        "operations": ["CREATE"],
                        "apiGroups": [""],
                        "apiVersions": ["v1"],
                        "resources": ["pods"],
                    }
                ],
                "admissionReviewVersions": ["v1"],
                "sideEffects": "None",
                "failurePolicy": "Fail",
                "reinvocationPolicy": "Never",
                "timeoutSeconds": 10,
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
            }
        ],
    }


# --- reading what the webhook did to the API server -------------------------------------------


def requests_of(plane: ControlPlane, username: str = USERNAME) -> list[dict[str, Any]]:
    """The audit log's completed requests made by this user."""
    return [
        e
        for e in plane.audit_events()
        if e.get("user", {}).get("username") == username
        and e.get("stage") in ("ResponseComplete", "ResponseStarted", "Panic")
    ]


def granted_permissions(documents: Sequence[dict[str, Any]]) -> set[tuple[str, str, str]]:
    """(apiGroup, resource, verb) that the rendered Roles and ClusterRoles grant."""
    granted = set()
    for document in documents:
        if document["kind"] not in ("ClusterRole", "Role"):
            continue
        for rule in document.get("rules", []):
            for group in rule.get("apiGroups", []):
                for resource in rule.get("resources", []):
                    for verb in rule.get("verbs", []):
                        granted.add((group, resource, verb))
    return granted


def used_permissions(events: Sequence[dict[str, Any]]) -> set[tuple[str, str, str]]:
    used = set()
    for event in events:
        ref = event.get("objectRef") or {}
        if "resource" in ref:
            used.add((ref.get("apiGroup", ""), ref["resource"], event["verb"]))
    return used


def refused(events: Sequence[dict[str, Any]]) -> list[str]:
    """Requests refused for want of a permission. A kube-apiserver that (re)starts answers for
    a moment before its RBAC cache holds every binding; a refusal that the same kind of request
    (verb, resource, subresource, namespace) got over later is that moment, not a missing
    grant, since a missing grant refuses it every time."""

    def kind(event: dict[str, Any]) -> tuple[str, str, str, str]:
        ref = event.get("objectRef") or {}
        return (
            event["verb"],
            ref.get("resource", ""),
            ref.get("subresource", ""),
            ref.get("namespace", ""),
        )

    def code(event: dict[str, Any]) -> int:
        return int(event.get("responseStatus", {}).get("code") or 0)

    ordered = sorted(events, key=lambda e: e.get("requestReceivedTimestamp", ""))
    found = []
    for index, event in enumerate(ordered):
        if code(event) not in (401, 403):
            continue
        later = ordered[index + 1 :]
        if any(kind(e) == kind(event) and 200 <= code(e) < 300 for e in later):
            continue
        found.append(f"{event['verb']} {event.get('requestURI')} -> {code(event)}")
    return found


def json_of(obj: dict[str, Any]) -> str:
    return json.dumps(obj)
