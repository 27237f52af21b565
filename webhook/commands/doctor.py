"""`doctor`: explain, check by check, whether a pod gets AWS credentials and what to change."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

from webhook import __version__
from webhook.assembly.offline import ExtraServiceAccounts, InputError, offline_mutator
from webhook.assembly.podmutator import service_account_name
from webhook.commands.documents import add_namespace_argument, pod_template, read_documents
from webhook.doctor.cluster import Cluster
from webhook.doctor.diagnosis import NO_TOKEN, Evidence, diagnose
from webhook.doctor.inputs import (
    DoctorInputError,
    published_documents,
    read_token,
    read_trust_policy,
)
from webhook.doctor.pods import pod_checks
from webhook.doctor.report import About, exit_code, render_json, render_table
from webhook.flags.settings import Settings
from webhook.flags.shared import add_mutation_arguments, settings_from_args
from webhook.mutation.serviceaccount import (
    IdentityDefaults,
    ServiceAccountIdentity,
    identity_of_service_account,
)
from webhook.objectkeys import key_of
from webhook.sources.errors import ConfigError
from webhook.types import JsonObject

HELP = """explain why a pod gets AWS credentials or not, check by check

Check a pod (or workload) against its ServiceAccount, the webhook's flags, a projected token,
the issuer's discovery document and JWKS, and the role's trust policy. Each check passes, fails
(with the value seen, the value expected and the fix) or is not checked for want of input. Exit
0: nothing failed; 1: a check failed; 2: bad input.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("-f", "--filename", help="Pod or workload, YAML or JSON")
    which.add_argument(
        "--pod", metavar="NAME", help="the pod NAME as stored in the cluster (needs --kubeconfig)"
    )
    add_namespace_argument(parser)
    parser.add_argument(
        "--kubeconfig",
        type=Path,
        help="read the pod's ServiceAccount from this cluster (the pod too, with --pod) and ask "
        "it for a token as the pod's projected volume gets one (TokenRequest), unless --token "
        "is given",
    )
    parser.add_argument(
        "--no-token-request",
        action="store_true",
        help="with --kubeconfig, do not ask the cluster for a token",
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
    ("--pod", "pod"),
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
    given = [("-f", str(args.filename))] if args.filename else []
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
    cluster = Cluster(settings) if args.kubeconfig is not None else None
    default_namespace = args.pod_namespace or "default"
    if args.pod is not None:
        if cluster is None:
            raise DoctorInputError("--pod needs --kubeconfig, the cluster to read the pod from")
        documents = [cluster.pod(default_namespace, args.pod)]
        where = f"pod {default_namespace}/{args.pod}"
    else:
        documents = read_documents(args.filename)
        where = f"-f {args.filename}"
    objects = [doc for doc in documents if doc.get("kind") != "ServiceAccount"]
    if len(objects) != 1:
        raise DoctorInputError(f"{where}: {len(objects)} Pods or workloads; expected exactly one")
    namespace, pod, _ = pod_template(objects[0], default_namespace=default_namespace, where=where)
    name = service_account_name(pod)
    metadata = objects[0].get("metadata") or {}
    inputs = _inputs(args, settings)
    sources = []
    if settings.service_accounts_file is not None:
        sources.append(f"--service-accounts-file {settings.service_accounts_file}")
    if len(documents) > len(objects):
        sources.append(f"-f {args.filename}")
    extra = None
    if cluster is not None:
        sources.append(f"the cluster (--kubeconfig {args.kubeconfig})")
        extra = _entries(cluster.service_account(namespace, name), namespace, name)
    mutator = offline_mutator(settings, documents, extra=extra)
    facts = pod_checks(mutator, pod, namespace, sources=", ".join(sources))
    published = published_documents(
        discovery=args.discovery,
        jwks=args.jwks,
        issuer_url=args.issuer_url,
        ca_file=args.issuer_ca_file,
    )
    token, token_missing = None, NO_TOKEN
    if args.token is not None:
        token = read_token(args.token)
    elif cluster is not None and not args.no_token_request and facts.audience is not None:
        stored = objects[0] if args.pod is not None else None
        requested = cluster.token(namespace, name, facts.audience, stored)
        token, token_missing = requested.token, requested.summary
        if token is not None:
            inputs += (("--token", f"(from the cluster: {requested.summary})"),)
    about = About(
        version=__version__,
        kind=str(objects[0].get("kind")),
        namespace=namespace,
        name=str(metadata.get("name") or f"{metadata.get('generateName') or ''}(no name)"),
        service_account=name,
        inputs=inputs,
    )
    evidence = Evidence(
        pod=facts,
        published=published,
        token=token,
        trust=read_trust_policy(args.trust_policy) if args.trust_policy is not None else None,
        now=int(time.time()),
        token_missing=token_missing,
    )
    return evidence, about


def _entries(obj: JsonObject | None, namespace: str, name: str) -> ExtraServiceAccounts:
    """The cluster's ServiceAccount as an extra source of the mutator (none when absent)."""

    def entries(defaults: IdentityDefaults) -> dict[str, ServiceAccountIdentity]:
        if obj is None:
            return {}
        annotations = (obj.get("metadata") or {}).get("annotations") or {}
        identity = identity_of_service_account(namespace, name, annotations, defaults)
        return {key_of(namespace, name): identity}

    return entries
