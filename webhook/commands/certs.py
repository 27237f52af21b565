"""`certs`: a CA and a serving certificate for the webhook, and the caBundle to register it."""

from __future__ import annotations

import argparse
import base64
import ipaddress
import os
import sys
from pathlib import Path
from typing import Any

import yaml

from webhook.certs import issue, service_dns_names
from webhook.flags.values import integer

HELP = """generate a CA and a serving certificate for the webhook Service

Write ca.crt, tls.crt and tls.key (mode 0600) for SERVICE.NAMESPACE.svc and the other Service
DNS names, print the base64 caBundle, and optionally write it into a
MutatingWebhookConfiguration manifest.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out", type=Path, default=Path("certs"), help="output directory (default certs/)"
    )
    parser.add_argument(
        "--service",
        default="pod-identity-webhook",
        help="Service name (default pod-identity-webhook)",
    )
    parser.add_argument(
        "--namespace",
        default="pod-identity-webhook",
        help="Service namespace (default pod-identity-webhook)",
    )
    parser.add_argument("--dns", action="append", default=[], help="extra DNS name (repeatable)")
    parser.add_argument("--ip", action="append", default=[], help="extra IP address (repeatable)")
    parser.add_argument(
        "--days",
        type=integer,
        default=365,
        help="serving certificate validity in days (default 365)",
    )
    parser.add_argument(
        "--ca-days", type=integer, default=3650, help="CA validity in days (default 3650)"
    )
    parser.add_argument(
        "--key-algorithm",
        choices=("ecdsa", "rsa"),
        default="ecdsa",
        help="ECDSA P-256 (default) or RSA 2048",
    )
    parser.add_argument("--force", action="store_true", help="overwrite existing keys")
    parser.add_argument(
        "--patch-manifest",
        type=Path,
        help="YAML file holding a MutatingWebhookConfiguration: set every webhook's clientConfig.caBundle",
    )


def fail(message: str) -> int:
    print(f"pod-identity-webhook certs: {message}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    if args.days <= 0 or args.ca_days < args.days:
        return fail(f"--days={args.days} --ca-days={args.ca_days}: expected 0 < days <= ca-days")
    for ip in args.ip:
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            return fail(f"--ip={ip!r} is not an IP address")
    out: Path = args.out
    targets = [out / "ca.crt", out / "ca.key", out / "tls.crt", out / "tls.key"]
    existing = [str(path) for path in targets if path.exists()]
    if existing and not args.force:
        return fail(f"refusing to overwrite {', '.join(existing)}; pass --force to replace them")
    manifest: list[Any] | None = None
    if args.patch_manifest is not None:
        try:
            manifest = list(yaml.safe_load_all(args.patch_manifest.read_text()))
        except (OSError, yaml.YAMLError) as exc:
            return fail(f"--patch-manifest {args.patch_manifest}: {exc}")
        problem = _manifest_problem(manifest)
        if problem:
            return fail(f"--patch-manifest {args.patch_manifest}: {problem}")
    pem = issue(
        common_name=f"{args.service}.{args.namespace}.svc",
        dns_names=service_dns_names(args.service, args.namespace) + list(args.dns),
        ip_addresses=list(args.ip),
        days=args.days,
        ca_days=args.ca_days,
        algorithm=args.key_algorithm,
    )
    out.mkdir(parents=True, exist_ok=True)
    for path, data, mode in (
        (out / "ca.crt", pem.ca_cert, 0o644),
        (out / "ca.key", pem.ca_key, 0o600),
        (out / "tls.crt", pem.cert, 0o644),
        (out / "tls.key", pem.key, 0o600),
    ):
        write_file(path, data, mode)
    bundle = base64.b64encode(pem.ca_cert).decode("ascii")
    if manifest is not None:
        for doc in manifest:
            if _is_webhook_config(doc):
                for webhook in doc["webhooks"]:
                    webhook.setdefault("clientConfig", {})["caBundle"] = bundle
        args.patch_manifest.write_text(yaml.safe_dump_all(manifest, sort_keys=False))
        print(f"wrote caBundle into {args.patch_manifest}", file=sys.stderr)
    print(f"wrote {', '.join(str(p) for p in targets)}", file=sys.stderr)
    print(bundle)
    return 0


def _manifest_problem(manifest: list[Any]) -> str:
    """Why the caBundle cannot be written into this manifest, or "" when it can."""
    configs = [doc for doc in manifest if _is_webhook_config(doc)]
    if not configs:
        return "no MutatingWebhookConfiguration in it"
    for doc in configs:
        name = (doc.get("metadata") or {}).get("name", "?")
        webhooks = doc.get("webhooks")
        if not isinstance(webhooks, list) or not webhooks:
            return f"MutatingWebhookConfiguration {name}: webhooks must be a non-empty list"
        for index, webhook in enumerate(webhooks):
            if not isinstance(webhook, dict):
                return f"MutatingWebhookConfiguration {name}: webhooks[{index}] is not a mapping"
            client = webhook.get("clientConfig", {})
            if not isinstance(client, dict):
                return (
                    f"MutatingWebhookConfiguration {name}: webhooks[{index}].clientConfig "
                    "is not a mapping"
                )
    return ""


def _is_webhook_config(doc: Any) -> bool:
    return isinstance(doc, dict) and doc.get("kind") == "MutatingWebhookConfiguration"


def write_file(path: Path, data: bytes, mode: int) -> None:
    # create with the final mode so a key is never readable by others, even briefly
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)
