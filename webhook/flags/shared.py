"""The command line: the flags `serve`, `mutate` and `doctor` share, and Settings from the args.

The server's own flags are in serving.py, Go-style values in values.py; this module imports
nothing from serving.py.

Flag names follow the upstream Go webhook (and accept its klog flags) so an operator can swap the
image without touching the container args. Defaults live on Settings; a flag not given keeps it.
"""

from __future__ import annotations

import argparse
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

from webhook.flags.settings import TLS_VERSION_SPELLINGS, Settings, validate
from webhook.flags.values import bool_flag, integer
from webhook.mutation.defaults import MIN_TOKEN_EXPIRATION_SECONDS

# klog's convention: V(4) is debug detail; upstream logs its per-request details at V(4)-V(5).
# Read by settings_from_args here; serve's -v flag (serving.py) defaults a bare -v to it.
KLOG_DEBUG_VERBOSITY = 4


def add_mutation_arguments(parser: argparse.ArgumentParser, *, serving: bool = False) -> None:
    """Flags that decide what a pod's patch is; shared by `serve`, `mutate` and `doctor`.

    `serving`: the long-running server, which reloads the files these flags name when they
    change and reads ServiceAccounts from the cluster unless given a file; the offline commands
    read each file once."""
    d = Settings()
    reloaded = "; reloaded when it changes" if serving else ""
    g = parser.add_argument_group("identity mutation")
    g.add_argument(
        "--annotation-prefix",
        help=f"ServiceAccount/pod annotation domain (default {d.annotation_prefix})",
    )
    g.add_argument(
        "--token-audience",
        help=f"default audience of the projected token; the SA annotation overrides it (default {d.token_audience})",
    )
    g.add_argument(
        "--token-mount-path",
        help=f"where the token volume is mounted (default {d.token_mount_path})",
    )
    g.add_argument(
        "--token-expiration",
        type=integer,
        help=f"default token lifetime in seconds, at least {MIN_TOKEN_EXPIRATION_SECONDS} (default {d.token_expiration})",
    )
    g.add_argument(
        "--aws-default-region",
        help="if set, AWS_DEFAULT_REGION and AWS_REGION are set to this in mutated containers",
    )
    bool_flag(
        g,
        "--sts-regional-endpoint",
        "inject AWS_STS_REGIONAL_ENDPOINTS=regional; the SA annotation overrides it (default false)",
    )
    g.add_argument(
        "--sts-endpoint-url",
        help="inject AWS_ENDPOINT_URL_STS=URL into IRSA pods (e.g. a test STS); the SA annotation "
        "sts-endpoint-url overrides it. https, or http to localhost, 127.0.0.0/8, ::1, *.svc, "
        "*.svc.cluster.local, *.cluster.local (default none)",
    )
    g.add_argument(
        "--service-accounts-file",
        type=Path,
        help="read ServiceAccounts from this YAML file (object, multi-document stream or v1 List)"
        + (" instead of the cluster" + reloaded if serving else ""),
    )
    _add_container_credentials_arguments(g, reloaded)
    _add_role_composition_arguments(g)
    _add_fargate_arguments(parser, reloaded)


def _add_container_credentials_arguments(g: argparse._ArgumentGroup, reloaded: str) -> None:
    d = Settings()
    g.add_argument(
        "--watch-container-credentials-config",
        type=Path,
        help='JSON file {"identities":[{"namespace":..,"serviceAccount":..}]} of ServiceAccounts '
        "that use EKS Pod Identity (container credentials)" + reloaded,
    )
    g.add_argument(
        "--container-credentials-audience",
        help=f"audience of the container credentials token (default {d.container_credentials_audience})",
    )
    g.add_argument(
        "--container-credentials-token-mount-path",
        help=f"where the container credentials token is mounted (default {d.container_credentials_token_mount_path})",
    )
    g.add_argument(
        "--container-credentials-token-volume-name",
        help=f"name of the container credentials token volume (default {d.container_credentials_token_volume_name})",
    )
    g.add_argument(
        "--container-credentials-token-path",
        help=f"file name of the container credentials token (default {d.container_credentials_token_path})",
    )
    g.add_argument(
        "--container-credentials-full-uri",
        help=f"value of AWS_CONTAINER_CREDENTIALS_FULL_URI (default {d.container_credentials_full_uri})",
    )


def _add_role_composition_arguments(g: argparse._ArgumentGroup) -> None:
    bool_flag(
        g,
        "--compose-role-arn",
        "a role-arn annotation without 'arn:' is a role name/path completed with the account and partition",
    )
    g.add_argument(
        "--aws-account-id",
        help="account ID for --compose-role-arn (default: from EC2 instance metadata)",
    )
    g.add_argument(
        "--aws-partition",
        help="partition for --compose-role-arn (default: aws, or from EC2 instance metadata)",
    )


def _add_fargate_arguments(parser: argparse.ArgumentParser, reloaded: str) -> None:
    d = Settings()
    f = parser.add_argument_group("Fargate")
    f.add_argument(
        "--fargate-profiles",
        type=Path,
        help="YAML list of Fargate profiles (as `eksctl get fargateprofile -o yaml` prints)"
        + reloaded,
    )
    f.add_argument(
        "--fargate-scheduler-name",
        help=f"schedulerName given to pods that match a profile (default {d.fargate_scheduler_name})",
    )


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Build Settings from parsed arguments: flags not given keep the dataclass default."""
    given: dict[str, Any] = {}
    raw = vars(args)
    for field in fields(Settings):
        value = raw.get(field.name)
        if value is None:
            continue
        given[field.name] = value
    if isinstance(given.get("tls_cipher_suites"), str):
        given["tls_cipher_suites"] = tuple(
            part.strip() for part in given["tls_cipher_suites"].split(",") if part.strip()
        )
    verbosity = raw.get("verbosity") or 0
    if verbosity >= KLOG_DEBUG_VERBOSITY and "log_level" not in given:
        given["log_level"] = "debug"
    if given.get("tls_min_version") == "":
        del given["tls_min_version"]  # upstream's default: the TLS library's minimum
    spelled = TLS_VERSION_SPELLINGS.get(given.get("tls_min_version", ""))
    if spelled is not None:
        # TLS 1.0 and 1.1 mean our floor, 1.2; upstream_warnings says so at start-up
        given["tls_min_version"] = "1.2" if spelled in ("1.0", "1.1") else spelled
    settings = Settings(**given)
    if settings.token_expiration < MIN_TOKEN_EXPIRATION_SECONDS:
        # upstream (pkg/validation.go) raises any shorter value to the minimum
        settings = replace(settings, token_expiration=MIN_TOKEN_EXPIRATION_SECONDS)
    validate(settings)
    return settings


def upstream_warnings(args: argparse.Namespace) -> list[str]:
    """What upstream would do with these flags that we do differently: logged at start-up."""
    raw = vars(args)
    notes: list[str] = []
    version = raw.get("tls_min_version")
    if TLS_VERSION_SPELLINGS.get(version or "") in ("1.0", "1.1"):
        notes.append(
            f"--tls-min-version={version}: TLS 1.0 and 1.1 are insecure; the minimum is TLS 1.2 "
            "(kube-apiserver speaks 1.2 and 1.3)"
        )
    expiration = raw.get("token_expiration")
    if expiration is not None and expiration < MIN_TOKEN_EXPIRATION_SECONDS:
        notes.append(
            f"--token-expiration={expiration} is below kube-apiserver's minimum: "
            f"using {MIN_TOKEN_EXPIRATION_SECONDS} seconds, as upstream does"
        )
    if raw.get("in_cluster") is True:
        notes.append(
            "--in-cluster=true: serving --tls-cert/--tls-key; no CertificateSigningRequest is "
            "made and --service-name and --tls-secret are not used (docs/upstream.md)"
        )
    if raw.get("logtostderr") is False or raw.get("log_dir") or raw.get("log_file"):
        notes.append(
            "klog's file output (--logtostderr=false, --log_dir, --log_file) is not "
            "supported: logs go to stderr"
        )
    return notes
