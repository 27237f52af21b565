"""Offline preview: what the webhook would do to a pod or a workload's pod template."""

from __future__ import annotations

import argparse
import sys
from typing import Any, NamedTuple

import jsonpatch
import orjson
import yaml

from webhook.assembly.decisions import FargateDecision
from webhook.assembly.offline import InputError, offline_fargate, offline_mutator
from webhook.assembly.podmutator import PodMutator
from webhook.commands.documents import (
    TEMPLATE_POINTERS,
    add_namespace_argument,
    pod_template,
    read_documents,
)
from webhook.flags.settings import Settings
from webhook.flags.shared import add_mutation_arguments, settings_from_args
from webhook.mutation.answer import Answer, Outcome
from webhook.mutation.fargate import FargateProfile
from webhook.sources.errors import ConfigError
from webhook.types import JsonObject, PatchOp


def service_account_sources(settings: Settings, documents: list[JsonObject], where: str) -> str:
    """Where the ServiceAccounts came from, as the unchanged-pod warning names them."""
    sources = []
    if settings.service_accounts_file is not None:
        sources.append(f"--service-accounts-file {settings.service_accounts_file}")
    if any(doc.get("kind") == "ServiceAccount" for doc in documents):
        sources.append(where)
    return " or ".join(sources)


HELP = """preview the mutation of a pod or workload offline

Print what the webhook would do to a Pod, or to the pod template of a Deployment, StatefulSet,
DaemonSet, ReplicaSet, Job or CronJob. ServiceAccounts come from --service-accounts-file and
from ServiceAccount documents in the input itself.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
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


def run(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    try:
        documents = read_documents(args.filename)
        mutator = offline_mutator(settings, documents)
        fargate = offline_fargate(settings)
        profiles = fargate.profiles
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
                placed = preview_fargate(
                    fargate.decision,
                    profiles,
                    jsonpatch.apply_patch(obj, ops),
                    default_namespace=args.pod_namespace or "default",
                )
                ops, warnings = ops + placed.ops, warnings + placed.warnings
                notes = (placed.placement,)
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
    decision: FargateDecision,
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
    result = decision.schedule(template, namespace, profiles)
    where = f"fargate: {result.outcome.value}" + (
        f" (profile {result.detail!r})" if result.detail else ""
    )
    ops: list[PatchOp] = [{**op, "path": pointer + op["path"]} for op in result.ops]
    return FargatePreview(ops, where, result.warnings)
