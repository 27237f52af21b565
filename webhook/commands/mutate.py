"""Offline preview: what the webhook would do to a pod or a workload's pod template."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import jsonpatch
import orjson
import yaml

from webhook.flags import add_mutation_arguments, settings_from_args
from webhook.mutation.answer import Answer, Outcome
from webhook.mutation.fargate import FargateProfile, schedule_on_fargate
from webhook.mutation.identity import IdentityDefaults, ServiceAccountIdentity
from webhook.mutation.shape import InvalidPod, check_pod
from webhook.mutator import PodMutator, identity_defaults
from webhook.settings import Settings
from webhook.sources.errors import ConfigError
from webhook.sources.files.containercredentials import parse_container_credentials
from webhook.sources.files.fargateprofiles import parse_fargate_profiles
from webhook.sources.serviceaccounts.file import parse_service_accounts
from webhook.sources.serviceaccounts.store import ServiceAccountStore
from webhook.types import JsonObject, PatchOp

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


class InputError(ValueError):
    pass


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


def service_account_sources(settings: Settings, documents: list[JsonObject], where: str) -> str:
    """Where the ServiceAccounts came from, as the unchanged-pod warning names them."""
    sources = []
    if settings.service_accounts_file is not None:
        sources.append(f"--service-accounts-file {settings.service_accounts_file}")
    if any(doc.get("kind") == "ServiceAccount" for doc in documents):
        sources.append(where)
    return " or ".join(sources)


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "mutate",
        help="preview the mutation of a pod or workload offline",
        description="Print what the webhook would do to a Pod, or to the pod template of a "
        "Deployment, StatefulSet, DaemonSet, ReplicaSet, Job or CronJob. ServiceAccounts come "
        "from --service-accounts-file and from ServiceAccount documents in the input itself.",
    )
    parser.add_argument("-f", "--filename", required=True, help="YAML or JSON input; - for stdin")
    add_namespace_argument(parser)
    parser.add_argument(
        "-o",
        "--output",
        choices=("yaml", "json", "patch"),
        default="yaml",
        help="the mutated object as YAML (default) or JSON, or the JSON patch only",
    )
    add_mutation_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    try:
        documents = read_documents(args.filename)
        mutator = build_mutator(settings, documents)
        profiles = None
        if settings.fargate_profiles is not None:
            path = settings.fargate_profiles
            profiles = parse_fargate_profiles(_read(path), source=path)
        objects = [doc for doc in documents if doc.get("kind") != "ServiceAccount"]
        if not objects:
            raise InputError(f"{args.filename}: no Pod or workload found")
        sources = service_account_sources(settings, documents, f"-f {args.filename}")
        outputs: list[Any] = []
        for index, obj in enumerate(objects):
            ops, warnings = preview(
                mutator,
                obj,
                default_namespace=args.pod_namespace or "default",
                where=f"{args.filename}: document {index + 1}",
                sources=sources,
            )
            notes: tuple[str, ...] = ()
            if profiles is not None:
                fargate = preview_fargate(
                    settings,
                    profiles,
                    jsonpatch.apply_patch(obj, ops),
                    default_namespace=args.pod_namespace or "default",
                )
                ops, warnings = ops + fargate.ops, warnings + fargate.warnings
                notes = (fargate.placement,)
            # where the pod would run is information; a warning is what kube-apiserver would
            # show the user (docs/fargate.md, "Preview")
            for note in notes:
                print(f"note: {note}", file=sys.stderr)
            for warning in warnings:
                print(f"warning: {warning}", file=sys.stderr)
            outputs.append(ops if args.output == "patch" else jsonpatch.apply_patch(obj, ops))
    except (InputError, ConfigError) as exc:
        print(f"pod-identity-webhook mutate: {exc}", file=sys.stderr)
        return 2
    if args.output == "yaml":
        sys.stdout.write(yaml.safe_dump_all(outputs, sort_keys=False))
    else:
        for output in outputs:
            sys.stdout.write(orjson.dumps(output, option=orjson.OPT_INDENT_2).decode() + "\n")
    return 0


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


def preview(
    mutator: PodMutator,
    obj: JsonObject,
    *,
    default_namespace: str,
    where: str,
    sources: str = "",
) -> tuple[list[PatchOp], tuple[str, ...]]:
    """`sources`: where the ServiceAccounts were read from ("" when nowhere)."""
    namespace, pod, pointer = pod_template(obj, default_namespace=default_namespace, where=where)
    result = mutator.mutate_now(pod, namespace)
    ops: list[PatchOp] = [{**op, "path": pointer + op["path"]} for op in result.ops]
    return ops, result.warnings + _unmutated_warnings(result, sources)


def _unmutated_warnings(result: Answer, sources: str) -> tuple[str, ...]:
    """The most common surprise: the pod comes back unchanged because its ServiceAccount was
    not in the given source or carries no role annotation. Say which sources were read."""
    if result.outcome is Outcome.NOT_FOUND:
        where = (
            f"not found in {sources}"
            if sources
            else "not found: no --service-accounts-file was given and the input holds no "
            "ServiceAccount"
        )
        return (f"ServiceAccount {result.detail} {where}; the pod is unchanged",)
    if result.outcome is Outcome.NO_ROLE:
        return (f"ServiceAccount {result.detail} has no role-arn annotation; the pod is unchanged",)
    return ()


class FargatePreview(NamedTuple):
    ops: list[PatchOp]
    placement: str  # where the pod would run: information, not a warning
    warnings: tuple[str, ...]


def preview_fargate(
    settings: Settings,
    profiles: tuple[FargateProfile, ...],
    obj: JsonObject,
    *,
    default_namespace: str,
) -> FargatePreview:
    """The Fargate part, computed on the object the identity patch produced (as kube-apiserver
    would call /mutate-fargate after /mutate); a DaemonSet's pods are never Fargate's."""
    kind = obj.get("kind")
    pointer = TEMPLATE_POINTERS[str(kind)]
    template: Any = obj
    for token in pointer.split("/")[1:]:
        template = template[token]
    namespace = (obj.get("metadata") or {}).get("namespace") or default_namespace
    if kind == "DaemonSet":
        return FargatePreview([], "fargate: DaemonSet pods are never scheduled on Fargate", ())
    result = schedule_on_fargate(
        template, namespace, profiles=profiles, scheduler_name=settings.fargate_scheduler_name
    )
    where = f"fargate: {result.outcome.value}" + (
        f" (profile {result.detail!r})" if result.detail else ""
    )
    ops: list[PatchOp] = [{**op, "path": pointer + op["path"]} for op in result.ops]
    return FargatePreview(ops, where, result.warnings)


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


def build_mutator(
    settings: Settings,
    documents: list[JsonObject],
    *,
    extra: Callable[[IdentityDefaults], dict[str, ServiceAccountIdentity]] | None = None,
) -> PodMutator:
    """ServiceAccounts from --service-accounts-file, the input, then `extra` (doctor: the cluster)."""
    defaults = identity_defaults(settings)
    if settings.compose_role_arn:
        if not settings.aws_account_id:
            raise InputError(
                "--compose-role-arn needs --aws-account-id here: mutate does not read "
                "EC2 instance metadata"
            )
        defaults = identity_defaults(
            settings, account_id=settings.aws_account_id, partition=settings.aws_partition
        )
    entries = {}
    if settings.service_accounts_file is not None:
        path = settings.service_accounts_file
        entries.update(parse_service_accounts(_read(path), defaults, source=path))
    inline = [doc for doc in documents if doc.get("kind") == "ServiceAccount"]
    if inline:
        entries.update(
            parse_service_accounts(yaml.safe_dump_all(inline).encode(), defaults, source="input")
        )
    if extra is not None:
        entries.update(extra(defaults))
    store = ServiceAccountStore()
    store.replace_all(entries)
    keys: frozenset[str] = frozenset()
    if settings.watch_container_credentials_config is not None:
        path = settings.watch_container_credentials_config
        keys = parse_container_credentials(_read(path), source=path)
    return PodMutator.from_settings(settings, store, container_credentials_keys=lambda: keys)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from exc
