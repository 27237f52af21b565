"""The deploy manifests: every kustomization builds, validates, and its parts point at each other."""

from __future__ import annotations

import base64
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import kubernetes_validate
import pytest
import yaml

from tests.support.rbac import REQUIRED_RBAC
from tests.support.server import run_webhook
from webhook.cli import build_parser
from webhook.flags.settings import Settings
from webhook.flags.shared import settings_from_args
from webhook.server.admission.apps import MUTATE_PATH

ROOT = Path(__file__).resolve().parent.parent
KUBERNETES_VERSION = (
    "1.30"  # oldest Kubernetes the manifests target; kubernetes-validate bundles it
)
FARGATE_PATH = "/mutate-fargate"
IDENTITY_WEBHOOK = "identity.pod-identity-webhook.github.io"
FARGATE_WEBHOOK = "fargate.pod-identity-webhook.github.io"
# Cluster-scoped objects EKS itself keeps in every cluster: AWS's managed pod identity webhook
# (`iam-for-pods.amazonaws.com`) and the VPC resource controller's webhook. Ours must never
# share a name with them: `kubectl apply` would merge into theirs and `delete -k` remove it.
EKS_WEBHOOK_CONFIGURATIONS = ("pod-identity-webhook", "vpc-resource-mutating-webhook")
EKS_WEBHOOK_NAMES = ("iam-for-pods.amazonaws.com", "mpod.vpc.k8s.aws")
OPT_IN_LABEL = {"eks.amazonaws.com/pod-identity-webhook": "enabled"}
# every kustomization an operator or hack/kind/e2e.sh applies
BUILDS = (
    "manifests/base",
    "manifests/overlays/cert-manager",
    "manifests/overlays/selfsigned",
    "manifests/overlays/strict",
    "hack/kind",
)
# every optional component, each built on the cert-manager overlay as an operator would add it
COMPONENTS = (
    "config-map",
    "fargate",
    "host-network",
    "monitoring",
    "network-policy",
    "region",
    "strict",
)
OVERLAYS = ("cert-manager", "selfsigned", "strict")
# What an operator's overlay must add to a component, as its comment says
COMPONENT_SETTINGS = {
    "region": (
        "patches:\n  - patch: |-\n      apiVersion: v1\n      kind: ConfigMap\n"
        "      metadata: {name: pod-identity-webhook-region, namespace: pod-identity-webhook}\n"
        "      data: {region: eu-west-1}\n"
    ),
}
COMPONENT_BUILDS = tuple(f"with-component/{name}" for name in COMPONENTS)
ALL_BUILDS = BUILDS + COMPONENT_BUILDS
DEPLOYABLE = ALL_BUILDS[1:]  # base has no certificate on purpose
STRICT = ("manifests/overlays/strict", "with-component/strict")
FARGATE = ("hack/kind", "with-component/fargate")
HOST_NETWORK = ("with-component/host-network",)
CONFIG_MAP = ("with-component/config-map",)


def combination_builds() -> tuple[str, ...]:
    """Every overlay with each component, with all of them, and every pair of components on
    the cert-manager overlay: what an operator may put together must build and hold together."""
    names = []
    for overlay in OVERLAYS:
        names += [f"combined/{overlay}/{c}" for c in COMPONENTS if c != overlay]
        names.append(f"combined/{overlay}/all")
    for index, first in enumerate(COMPONENTS):
        names += [f"combined/cert-manager/{first}+{second}" for second in COMPONENTS[index + 1 :]]
    return tuple(names)


COMBINATIONS = combination_builds()

Objects = list[dict[str, Any]]


def kubectl() -> str:
    found = shutil.which("kubectl")
    if found is None:
        pytest.fail(
            "kubectl is not on PATH; these tests build the manifests with kubectl kustomize"
        )
    return found


def kustomize(directory: Path) -> Objects:
    result = subprocess.run(
        [kubectl(), "kustomize", str(directory)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, f"kubectl kustomize {directory}: {result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of manifests/ and hack/ with the selfsigned overlay's certificates generated."""
    from webhook.cli import main

    root = tmp_path_factory.mktemp("deploy")
    shutil.copytree(ROOT / "manifests", root / "manifests")
    shutil.copytree(ROOT / "hack", root / "hack")
    certs = root / "manifests/overlays/selfsigned/certs"
    shutil.rmtree(certs, ignore_errors=True)
    assert main(["certs", "--out", str(certs)]) == 0
    for name in COMPONENTS:
        overlay = root / "with-component" / name
        overlay.mkdir(parents=True)
        (overlay / "kustomization.yaml").write_text(
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
            "resources: [../../manifests/overlays/cert-manager]\n"
            f"components: [../../manifests/components/{name}]\n" + COMPONENT_SETTINGS.get(name, "")
        )
    for build in COMBINATIONS:
        _, base, which = build.split("/")
        names = list(COMPONENTS) if which == "all" else which.split("+")
        directory = root / build
        directory.mkdir(parents=True)
        listed = ", ".join(f"../../../manifests/components/{n}" for n in names)
        if base == "selfsigned":
            # as docs/deploy.md says: components go into a copy of the selfsigned overlay, so
            # that its caBundle replacement runs after them and reaches every webhook they add
            shutil.copytree(certs, directory / "certs")
            own = (root / "manifests/overlays/selfsigned/kustomization.yaml").read_text()
            (directory / "kustomization.yaml").write_text(
                own.replace("../../base", "../../../manifests/base")
                + f"components: [{listed}]\n"
                + "".join(COMPONENT_SETTINGS.get(n, "") for n in names)
            )
            continue
        (directory / "kustomization.yaml").write_text(
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
            f"resources: [../../../manifests/overlays/{base}]\n"
            f"components: [{listed}]\n" + "".join(COMPONENT_SETTINGS.get(n, "") for n in names)
        )
    return root


@pytest.fixture(scope="module")
def built(workspace: Path) -> dict[str, Objects]:
    return {name: kustomize(workspace / name) for name in ALL_BUILDS}


def one(objects: Objects, kind: str, name: str | None = None) -> dict[str, Any]:
    found = [o for o in objects if o["kind"] == kind and name in (None, o["metadata"]["name"])]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def webhook_named(objects: Objects, name: str) -> dict[str, Any]:
    config = one(objects, "MutatingWebhookConfiguration")
    (webhook,) = [w for w in config["webhooks"] if w["name"] == name]
    return dict(webhook)


def container(objects: Objects) -> dict[str, Any]:
    (only,) = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    return dict(only)


def env_value(objects: Objects, var: dict[str, Any]) -> str:
    """What kubelet puts in an env var: a fieldRef of the ones the manifests use, or a key of a
    ConfigMap in the same build (which must hold it, or the container would not start)."""
    source = var["valueFrom"]
    if "fieldRef" in source:
        deployment = one(objects, "Deployment")
        fields = {
            "metadata.namespace": deployment["metadata"]["namespace"],
            "status.podIP": "10.0.0.7",
        }
        return str(fields[source["fieldRef"]["fieldPath"]])
    ref = source["configMapKeyRef"]
    data = one(objects, "ConfigMap", ref["name"]).get("data") or {}
    assert ref["key"] in data, f"ConfigMap {ref['name']} has no key {ref['key']}"
    return str(data[ref["key"]])


def serve_settings(objects: Objects) -> Settings:
    spec = container(objects)
    env = {e["name"]: e for e in spec.get("env", [])}
    args = []
    # kubelet expands $(VAR) from the container env
    for arg in spec["args"]:
        for name, var in env.items():
            if f"$({name})" in arg:
                arg = arg.replace(f"$({name})", env_value(objects, var))
        args.append(arg)
    assert args[0] == "serve"
    return settings_from_args(build_parser().parse_args(args))


def selector_matches(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    """metav1.LabelSelector semantics; an absent selector matches everything."""
    if not selector:
        return True
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        ok = {
            "In": key in labels and labels[key] in values,
            "NotIn": key not in labels or labels[key] not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[op]
        if not ok:
            return False
    return True


def intercepts(webhook: dict[str, Any], *, namespace: str, labels: dict[str, str]) -> bool:
    namespace_labels = {"kubernetes.io/metadata.name": namespace}  # set by kube-apiserver
    return selector_matches(webhook.get("namespaceSelector"), namespace_labels) and (
        selector_matches(webhook.get("objectSelector"), labels)
    )


@pytest.mark.parametrize("build", ALL_BUILDS)
def test_every_object_validates_against_the_kubernetes_schemas(
    build: str, built: dict[str, Objects]
) -> None:
    checked = 0
    for obj in built[build]:
        if obj["apiVersion"].startswith(("cert-manager.io/", "monitoring.coreos.com/")):
            continue  # CRDs: test_cert_manager_* and test_monitoring_* check these
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{build}: {obj['kind']} {obj['metadata']['name']}: {exc.message}")
        checked += 1
    assert checked >= 8


@pytest.mark.parametrize("build", ALL_BUILDS)
def test_service_and_pdb_select_the_deployment_pods(build: str, built: dict[str, Objects]) -> None:
    objects = built[build]
    pod_labels = one(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
    service = one(objects, "Service")
    assert service["spec"]["selector"].items() <= pod_labels.items()
    pdb = one(objects, "PodDisruptionBudget")
    assert selector_matches(pdb["spec"]["selector"], pod_labels)
    assert pdb["spec"]["minAvailable"] < one(objects, "Deployment")["spec"]["replicas"]


@pytest.mark.parametrize("build", ALL_BUILDS)
def test_webhooks_call_the_service_on_the_admission_paths(
    build: str, built: dict[str, Objects]
) -> None:
    objects = built[build]
    service = one(objects, "Service")
    https = container(objects)["ports"]
    by_port = {p["port"]: p for p in service["spec"]["ports"]}
    paths = {}
    for name in (IDENTITY_WEBHOOK, FARGATE_WEBHOOK) if build in FARGATE else (IDENTITY_WEBHOOK,):
        ref = webhook_named(objects, name)["clientConfig"]["service"]
        assert (ref["name"], ref["namespace"]) == (
            service["metadata"]["name"],
            service["metadata"]["namespace"],
        )
        target = by_port[ref["port"]]["targetPort"]
        (served,) = [p for p in https if target in (p["name"], p["containerPort"])]
        assert served["containerPort"] == serve_settings(objects).port
        paths[name] = ref["path"]
    expected = {IDENTITY_WEBHOOK: MUTATE_PATH, FARGATE_WEBHOOK: FARGATE_PATH}
    assert paths == {name: expected[name] for name in paths}
    assert len(one(objects, "MutatingWebhookConfiguration")["webhooks"]) == len(paths)


@pytest.mark.parametrize("build", ALL_BUILDS)
def test_container_ports_are_the_ports_serve_listens_on(
    build: str, built: dict[str, Objects]
) -> None:
    objects = built[build]
    settings = serve_settings(objects)
    ports = {p["name"]: p["containerPort"] for p in container(objects)["ports"]}
    assert ports == {"https": settings.port, "metrics": settings.metrics_port}
    service_targets = {p["targetPort"] for p in one(objects, "Service")["spec"]["ports"]}
    assert service_targets <= set(ports)


@pytest.mark.parametrize("build", ALL_BUILDS)
def test_serve_args_name_files_the_pod_mounts(build: str, built: dict[str, Objects]) -> None:
    objects = built[build]
    settings = serve_settings(objects)
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    mounts = {m["name"]: m["mountPath"] for m in container(objects)["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    certs = volumes["certs"]["secret"]["secretName"]
    assert settings.tls_cert.parent == settings.tls_key.parent == Path(mounts["certs"])
    assert certs.startswith("pod-identity-webhook-cert")
    if build in FARGATE:
        assert settings.fargate_profiles is not None
        assert settings.fargate_profiles.parent == Path(mounts["fargate-profiles"])
        profiles = one(objects, "ConfigMap", volumes["fargate-profiles"]["configMap"]["name"])
        assert isinstance(yaml.safe_load(profiles["data"][settings.fargate_profiles.name]), list)
    else:  # the base is IRSA only: no Fargate flag, volume or profiles
        assert settings.fargate_profiles is None
        assert "fargate-profiles" not in volumes and "fargate-profiles" not in mounts
    assert settings.namespace == one(objects, "Deployment")["metadata"]["namespace"]
    # nothing needs it (certificate reloads load from memory), but libraries expect a /tmp
    assert mounts["tmp"] == "/tmp" and "emptyDir" in volumes["tmp"]
    if build != "manifests/base":
        assert any(o["kind"] == "Secret" or o["kind"] == "Certificate" for o in objects)


@pytest.mark.parametrize("build", ALL_BUILDS)
def test_rbac_is_exactly_what_the_code_needs(build: str, built: dict[str, Objects]) -> None:
    objects = built[build]
    account = one(objects, "ServiceAccount")
    deployment = one(objects, "Deployment")
    assert (
        deployment["spec"]["template"]["spec"]["serviceAccountName"]
        == (account["metadata"]["name"])
    )
    subject = {
        "kind": "ServiceAccount",
        "name": account["metadata"]["name"],
        "namespace": account["metadata"]["namespace"],
    }
    assert one(objects, "ClusterRole")["rules"] == list(REQUIRED_RBAC["ClusterRole"])
    binding = one(objects, "ClusterRoleBinding")
    assert binding["roleRef"]["name"] == one(objects, "ClusterRole")["metadata"]["name"]
    assert binding["subjects"] == [subject]
    # the Role exists only where the ConfigMap watch is on, in the namespace it watches
    roles = [o for o in objects if o["kind"] in ("Role", "RoleBinding")]
    if not serve_settings(objects).watch_config_map:
        assert roles == []
        return
    role = one(objects, "Role")
    assert role["rules"] == list(REQUIRED_RBAC["Role"])
    assert role["metadata"]["namespace"] == serve_settings(objects).namespace
    role_binding = one(objects, "RoleBinding")
    assert role_binding["metadata"]["namespace"] == role["metadata"]["namespace"]
    assert role_binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": role["metadata"]["name"],
    }
    assert role_binding["subjects"] == [subject]


@pytest.mark.parametrize("build", ALL_BUILDS)
def test_webhook_registration_cannot_collide_with_what_eks_runs(
    build: str, built: dict[str, Objects]
) -> None:
    config = one(built[build], "MutatingWebhookConfiguration")
    assert config["metadata"]["name"] not in EKS_WEBHOOK_CONFIGURATIONS
    for webhook in config["webhooks"]:
        assert webhook["name"] not in EKS_WEBHOOK_NAMES
        assert not webhook["name"].endswith(".amazonaws.com"), "a domain that is not ours"
    # every patch of a component or overlay found its target: no second, unpatched object
    assert len([o for o in built[build] if o["kind"] == "MutatingWebhookConfiguration"]) == 1


@pytest.mark.parametrize("build", ALL_BUILDS)
def test_webhooks_never_intercept_the_webhooks_own_pods(
    build: str, built: dict[str, Objects]
) -> None:
    objects = built[build]
    deployment = one(objects, "Deployment")
    own_labels = deployment["spec"]["template"]["metadata"]["labels"]
    config = one(objects, "MutatingWebhookConfiguration")
    for webhook in config["webhooks"]:
        assert not intercepts(
            webhook, namespace=deployment["metadata"]["namespace"], labels=own_labels
        )
        # not even if someone gives them the strict opt-in label
        assert not intercepts(
            webhook,
            namespace=deployment["metadata"]["namespace"],
            labels={**own_labels, **OPT_IN_LABEL},
        )


@pytest.mark.parametrize("build", ALL_BUILDS)
def test_webhook_registration_answers_pod_creation_within_its_timeout(
    build: str, built: dict[str, Objects]
) -> None:
    for webhook in one(built[build], "MutatingWebhookConfiguration")["webhooks"]:
        assert webhook["admissionReviewVersions"] == ["v1", "v1beta1"]
        assert webhook["sideEffects"] == "None"
        assert webhook["reinvocationPolicy"] == "IfNeeded"
        assert 1 <= webhook["timeoutSeconds"] <= 10
        # the webhook answers within its budget, before kube-apiserver gives up on it
        assert webhook["timeoutSeconds"] > serve_settings(built[build]).request_time_budget
        assert webhook["rules"] == [
            {
                "operations": ["CREATE"],
                "apiGroups": [""],
                "apiVersions": ["v1"],
                "resources": ["pods"],
                "scope": "Namespaced",
            }
        ]
        strict_identity = build in STRICT and webhook["name"] == IDENTITY_WEBHOOK
        assert webhook["failurePolicy"] == ("Fail" if strict_identity else "Ignore")


@pytest.mark.parametrize("build", ALL_BUILDS)
def test_which_pods_each_webhook_sees(build: str, built: dict[str, Objects]) -> None:
    identity = webhook_named(built[build], IDENTITY_WEBHOOK)
    assert intercepts(identity, namespace="default", labels=OPT_IN_LABEL)
    if build in FARGATE:
        # the Fargate webhook sees every pod but its own, whatever the identity webhook does
        fargate = webhook_named(built[build], FARGATE_WEBHOOK)
        assert intercepts(fargate, namespace="default", labels=OPT_IN_LABEL)
        assert intercepts(fargate, namespace="default", labels={"app": "web"})
    if build in STRICT:
        assert not intercepts(identity, namespace="default", labels={"app": "web"})
        assert not intercepts(identity, namespace="kube-system", labels=OPT_IN_LABEL)
    else:
        assert intercepts(identity, namespace="default", labels={"app": "web"})
        assert intercepts(identity, namespace="kube-system", labels={})
    skip = {"eks.amazonaws.com/skip-pod-identity-webhook": "true"}
    assert not intercepts(identity, namespace="default", labels={**OPT_IN_LABEL, **skip})


@pytest.mark.parametrize("build", ALL_BUILDS)
def test_deployment_is_hardened_and_highly_available(build: str, built: dict[str, Objects]) -> None:
    spec = one(built[build], "Deployment")["spec"]
    pod = spec["template"]["spec"]
    assert spec["replicas"] == 2
    assert pod["priorityClassName"] == "system-cluster-critical"
    assert {c["topologyKey"] for c in pod["topologySpreadConstraints"]} >= {
        "kubernetes.io/hostname"
    }
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 65532  # the Dockerfile's USER
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    security = container(built[build])["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    resources = container(built[build])["resources"]
    assert {"cpu", "memory"} <= resources["requests"].keys()
    assert "memory" in resources["limits"]


@pytest.mark.parametrize("build", ALL_BUILDS)
def test_probes_use_the_metrics_port(build: str, built: dict[str, Objects]) -> None:
    spec = container(built[build])
    settings = serve_settings(built[build])
    ports = {p["name"]: p["containerPort"] for p in spec["ports"]}
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        get = spec[probe]["httpGet"]
        assert get["path"] == path
        assert get["scheme"] == "HTTP"
        assert ports[get["port"]] == settings.metrics_port


@pytest.fixture(scope="module")
def probe_answers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, int]]:
    tmp_path = tmp_path_factory.mktemp("probes")
    accounts = tmp_path / "sa.yaml"
    accounts.write_text("apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: a, namespace: b}\n")
    with run_webhook(tmp_path, "--service-accounts-file", str(accounts)) as server:
        yield {
            path: httpx.get(server.metrics_url + path, timeout=5).status_code
            for path in ("/healthz", "/readyz", "/no-such-probe")
        }


def test_probe_paths_answer_on_the_real_metrics_port(
    probe_answers: dict[str, int], built: dict[str, Objects]
) -> None:
    spec = container(built["manifests/base"])
    for probe in ("livenessProbe", "readinessProbe"):
        assert probe_answers[spec[probe]["httpGet"]["path"]] == 200
    assert probe_answers["/no-such-probe"] == 404  # the check above can fail


def test_selfsigned_ca_bundle_is_the_generated_ca(
    workspace: Path, built: dict[str, Objects]
) -> None:
    certs = workspace / "manifests/overlays/selfsigned/certs"
    for build in ("manifests/overlays/selfsigned", "hack/kind"):
        objects = built[build]
        volumes = one(objects, "Deployment")["spec"]["template"]["spec"]["volumes"]
        (certs_volume,) = [v for v in volumes if v["name"] == "certs"]
        secret_name = certs_volume["secret"]["secretName"]
        secret = one(objects, "Secret", secret_name)
        assert secret["type"] == "kubernetes.io/tls"
        assert base64.b64decode(secret["data"]["tls.crt"]) == (certs / "tls.crt").read_bytes()
        for webhook in one(objects, "MutatingWebhookConfiguration")["webhooks"]:
            bundle = "".join(webhook["clientConfig"]["caBundle"].split())
            assert base64.b64decode(bundle) == (certs / "ca.crt").read_bytes()


@pytest.mark.parametrize("build", DEPLOYABLE)
def test_kube_apiserver_can_verify_every_webhook(build: str, built: dict[str, Objects]) -> None:
    # a webhook added by a component after the overlay filled the caBundles would be called
    # without one, fail TLS, and be skipped by failurePolicy: Ignore without a sign
    config = one(built[build], "MutatingWebhookConfiguration")
    injected = "cert-manager.io/inject-ca-from" in (config["metadata"].get("annotations") or {})
    for webhook in config["webhooks"]:
        assert injected or webhook["clientConfig"].get("caBundle"), (
            f"{build}: {webhook['name']} has no caBundle"
        )


@pytest.mark.parametrize("build", ["manifests/overlays/cert-manager", "manifests/overlays/strict"])
def test_cert_manager_certificate_feeds_the_deployment(
    build: str, built: dict[str, Objects]
) -> None:
    objects = built[build]
    config = one(objects, "MutatingWebhookConfiguration")
    namespace, name = config["metadata"]["annotations"]["cert-manager.io/inject-ca-from"].split("/")
    certificate = one(objects, "Certificate", name)
    assert certificate["metadata"]["namespace"] == namespace
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    (certs,) = [v for v in pod["volumes"] if v["name"] == "certs"]
    assert certificate["spec"]["secretName"] == certs["secret"]["secretName"]
    service = one(objects, "Service")
    svc = f"{service['metadata']['name']}.{service['metadata']['namespace']}.svc"
    assert svc in certificate["spec"]["dnsNames"]
    assert "server auth" in certificate["spec"]["usages"]
    issuers = {
        o["metadata"]["name"]: o
        for o in objects
        if o["kind"] == "Issuer" and o["metadata"]["namespace"] == namespace
    }
    ca_issuer = issuers[certificate["spec"]["issuerRef"]["name"]]
    ca = one(objects, "Certificate", "pod-identity-webhook-ca")
    assert ca["spec"]["isCA"] is True
    assert ca_issuer["spec"]["ca"]["secretName"] == ca["spec"]["secretName"]
    assert "selfSigned" in issuers[ca["spec"]["issuerRef"]["name"]]["spec"]
    for obj in objects:
        if obj["apiVersion"].startswith("cert-manager.io/"):
            assert obj["apiVersion"] == "cert-manager.io/v1"
            assert obj["metadata"]["namespace"] == namespace


# -- Pod Security, host networking, and every combination --------------------------------------


def restricted_violations(pod: dict[str, Any]) -> list[str]:
    """What the restricted Pod Security Standard refuses in this pod spec (the checks that can
    apply to the webhook's pods: host namespaces and ports, privilege, users, seccomp,
    capabilities, volume types)."""
    found = [field for field in ("hostNetwork", "hostPID", "hostIPC") if pod.get(field)]
    pod_security = pod.get("securityContext") or {}
    allowed_volumes = {"configMap", "secret", "emptyDir", "projected", "downwardAPI"}
    for volume in pod.get("volumes") or []:
        kinds = set(volume) - {"name"}
        if not kinds <= allowed_volumes:
            found.append(f"volume {volume['name']}: {kinds - allowed_volumes}")
    for c in [*(pod.get("initContainers") or []), *pod["containers"]]:
        security = c.get("securityContext") or {}
        if any("hostPort" in port for port in c.get("ports") or []):
            found.append(f"{c['name']}: hostPort")
        if security.get("privileged"):
            found.append(f"{c['name']}: privileged")
        if security.get("allowPrivilegeEscalation") is not False:
            found.append(f"{c['name']}: allowPrivilegeEscalation not false")
        if not security.get("runAsNonRoot", pod_security.get("runAsNonRoot")):
            found.append(f"{c['name']}: runAsNonRoot not true")
        if security.get("runAsUser", pod_security.get("runAsUser")) == 0:
            found.append(f"{c['name']}: runAsUser 0")
        seccomp = security.get("seccompProfile", pod_security.get("seccompProfile")) or {}
        if seccomp.get("type") not in ("RuntimeDefault", "Localhost"):
            found.append(f"{c['name']}: seccompProfile")
        capabilities = security.get("capabilities") or {}
        if "ALL" not in (capabilities.get("drop") or []):
            found.append(f"{c['name']}: capabilities not dropped")
        if set(capabilities.get("add") or []) - {"NET_BIND_SERVICE"}:
            found.append(f"{c['name']}: capabilities added")
    return found


def test_the_restricted_check_can_fail() -> None:
    pod = {"hostNetwork": True, "containers": [{"name": "c", "ports": [{"hostPort": 1}]}]}
    assert restricted_violations(pod) == [
        "hostNetwork",
        "c: hostPort",
        "c: allowPrivilegeEscalation not false",
        "c: runAsNonRoot not true",
        "c: seccompProfile",
        "c: capabilities not dropped",
    ]


def check_pod_security(objects: Objects) -> None:
    labels = one(objects, "Namespace")["metadata"]["labels"]
    level = labels["pod-security.kubernetes.io/enforce"]
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    if pod.get("hostNetwork"):
        assert level == "privileged"  # host networking is outside baseline and restricted
        assert [v for v in restricted_violations(pod) if "host" not in v] == []
    else:
        assert level == "restricted"
        assert restricted_violations(pod) == []


@pytest.mark.parametrize("build", ALL_BUILDS)
def test_namespace_enforces_the_pod_security_its_pods_meet(
    build: str, built: dict[str, Objects]
) -> None:
    check_pod_security(built[build])
    if build not in HOST_NETWORK:
        labels = one(built[build], "Namespace")["metadata"]["labels"]
        assert labels["pod-security.kubernetes.io/enforce"] == "restricted"


def test_base_watches_no_config_map_and_the_component_turns_it_on(
    built: dict[str, Objects],
) -> None:
    assert not serve_settings(built["manifests/base"]).watch_config_map
    assert not [o for o in built["manifests/base"] if o["kind"] == "Role"]
    objects = built["with-component/config-map"]
    assert serve_settings(objects).watch_config_map
    assert one(objects, "Role")["metadata"]["namespace"] == serve_settings(objects).namespace


def test_host_network_component_serves_on_the_nodes_network(built: dict[str, Objects]) -> None:
    objects = built["with-component/host-network"]
    deployment = one(objects, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["hostNetwork"] is True
    assert pod["dnsPolicy"] == "ClusterFirstWithHostNet"
    settings = serve_settings(objects)
    ports = {p["name"]: p for p in container(objects)["ports"]}
    assert {name: p["containerPort"] for name, p in ports.items()} == {
        "https": settings.port,
        "metrics": settings.metrics_port,
    }
    for port in ports.values():
        assert port["hostPort"] == port["containerPort"]  # required on the host network
    # clear of what nodes run: kubelet, kube-proxy, node exporter, common webhook ports
    taken = {10250, 10249, 10256, 10257, 10259, 9100, 8443, 9443, 443, 80}
    assert not {settings.port, settings.metrics_port} & taken
    assert settings.bind_address == settings.metrics_bind_address == "10.0.0.7"  # $(POD_IP)
    # a host port is bound once per node: a surge pod could find no node to run on
    assert deployment["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 0, "maxUnavailable": 1}
    # the probes and the Service still find the ports by name
    for probe in ("livenessProbe", "readinessProbe"):
        assert container(objects)[probe]["httpGet"]["port"] == "metrics"
    assert {p["targetPort"] for p in one(objects, "Service")["spec"]["ports"]} == set(ports)


@pytest.fixture(scope="module")
def combined(workspace: Path) -> dict[str, Objects]:
    return {name: kustomize(workspace / name) for name in COMBINATIONS}


@pytest.mark.parametrize("build", COMBINATIONS)
def test_every_combination_builds_validates_and_holds_together(
    build: str, combined: dict[str, Objects]
) -> None:
    objects = combined[build]
    for obj in objects:
        if obj["apiVersion"].startswith(("cert-manager.io/", "monitoring.coreos.com/")):
            continue
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{build}: {obj['kind']} {obj['metadata']['name']}: {exc.message}")
    settings = serve_settings(objects)
    ports = {p["name"]: p["containerPort"] for p in container(objects)["ports"]}
    assert ports == {"https": settings.port, "metrics": settings.metrics_port}
    check_pod_security(objects)
    (config,) = [o for o in objects if o["kind"] == "MutatingWebhookConfiguration"]
    injected = "cert-manager.io/inject-ca-from" in (config["metadata"].get("annotations") or {})
    names = [webhook["name"] for webhook in config["webhooks"]]
    assert len(names) == len(set(names))
    for webhook in config["webhooks"]:
        assert injected or webhook["clientConfig"].get("caBundle"), (build, webhook["name"])
    assert any(o["kind"] == "Role" for o in objects) == settings.watch_config_map
