"""The identity patch: env, volume mounts, the projected token volume and the pod-identity label.

Why append operations: upstream re-sends whole container arrays, which drops every field its
Go structs do not know. Here every operation adds one thing at the end of a list (or creates
the list), so fields this code has never heard of survive byte for byte, and a pod that already
carries everything yields no operation at all (kube-apiserver may reinvoke the webhook).
"""

from __future__ import annotations

import functools
import posixpath
from collections.abc import Sequence
from typing import Any, NamedTuple

from webhook.mutation.podfields import CONTAINER_LISTS, add_op, label_ops
from webhook.mutation.podidentity import Mode, PodIdentity
from webhook.mutation.stsendpoint import STS_ENDPOINT_ENV
from webhook.mutation.wiring import (
    AUTH_TOKEN_FILE_ENV,
    FULL_URI_ENV,
    ROLE_ARN_ENV,
    TOKEN_FILE_ENV,
    wiring_warnings,
)
from webhook.types import JsonObject, PatchOp

DEFAULT_REGION_ENV = "AWS_DEFAULT_REGION"  # botocore (boto3, the AWS CLI) reads only this one
REGION_ENVS = (DEFAULT_REGION_ENV, "AWS_REGION")
STS_ENV = "AWS_STS_REGIONAL_ENDPOINTS"
POD_IDENTITY_LABEL = "eks.amazonaws.com/pod-identity"
WINDOWS_OS_SELECTORS = ("kubernetes.io/os", "beta.kubernetes.io/os")
_NO_NAMES: frozenset[Any] = frozenset()


class Mutation(NamedTuple):
    ops: list[PatchOp]
    warnings: tuple[str, ...]


def token_file_path(pod: JsonObject, identity: PodIdentity) -> str:
    path = _clean_join(identity.mount_path, identity.token_path)
    node_selector = (pod.get("spec") or {}).get("nodeSelector") or {}
    if any(node_selector.get(key) == "windows" for key in WINDOWS_OS_SELECTORS):
        return "C:" + path.replace("/", "\\")
    return path


def build_identity_patch(pod: JsonObject, identity: PodIdentity) -> Mutation:
    spec: JsonObject = pod["spec"]
    token_file = token_file_path(pod, identity)
    if identity.mode is Mode.CONTAINER_CREDENTIALS:
        credential_env = ((FULL_URI_ENV, identity.full_uri), (AUTH_TOKEN_FILE_ENV, token_file))
    else:
        credential_env = ((ROLE_ARN_ENV, identity.role_arn), (TOKEN_FILE_ENV, token_file))

    ops: list[PatchOp] = []
    if identity.mode is Mode.CONTAINER_CREDENTIALS:
        ops.extend(label_ops(pod, POD_IDENTITY_LABEL, "enabled"))
    ops.extend(_volume_ops(spec, identity))
    seen_names: set[str] = set()
    notes: list[str] = []  # half-wired containers (webhook/mutation/wiring.py)
    include = identity.include_containers
    for list_name in CONTAINER_LISTS:
        containers: Sequence[JsonObject] = spec.get(list_name) or ()
        for index, container in enumerate(containers):
            name = container.get("name", "")
            seen_names.add(name)
            if name in identity.skip_containers or (include is not None and name not in include):
                continue
            ops.extend(
                _container_ops(
                    container,
                    base=f"/spec/{list_name}/{index}",  # constant names: nothing to escape
                    identity=identity,
                    credential_env=credential_env,
                    notes=notes,
                )
            )
    notes.extend(
        f"skip-containers names {name!r}, which is not a container of this pod"
        for name in sorted(identity.skip_containers - seen_names)
    )
    if include is not None:
        notes.extend(
            f"include-containers names {name!r}, which is not a container of this pod"
            for name in sorted(include - seen_names)
        )
    return Mutation(ops, tuple(notes))


@functools.lru_cache(maxsize=64)  # a handful of (mount path, token path) pairs per process
def _clean_join(directory: str, name: str) -> str:
    # Go's filepath.Join cleans the result; normpath does too, but keeps a leading "//".
    path = posixpath.normpath(directory + "/" + name)
    return "/" + path.lstrip("/") if path.startswith("//") else path


def _volume_ops(spec: JsonObject, identity: PodIdentity) -> list[PatchOp]:
    volumes = spec.get("volumes")
    if volumes and any(volume.get("name") == identity.volume_name for volume in volumes):
        return []
    volume = {
        "name": identity.volume_name,
        "projected": {
            "sources": [
                {
                    "serviceAccountToken": {
                        "audience": identity.audience,
                        "expirationSeconds": identity.token_expiration,
                        "path": identity.token_path,
                    }
                }
            ]
        },
    }
    if volumes is None:
        return [add_op("/spec/volumes", [volume])]
    # Upstream puts its volume first; results must match, so insert at index 0.
    return [add_op("/spec/volumes/0", volume)]


def _container_ops(
    container: JsonObject,
    *,
    base: str,
    identity: PodIdentity,
    credential_env: tuple[tuple[str, str], tuple[str, str]],
    notes: list[str],
) -> list[PatchOp]:
    env: Sequence[JsonObject] | None = container.get("env")
    names = {entry.get("name") for entry in env} if env else _NO_NAMES
    (credential_name, credential_value), (token_name, token_value) = credential_env
    credentials_set = credential_name in names or token_name in names
    if credentials_set and env:
        notes.extend(
            wiring_warnings(
                str(container.get("name", "")),
                env,
                names,
                (credential_name, token_name),
                identity.role_arn,
            )
        )
    region_set = not names.isdisjoint(REGION_ENVS)
    sts_set = STS_ENV in names
    if credentials_set and region_set and sts_set:
        # Upstream leaves such a container alone entirely, volume mount included.
        return []

    new_env: list[JsonObject] = []
    if identity.regional_sts and not sts_set:
        new_env.append({"name": STS_ENV, "value": "regional"})
    region = identity.region
    if region and not region_set:
        for name in REGION_ENVS:
            new_env.append({"name": name, "value": region})
    if not credentials_set:
        new_env.append({"name": credential_name, "value": credential_value})
        new_env.append({"name": token_name, "value": token_value})
        # The endpoint goes with the credentials the webhook adds; a container that wires its
        # own, or sets its own endpoint, keeps its choice.
        endpoint = identity.sts_endpoint_url
        if endpoint and STS_ENDPOINT_ENV not in names:
            new_env.append({"name": STS_ENDPOINT_ENV, "value": endpoint})

    ops: list[PatchOp] = []
    if new_env:
        if env is None:  # absent or null: create the list in one operation
            ops.append({"op": "add", "path": base + "/env", "value": new_env})
        else:
            path = base + "/env/-"
            for item in new_env:
                ops.append({"op": "add", "path": path, "value": item})
    mounts: Sequence[JsonObject] | None = container.get("volumeMounts")
    volume_name = identity.volume_name
    if not mounts or not any(mount.get("name") == volume_name for mount in mounts):
        mount = {"name": volume_name, "readOnly": True, "mountPath": identity.mount_path}
        if mounts is None:
            ops.append({"op": "add", "path": base + "/volumeMounts", "value": [mount]})
        else:
            ops.append({"op": "add", "path": base + "/volumeMounts/-", "value": mount})
    return ops
