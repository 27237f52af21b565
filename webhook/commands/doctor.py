"""`doctor`: explain, check by check, whether a pod gets AWS credentials and what to change."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path
from typing import Any

from webhook import __version__
from webhook.commands.mutate import (
    InputError,
    add_namespace_argument,
    build_mutator,
    pod_template,
    read_documents,
)
from webhook.doctor.diagnosis import Evidence, diagnose
from webhook.doctor.inputs import (
    DoctorInputError,
    published_documents,
    read_token,
    read_trust_policy,
)
from webhook.doctor.pods import pod_checks
from webhook.doctor.report import About, exit_code, render_json, render_table
from webhook.flags import add_mutation_arguments, settings_from_args
from webhook.mutation.identity import IdentityDefaults, ServiceAccountIdentity
from webhook.mutator import service_account_name
from webhook.settings import Settings
from webhook.sources.errors import ConfigError
from webhook.sources.serviceaccounts.annotations import identity_of_service_account
from webhook.sources.serviceaccounts.store import key_of


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "doctor",
        help="explain why a pod gets AWS credentials or not, check by check",
        description="Check a pod (or workload) against its ServiceAccount, the webhook's flags, "
        "a projected token, the issuer's discovery document and JWKS, and the role's trust "
        "policy. Each check passes, fails (with the value seen, the value expected and the fix) "
        "or is not checked for want of input. Exit 0: nothing failed; 1: a check failed; "
        "2: bad input.",
    )
    parser.add_argument("-f", "--filename", required=True, help="Pod or workload, YAML or JSON")
    add_namespace_argument(parser)
    parser.add_argument(
        "--kubeconfig", type=Path, help="read the pod's ServiceAccount from this cluster"
    )
    parser.add_argument(
        "--trust-policy",
        type=Path,
        metavar="FILE",
        help="the role's trust policy: the JSON document (URL-encoded too) or `aws iam get-role` output",
    )
    parser.add_argument(
        "--token", type=Path, metavar="FILE", help="a projected token taken from the pod"
    )
    parser.add_argument(
        "--discovery", type=Path, metavar="FILE", help="the issuer's openid-configuration"
    )
    parser.add_argument("--jwks", type=Path, metavar="FILE", help="the issuer's keys.json")
    parser.add_argument(
        "--issuer-url",
        metavar="URL",
        help="fetch the discovery document and JWKS from this issuer over HTTPS",
    )
    parser.add_argument(
        "--issuer-ca-file",
        type=Path,
        metavar="FILE",
        help="trust this CA bundle for --issuer-url (default: the system's)",
    )
    parser.add_argument(
        "-o", "--output", choices=("table", "json"), default="table", help="default table"
    )
    add_mutation_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    try:
        evidence, about = _gather(args, settings)
    except (InputError, ConfigError, DoctorInputError) as exc:
        print(f"pod-identity-webhook doctor: {exc}", file=sys.stderr)
        return 2
    checks = diagnose(evidence)
    render = render_json if args.output == "json" else render_table
    sys.stdout.write(render(checks, about))
    return exit_code(checks)


# doctor's own inputs, in the order the first line of the report lists them
_INPUT_FLAGS = (
    ("--token", "token"),
    ("--trust-policy", "trust_policy"),
    ("--discovery", "discovery"),
    ("--jwks", "jwks"),
    ("--issuer-url", "issuer_url"),
    ("--issuer-ca-file", "issuer_ca_file"),
)


def _inputs(args: argparse.Namespace, settings: Settings) -> tuple[tuple[str, str], ...]:
    """-f, doctor's own inputs, then every webhook flag whose value is not its default
    (Settings' attribute names are the flags with underscores)."""
    given = [("-f", str(args.filename))]
    given += [
        (flag, str(getattr(args, dest))) for flag, dest in _INPUT_FLAGS if getattr(args, dest)
    ]
    defaults = Settings()
    for field in dataclasses.fields(Settings):
        value = getattr(settings, field.name)
        if value == getattr(defaults, field.name):
            continue
        flag = "--" + field.name.replace("_", "-")
        if isinstance(value, bool):
            given.append((flag, "") if value else (f"{flag}=false", ""))
        else:
            given.append((flag, str(value)))
    return tuple(given)


def _gather(args: argparse.Namespace, settings: Settings) -> tuple[Evidence, About]:
    documents = read_documents(args.filename)
    objects = [doc for doc in documents if doc.get("kind") != "ServiceAccount"]
    if len(objects) != 1:
        raise DoctorInputError(
            f"-f {args.filename}: {len(objects)} Pods or workloads; expected exactly one"
        )
    namespace, pod, _ = pod_template(
        objects[0],
        default_namespace=args.pod_namespace or "default",
        where=f"-f {args.filename}",
    )
    name = service_account_name(pod)
    metadata = objects[0].get("metadata") or {}
    about = About(
        version=__version__,
        kind=str(objects[0].get("kind")),
        namespace=namespace,
        name=str(metadata.get("name") or f"{metadata.get('generateName') or ''}(no name)"),
        service_account=name,
        inputs=_inputs(args, settings),
    )
    sources = []
    if settings.service_accounts_file is not None:
        sources.append(f"--service-accounts-file {settings.service_accounts_file}")
    if len(documents) > len(objects):
        sources.append(f"-f {args.filename}")
    extra = None
    if args.kubeconfig is not None:
        sources.append(f"the cluster (--kubeconfig {args.kubeconfig})")
        extra = _from_cluster(settings, namespace, name)
    mutator = build_mutator(settings, documents, extra=extra)
    facts = pod_checks(mutator, pod, namespace, sources=", ".join(sources))
    published = published_documents(
        discovery=args.discovery,
        jwks=args.jwks,
        issuer_url=args.issuer_url,
        ca_file=args.issuer_ca_file,
    )
    evidence = Evidence(
        pod=facts,
        published=published,
        token=read_token(args.token) if args.token is not None else None,
        trust=read_trust_policy(args.trust_policy) if args.trust_policy is not None else None,
        now=int(time.time()),
    )
    return evidence, about


def _from_cluster(settings: Settings, namespace: str, name: str) -> Any:
    # imported here: the kubernetes client takes most of a second to import, and only
    # --kubeconfig needs it (every other subcommand shares this process's start-up)
    from webhook.sources.kube.client import (
        ClusterConfigError,
        KubeApiError,
        cluster_configuration,
        get_service_account,
        new_core_api,
    )

    try:
        core = new_core_api(cluster_configuration(settings))
        obj = get_service_account(core, namespace, name)
    except (ClusterConfigError, KubeApiError) as exc:
        raise DoctorInputError(f"--kubeconfig {settings.kubeconfig}: {exc}") from exc

    def entries(defaults: IdentityDefaults) -> dict[str, ServiceAccountIdentity]:
        if obj is None:
            return {}
        annotations = (obj.get("metadata") or {}).get("annotations") or {}
        identity = identity_of_service_account(namespace, name, annotations, defaults)
        return {key_of(namespace, name): identity}

    return entries
