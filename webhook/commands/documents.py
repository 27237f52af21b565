"""The Pod or workload that `mutate` and `doctor` are given: read, and its pod template found."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from webhook.assembly.offline import InputError
from webhook.mutation.shape import InvalidPod, check_pod
from webhook.types import JsonObject

# kind -> JSON pointer of the pod template inside it
TEMPLATE_POINTERS = {
    "Pod": "",
    "Deployment": "/spec/template",
    "StatefulSet": "/spec/template",
    "DaemonSet": "/spec/template",
    "ReplicaSet": "/spec/template",
    "Job": "/spec/template",
    "CronJob": "/spec/jobTemplate/spec/template",
}


def add_namespace_argument(parser: argparse.ArgumentParser) -> None:
    """`-n/--namespace` as kubectl spells it; `--pod-namespace`, its first name, still works.
    The dest is not `namespace`: Settings.namespace is the webhook's own (serve --namespace)."""
    parser.add_argument(
        "-n",
        "--namespace",
        "--pod-namespace",
        dest="pod_namespace",
        default=None,
        metavar="NAMESPACE",
        help="namespace of objects that do not name one (default: default)",
    )


class PodTemplate(NamedTuple):
    namespace: str
    pod: JsonObject  # {"metadata", "spec"} of the Pod or of the workload's template
    pointer: str  # where that template sits in the object


def pod_template(obj: JsonObject, *, default_namespace: str, where: str) -> PodTemplate:
    kind = obj.get("kind")
    pointer = TEMPLATE_POINTERS.get(kind) if isinstance(kind, str) else None
    if pointer is None:
        supported = ", ".join(TEMPLATE_POINTERS)
        raise InputError(f"{where}: kind {kind!r} cannot be mutated; expected one of {supported}")
    template: Any = obj
    for token in pointer.split("/")[1:]:
        template = template.get(token) if isinstance(template, dict) else None
    if not isinstance(template, dict):
        raise InputError(f"{where}: {kind} has no pod template at {pointer}")
    metadata = obj.get("metadata") or {}
    namespace = metadata.get("namespace") or default_namespace
    pod = {"metadata": template.get("metadata"), "spec": template.get("spec")}
    if pod["metadata"] is None:
        del pod["metadata"]
    try:
        check_pod(pod, path=f"{kind}{pointer.replace('/', '.')}")
    except InvalidPod as exc:
        raise InputError(f"{where}: {exc}") from exc
    return PodTemplate(namespace, pod, pointer)


def read_documents(filename: str) -> list[JsonObject]:
    try:
        text = sys.stdin.read() if filename == "-" else Path(filename).read_text()
    except OSError as exc:
        raise InputError(f"{filename}: cannot read: {exc.strerror or exc}") from exc
    try:
        loaded = [doc for doc in yaml.safe_load_all(text) if doc is not None]
    except yaml.YAMLError as exc:
        raise InputError(f"{filename}: not valid YAML or JSON: {exc}") from exc
    documents: list[JsonObject] = []
    for index, doc in enumerate(loaded):
        if not isinstance(doc, dict):
            raise InputError(f"{filename}: document {index + 1} is not an object")
        if doc.get("kind") == "List" and isinstance(doc.get("items"), list):
            documents.extend(item for item in doc["items"] if isinstance(item, dict))
        else:
            documents.append(doc)
    return documents
