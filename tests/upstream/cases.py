"""Generated inputs for the side-by-side suite: ServiceAccounts, flag sets and pods, from a seed.

Everything comes from one `random.Random(seed)`, so a seed printed by a run gives the same
ServiceAccounts and pods again (UPSTREAM_SEED=N). Values are valid, at the edge, or hostile, for
each annotation both webhooks read (docs/upstream.md, "Side by side").
"""

from __future__ import annotations

import copy
import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_PREFIX = "eks.amazonaws.com"
CUSTOM_PREFIX = "identity.example.org"
NAMESPACES = ("side-a", "side-b")
ACCOUNTS_PER_NAMESPACE = 60
MISSING_ACCOUNT = "not-created"
# the identities of the container-credentials file (EKS Pod Identity): the first accounts of a
# namespace, so some pods of that flag set use it and others do not
CONTAINER_CREDENTIALS_ACCOUNTS = 12

ROLE_ARNS = (
    "arn:aws:iam::111122223333:role/app",
    "arn:aws:iam::111122223333:role/team/path/app",
    "arn:aws-cn:iam::111122223333:role/cn-app",
    "arn:aws-us-gov:iam::111122223333:role/gov",
    "app-role-name-only",
    "team/path/composed",
    "/leading-slash",
    "arn:aws:iam::111122223333:user/not-a-role",
    " arn:aws:iam::111122223333:role/leading-space",
    "arn:aws:iam::111122223333:role/trailing-space ",
    "",
    "arn:aws:iam::111122223333:role/" + "x" * 900,
    'arn:aws:iam::111122223333:role/quote"and\\backslash',
    "arn:aws:iam::111122223333:role/ünïcødé",
    "arn:aws:iam::111122223333:role/new\nline",
    "${AWS_ROLE_ARN}",
)
AUDIENCES = ("sts.amazonaws.com", "custom.example.com", "", "a,b", " spaced ", "ünï")
BOOLEANS = (
    "true", "false", "TRUE", "True", "FALSE", "False", "1", "0", "t", "f", "T", "F",
    "yes", "no", "", " true", "on", "2",
)  # fmt: skip
EXPIRATIONS = (
    "3600", "600", "599", "0", "-1", "86400", "86401", "4294967296", "4294967297",
    "99999999999999999999", "1e3", "3600s", " 3600", "+3600", "0x10", "", "007200", "1_000",
    "\uff13\uff16\uff10\uff10",  # full-width digits
)  # fmt: skip
SKIP_CONTAINERS = (
    "app", "app,side", " app , side ", ",,", "nonexistent", "", "APP", "app,", ",app",
    "init-0,app", "side,side", "*",
)  # fmt: skip
ENV_NAMES = (
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_STS_REGIONAL_ENDPOINTS",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "OTHER",
)
TOKEN_VOLUME = "aws-iam-token"
CC_VOLUME = "eks-pod-identity-token"
# a container field a newer Kubernetes could send, unknown to upstream's Go structs
UNKNOWN_FIELD = "fieldFromANewerKubernetes"
CONTAINER_CREDENTIALS_AUDIENCE = "pods.example.com"
CC_TOKEN_VOLUME = "pod-identity-token"  # the pod-identity flag set's volume name
# --watch-config-map reads the ConfigMap pod-identity-webhook of --namespace
CONFIG_NAMESPACE = "side-config"
CONFIG_MAP = "pod-identity-webhook"
# ServiceAccounts without annotations, whose identity only the ConfigMap gives
BARE_NAMESPACE = "side-cm"


@dataclass(frozen=True)
class FlagSet:
    """One pair of servers (upstream's and ours) runs with these flags."""

    name: str
    flags: tuple[str, ...]
    prefix: str = DEFAULT_PREFIX
    container_credentials: bool = False
    instance_metadata: bool = False  # run against tests/upstream/metadata.py


def flag_sets(directory: Path) -> list[FlagSet]:
    """Few sets, each changing several things a patch depends on at once (docs/upstream.md)."""
    credentials_file = directory / "container-credentials.json"
    return [
        FlagSet("defaults", ()),
        FlagSet(
            "regional",
            (
                "--aws-default-region=us-west-2",
                "--sts-regional-endpoint=true",
                "--token-expiration=3600",
                "--token-audience=custom.example.com",
            ),
        ),
        FlagSet(
            "prefix-and-path",
            (
                f"--annotation-prefix={CUSTOM_PREFIX}",
                "--token-mount-path=/var/run/secrets/custom/token-dir",
                "--aws-default-region=eu-central-1",
                "--token-expiration=100",
            ),
            prefix=CUSTOM_PREFIX,
        ),
        FlagSet(
            "pod-identity",
            (
                f"--watch-container-credentials-config={credentials_file}",
                f"--container-credentials-audience={CONTAINER_CREDENTIALS_AUDIENCE}",
                "--container-credentials-full-uri=http://127.0.0.1:9/v1/credentials",
                "--container-credentials-token-mount-path=/var/run/secrets/pods.example.com/sa",
                f"--container-credentials-token-volume-name={CC_TOKEN_VOLUME}",
                "--container-credentials-token-path=pod-token",
                "--aws-default-region=ap-south-1",
            ),
            container_credentials=True,
        ),
        FlagSet(
            "config-map",
            (
                "--watch-config-map=true",
                f"--namespace={CONFIG_NAMESPACE}",
                "--aws-default-region=us-east-2",
            ),
        ),
        FlagSet(
            "compose-role-arn",
            ("--compose-role-arn=true", "--sts-regional-endpoint=true"),
            instance_metadata=True,
        ),
    ]


def container_credentials_config() -> dict[str, Any]:
    return {
        "identities": [
            {"namespace": namespace, "serviceAccount": f"sa-{i}"}
            for namespace in NAMESPACES
            for i in range(CONTAINER_CREDENTIALS_ACCOUNTS)
        ]
    }


def config_map(rng: random.Random) -> dict[str, Any]:
    """The ConfigMap of --watch-config-map: every third ServiceAccount of each namespace (sa-0,
    the readiness probe's, among them), and one key for a name in every namespace."""
    entries: dict[str, dict[str, Any]] = {}
    keys = [
        f"{ns}/sa-{i}"
        for ns in (*NAMESPACES, BARE_NAMESPACE)
        for i in range(0, ACCOUNTS_PER_NAMESPACE, 3)
    ]
    for key in [*keys, "*/sa-10"]:
        entry: dict[str, Any] = {
            "RoleARN": rng.choice(ROLE_ARNS[:4]),
            "UseRegionalSTS": rng.random() < 0.5,
            "TokenExpiration": rng.choice((0, 600, 3600, 86400)),
        }
        if key.startswith(f"{BARE_NAMESPACE}/") and rng.random() < 0.3:
            entry["TokenExpiration"] = rng.choice((1, 100, 599))
        if not key.startswith(f"{BARE_NAMESPACE}/") or rng.random() < 0.7:
            entry["Audience"] = rng.choice(("sts.amazonaws.com", "custom.example.com"))
        entries[key] = entry
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": CONFIG_MAP, "namespace": CONFIG_NAMESPACE},
        "data": {"config": json.dumps(entries)},
    }


def _annotations(rng: random.Random) -> dict[str, str]:
    """Annotations under both prefixes, so a set with the other prefix reads different values."""
    out: dict[str, str] = {}
    for prefix in (DEFAULT_PREFIX, CUSTOM_PREFIX):
        if rng.random() < 0.85:
            out[f"{prefix}/role-arn"] = (
                rng.choice(ROLE_ARNS[:4]) if rng.random() < 0.6 else rng.choice(ROLE_ARNS)
            )
        if rng.random() < 0.3:
            out[f"{prefix}/audience"] = rng.choice(AUDIENCES)
        if rng.random() < 0.4:
            out[f"{prefix}/sts-regional-endpoints"] = rng.choice(BOOLEANS)
        if rng.random() < 0.4:
            out[f"{prefix}/token-expiration"] = rng.choice(EXPIRATIONS)
    return out


def service_accounts(rng: random.Random) -> list[dict[str, Any]]:
    """Every ServiceAccount the cases use, created before any server starts."""
    accounts = []
    for namespace in NAMESPACES:
        for i in range(ACCOUNTS_PER_NAMESPACE):
            accounts.append(
                {
                    "apiVersion": "v1",
                    "kind": "ServiceAccount",
                    "metadata": {
                        "name": f"sa-{i}",
                        "namespace": namespace,
                        "annotations": _annotations(rng)
                        if i
                        else {
                            f"{p}/role-arn": ROLE_ARNS[0] for p in (DEFAULT_PREFIX, CUSTOM_PREFIX)
                        },
                    },
                }
            )
    for i in range(ACCOUNTS_PER_NAMESPACE):
        accounts.append(
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": f"sa-{i}", "namespace": BARE_NAMESPACE, "annotations": {}},
            }
        )
    return accounts


def _env(rng: random.Random) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = []
    for name in rng.sample(ENV_NAMES, rng.choice((0, 0, 1, 2, 3))):
        if rng.random() < 0.3:
            env.append(
                {"name": name, "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}
            )
        elif rng.random() < 0.2:
            env.append({"name": name, "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}})
        else:
            env.append({"name": name, "value": rng.choice(("x", "", "us-east-1", "regional"))})
    return env


def _mounts(rng: random.Random) -> list[dict[str, Any]]:
    mounts: list[dict[str, Any]] = []
    roll = rng.random()
    if roll < 0.1:
        mounts.append({"name": TOKEN_VOLUME, "mountPath": "/somewhere/else", "readOnly": True})
    elif roll < 0.2:
        mounts.append(
            {"name": "mine", "mountPath": "/var/run/secrets/eks.amazonaws.com/serviceaccount"}
        )
    elif roll < 0.25:
        mounts.append({"name": CC_VOLUME, "mountPath": "/cc"})
    elif roll < 0.4:
        mounts.append({"name": "data", "mountPath": "/data"})
    return mounts


def _container(rng: random.Random, name: str) -> dict[str, Any]:
    container: dict[str, Any] = {"name": name, "image": f"{name}:1"}
    env = _env(rng)
    if env:
        container["env"] = env
    mounts = _mounts(rng)
    if mounts:
        container["volumeMounts"] = mounts
    if rng.random() < 0.1:
        container["resources"] = {"limits": {"cpu": "1"}}
    if rng.random() < 0.1:
        container["command"] = ["sh", "-c", "echo hi"]
    if rng.random() < 0.05:
        container[UNKNOWN_FIELD] = {"on": True}
    return container


def pod(rng: random.Random, index: int, flag_set: FlagSet) -> dict[str, Any]:
    namespace = rng.choice(NAMESPACES)
    if flag_set.name == "config-map" and rng.random() < 0.7:
        namespace = BARE_NAMESPACE
    account = (
        MISSING_ACCOUNT if rng.random() < 0.04 else f"sa-{rng.randrange(ACCOUNTS_PER_NAMESPACE)}"
    )
    names = ["app", "side", "third"][: rng.choice((1, 1, 2, 3))]
    spec: dict[str, Any] = {
        "serviceAccountName": account,
        "containers": [_container(rng, name) for name in names],
    }
    inits = rng.choice((0, 0, 0, 1, 2))
    if inits:
        spec["initContainers"] = []
        for i in range(inits):
            init = _container(rng, f"init-{i}")
            if rng.random() < 0.4:
                init["restartPolicy"] = "Always"  # a native sidecar
            spec["initContainers"].append(init)
    roll = rng.random()
    if roll < 0.08:
        spec["volumes"] = [{"name": TOKEN_VOLUME, "emptyDir": {}}]
    elif roll < 0.12:
        spec["volumes"] = [{"name": CC_VOLUME, "emptyDir": {}}]
    elif roll < 0.3:
        spec["volumes"] = [{"name": "data", "emptyDir": {}}]
    roll = rng.random()
    if roll < 0.06:
        spec["nodeSelector"] = {"kubernetes.io/os": "windows"}
    elif roll < 0.09:
        spec["nodeSelector"] = {"beta.kubernetes.io/os": "windows"}
    elif roll < 0.11:
        spec["os"] = {"name": "windows"}
    elif roll < 0.13:
        spec["nodeSelector"] = {"kubernetes.io/os": "linux"}
    annotations: dict[str, str] = {}
    for prefix in (
        flag_set.prefix,
        DEFAULT_PREFIX if flag_set.prefix != DEFAULT_PREFIX else CUSTOM_PREFIX,
    ):
        if rng.random() < 0.25:
            annotations[f"{prefix}/skip-containers"] = rng.choice(SKIP_CONTAINERS)
        if rng.random() < 0.2:
            annotations[f"{prefix}/token-expiration"] = rng.choice(EXPIRATIONS)
    metadata: dict[str, Any] = {"name": f"pod-{index}", "namespace": namespace}
    if annotations:
        metadata["annotations"] = annotations
    if rng.random() < 0.1:
        metadata["labels"] = {"app": "x"}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}


Accounts = dict[tuple[str, str], dict[str, str]]  # (namespace, name) -> annotations
Entries = dict[str, dict[str, Any]]  # the ConfigMap's entries, "NAMESPACE/NAME" -> entry


@dataclass
class Case:
    index: int
    flag_set: FlagSet
    pod: dict[str, Any] = field(repr=False)
    accounts: Accounts = field(default_factory=dict, repr=False)
    entries: Entries = field(default_factory=dict, repr=False)

    def with_pod(self, pod: dict[str, Any]) -> Case:
        return Case(self.index, self.flag_set, pod, self.accounts, self.entries)

    def config_entry(self) -> dict[str, Any] | None:
        """The ConfigMap entry of the pod's ServiceAccount in the config-map flag set, for a
        ServiceAccount that has no annotations (None otherwise)."""
        namespace = self.pod["metadata"]["namespace"]
        name = self.pod["spec"]["serviceAccountName"]
        if "--watch-config-map=true" not in self.flag_set.flags or namespace != BARE_NAMESPACE:
            return None
        return self.entries.get(f"{namespace}/{name}") or self.entries.get(f"*/{name}")

    def annotation(self, name: str) -> str | None:
        """The pod's ServiceAccount's annotation under the flag set's prefix (None: not set)."""
        key = (self.pod["metadata"]["namespace"], self.pod["spec"]["serviceAccountName"])
        return self.accounts.get(key, {}).get(f"{self.flag_set.prefix}/{name}")


def cases(
    rng: random.Random,
    sets: list[FlagSet],
    count: int,
    accounts: Accounts | None = None,
    entries: Entries | None = None,
) -> list[Case]:
    return [
        Case(
            i, sets[i % len(sets)], pod(rng, i, sets[i % len(sets)]), accounts or {}, entries or {}
        )
        for i in range(count)
    ]


def review(pod: dict[str, Any], api_version: str, uid: str) -> dict[str, Any]:
    """The AdmissionReview kube-apiserver sends for a pod CREATE."""
    return {
        "apiVersion": api_version,
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
            "requestResource": {"group": "", "version": "v1", "resource": "pods"},
            "name": pod["metadata"].get("name", ""),
            "namespace": pod["metadata"]["namespace"],
            "operation": "CREATE",
            "userInfo": {"username": "side-by-side", "groups": ["system:authenticated"]},
            "object": copy.deepcopy(pod),
            "oldObject": None,
            "dryRun": False,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
        },
    }


def smaller(pod: dict[str, Any]) -> list[dict[str, Any]]:
    """Pods with one thing fewer: a container, an init container, an env var, a mount, a volume,
    an annotation or the node selector. Shrinking keeps the first that still differs."""
    out: list[dict[str, Any]] = []
    spec = pod["spec"]
    for key in ("containers", "initContainers", "volumes"):
        items = spec.get(key, [])
        for i in range(len(items)):
            if key == "containers" and len(items) == 1:
                continue
            candidate = copy.deepcopy(pod)
            del candidate["spec"][key][i]
            if not candidate["spec"][key]:
                del candidate["spec"][key]
            out.append(candidate)
    for key in ("containers", "initContainers"):
        for ci, container in enumerate(spec.get(key, [])):
            for list_key in ("env", "volumeMounts", "command"):
                for i in range(len(container.get(list_key, []))):
                    candidate = copy.deepcopy(pod)
                    target = candidate["spec"][key][ci]
                    del target[list_key][i]
                    if not target[list_key]:
                        del target[list_key]
                    out.append(candidate)
            for extra in ("resources", "restartPolicy", UNKNOWN_FIELD):
                if extra in container:
                    candidate = copy.deepcopy(pod)
                    del candidate["spec"][key][ci][extra]
                    out.append(candidate)
    for key in ("nodeSelector", "os"):
        if key in spec:
            candidate = copy.deepcopy(pod)
            del candidate["spec"][key]
            out.append(candidate)
    for key in ("annotations", "labels"):
        for name in pod["metadata"].get(key, {}):
            candidate = copy.deepcopy(pod)
            del candidate["metadata"][key][name]
            if not candidate["metadata"][key]:
                del candidate["metadata"][key]
            out.append(candidate)
    return out
