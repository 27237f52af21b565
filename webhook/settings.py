"""Every flag and default, parsed once into one frozen Settings shared by all subcommands.

Flag names and defaults follow the upstream Go webhook so an operator can swap the image
without touching the container args. Attribute names are the flag with underscores.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

DEFAULT_ANNOTATION_PREFIX = "eks.amazonaws.com"
DEFAULT_TOKEN_AUDIENCE = "sts.amazonaws.com"
DEFAULT_TOKEN_MOUNT_PATH = "/var/run/secrets/eks.amazonaws.com/serviceaccount"
DEFAULT_TOKEN_EXPIRATION_SECONDS = 86400
MIN_TOKEN_EXPIRATION_SECONDS = 600  # kube-apiserver refuses shorter projected tokens
JITTER_MIN_TOKEN_EXPIRATION_SECONDS = 79200  # upstream jitters 86400 into [79200, 86400]
DEFAULT_CC_AUDIENCE = "pods.eks.amazonaws.com"
DEFAULT_CC_MOUNT_PATH = "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount"
DEFAULT_CC_VOLUME_NAME = "eks-pod-identity-token"
DEFAULT_CC_TOKEN_PATH = "eks-pod-identity-token"
DEFAULT_CC_FULL_URI = "http://169.254.170.23/v1/credentials"
DEFAULT_FARGATE_SCHEDULER_NAME = "fargate-scheduler"
# 6 MiB: kube-apiserver caps a request at 3 MiB of object (etcd's default limit is 1.5 MiB
# per value), and the AdmissionReview envelope around it adds well under 3 MiB more.
DEFAULT_MAX_REQUEST_BYTES = 6 * 1024 * 1024
TLS_VERSIONS = ("1.2", "1.3")
# upstream's --tls-min-version spellings (pkg/validation.go ValidateTLSMinVersion). 1.0 and 1.1 are
# accepted so upstream's args still start, but the floor stays TLS 1.2 (see docs/upstream.md).
TLS_VERSION_SPELLINGS = {
    "1.0": "1.0",
    "VersionTLS10": "1.0",
    "1.1": "1.1",
    "VersionTLS11": "1.1",
    "1.2": "1.2",
    "VersionTLS12": "1.2",
    "1.3": "1.3",
    "VersionTLS13": "1.3",
}
DEFAULT_SERVICE_NAME = "pod-identity-webhook"
DEFAULT_TLS_SECRET = "pod-identity-webhook"
# klog's convention: V(4) is debug detail; upstream logs its per-request details at V(4)-V(5).
KLOG_DEBUG_VERBOSITY = 4
KLOG_BOOL_FLAGS = (
    "--logtostderr",
    "--alsologtostderr",
    "--add_dir_header",
    "--skip_headers",
    "--skip_log_headers",
    "--one_output",
    "--legacy_stderr_threshold_behavior",
)
KLOG_VALUE_FLAGS = (
    "--log_dir",
    "--log_file",
    "--log_file_max_size",
    "--log_backtrace_at",
    "--stderrthreshold",
    "--vmodule",
    "--alsologtostderrthreshold",
)
# Half of kube-apiserver's default webhook timeout (10s): an answer always arrives in time.
DEFAULT_REQUEST_TIME_BUDGET_SECONDS = 5.0
# Bounds on what a client controls; docs/production.md ("Bounds") gives the memory arithmetic
# that keeps one replica under its 256 Mi limit with these defaults.
DEFAULT_MAX_CONNECTIONS = 512
DEFAULT_MAX_CONCURRENT_REQUESTS = 64
DEFAULT_MAX_INFLIGHT_REQUEST_BYTES = 8 * 1024 * 1024
DEFAULT_MAX_PIPELINED_REQUESTS = 2
DEFAULT_MAX_HEADER_BYTES = 32 * 1024
DEFAULT_MAX_HEADER_COUNT = 100
DEFAULT_TLS_HANDSHAKE_TIMEOUT_SECONDS = 10.0
DEFAULT_REQUEST_READ_TIMEOUT_SECONDS = 30.0
DEFAULT_KEEP_ALIVE_TIMEOUT_SECONDS = 30.0


class SettingsError(ValueError):
    """A flag value that cannot be used: names the flag, the value and the accepted form."""

    def __init__(self, flag: str, value: object, expected: str) -> None:
        self.flag = flag
        self.value = value
        self.expected = expected
        super().__init__(f"{flag}={value!r} is invalid: expected {expected}")


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_DURATION_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}


def parse_duration(text: str) -> float:
    """Seconds from a Go-style duration ("500ms", "1m30s", "60s") or a bare number of seconds."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    pos = 0
    total = 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text:
        raise ValueError(f"not a duration: {text!r} (expected e.g. 500ms, 60s, 1m30s)")
    return total


def parse_bool(text: str) -> bool:
    """Booleans as Go's strconv.ParseBool reads them."""
    if text in ("1", "t", "T", "true", "TRUE", "True"):
        return True
    if text in ("0", "f", "F", "false", "FALSE", "False"):
        return False
    raise ValueError(f"not a boolean: {text!r} (expected true or false)")


@dataclass(frozen=True, slots=True)
class Settings:
    # identity mutation
    annotation_prefix: str = DEFAULT_ANNOTATION_PREFIX
    token_audience: str = DEFAULT_TOKEN_AUDIENCE
    token_mount_path: str = DEFAULT_TOKEN_MOUNT_PATH
    token_expiration: int = DEFAULT_TOKEN_EXPIRATION_SECONDS
    aws_default_region: str = ""
    sts_regional_endpoint: bool = False
    # sources of identities
    service_accounts_file: Path | None = None
    kubeconfig: Path | None = None
    kube_api: str = ""
    namespace: str = "eks"
    watch_config_map: bool = False
    resync_period: float = 60.0
    service_account_lookup_grace_period: float = 0.0
    compose_role_arn: bool = False
    aws_account_id: str = ""
    aws_partition: str = "aws"
    # EKS Pod Identity (container credentials)
    watch_container_credentials_config: Path | None = None
    container_credentials_audience: str = DEFAULT_CC_AUDIENCE
    container_credentials_token_mount_path: str = DEFAULT_CC_MOUNT_PATH
    container_credentials_token_volume_name: str = DEFAULT_CC_VOLUME_NAME
    container_credentials_token_path: str = DEFAULT_CC_TOKEN_PATH
    container_credentials_full_uri: str = DEFAULT_CC_FULL_URI
    # Fargate
    fargate_profiles: Path | None = None
    fargate_scheduler_name: str = DEFAULT_FARGATE_SCHEDULER_NAME
    # server
    bind_address: str = ""  # all interfaces, IPv6 and IPv4, as upstream's ":443"
    port: int = 443
    metrics_port: int = 9999
    tls_cert: Path = Path("/etc/webhook/certs/tls.crt")
    tls_key: Path = Path("/etc/webhook/certs/tls.key")
    tls_min_version: str = "1.2"
    tls_cipher_suites: tuple[str, ...] = ()
    client_ca_file: Path | None = None
    enable_debugging_handlers: bool = False
    shutdown_grace_period: float = 10.0
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    request_time_budget: float = DEFAULT_REQUEST_TIME_BUDGET_SECONDS
    log_format: str = "text"
    log_level: str = "info"
    # upstream's in-cluster certificate flags: accepted, replaced by --tls-cert/--tls-key
    in_cluster: bool = True
    service_name: str = DEFAULT_SERVICE_NAME
    tls_secret: str = DEFAULT_TLS_SECRET
    # bounds on what a client controls (docs/production.md, "Bounds")
    metrics_bind_address: str = ""  # "": the same as --bind-address
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    max_concurrent_requests: int = DEFAULT_MAX_CONCURRENT_REQUESTS
    max_inflight_request_bytes: int = DEFAULT_MAX_INFLIGHT_REQUEST_BYTES
    max_pipelined_requests: int = DEFAULT_MAX_PIPELINED_REQUESTS
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES
    max_header_count: int = DEFAULT_MAX_HEADER_COUNT
    tls_handshake_timeout: float = DEFAULT_TLS_HANDSHAKE_TIMEOUT_SECONDS
    request_read_timeout: float = DEFAULT_REQUEST_READ_TIMEOUT_SECONDS
    keep_alive_timeout: float = DEFAULT_KEEP_ALIVE_TIMEOUT_SECONDS


def _bool_flag(parser: argparse._ActionsContainer, flag: str, help_text: str) -> None:
    # Go's pflag accepts both `--flag` and `--flag=false`; so do we.
    parser.add_argument(flag, nargs="?", const=True, default=None, type=parse_bool, help=help_text)


def _duration_flag(parser: argparse._ActionsContainer, flag: str, help_text: str) -> None:
    parser.add_argument(flag, default=None, type=parse_duration, help=help_text)


def add_mutation_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags that decide what a pod's patch is; shared by `serve` and `mutate`."""
    d = Settings()
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
        type=int,
        help=f"default token lifetime in seconds, at least {MIN_TOKEN_EXPIRATION_SECONDS} (default {d.token_expiration})",
    )
    g.add_argument(
        "--aws-default-region",
        help="if set, AWS_DEFAULT_REGION and AWS_REGION are set to this in mutated containers",
    )
    _bool_flag(
        g,
        "--sts-regional-endpoint",
        "inject AWS_STS_REGIONAL_ENDPOINTS=regional; the SA annotation overrides it (default false)",
    )
    g.add_argument(
        "--service-accounts-file",
        type=Path,
        help="read ServiceAccounts from this YAML file (object, multi-document stream or v1 List) "
        "instead of the cluster; reloaded when it changes",
    )
    g.add_argument(
        "--watch-container-credentials-config",
        type=Path,
        help='JSON file {"identities":[{"namespace":..,"serviceAccount":..}]} of ServiceAccounts '
        "that use EKS Pod Identity (container credentials); reloaded when it changes",
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
    _bool_flag(
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
    f = parser.add_argument_group("Fargate")
    f.add_argument(
        "--fargate-profiles",
        type=Path,
        help="YAML list of Fargate profiles (as `eksctl get fargateprofile -o yaml` prints); "
        "reloaded when it changes",
    )
    f.add_argument(
        "--fargate-scheduler-name",
        help=f"schedulerName given to pods that match a profile (default {d.fargate_scheduler_name})",
    )


def add_server_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of the long-running server only."""
    d = Settings()
    g = parser.add_argument_group("server")
    g.add_argument(
        "--bind-address",
        help="address to listen on (default: every interface, IPv6 and IPv4 on one dual-stack "
        "socket where the host has IPv6, else IPv4, as upstream's :PORT)",
    )
    g.add_argument("--port", type=int, help=f"HTTPS port of the webhook (default {d.port})")
    g.add_argument(
        "--metrics-port",
        type=int,
        help=f"plain HTTP port for /metrics, /healthz and /readyz (default {d.metrics_port})",
    )
    g.add_argument("--tls-cert", type=Path, help=f"serving certificate, PEM (default {d.tls_cert})")
    g.add_argument("--tls-key", type=Path, help=f"serving key, PEM (default {d.tls_key})")
    g.add_argument(
        "--tls-min-version",
        help="minimum TLS version: 1.2 or 1.3, also spelled VersionTLS12 or VersionTLS13; "
        "upstream's 1.0, 1.1, VersionTLS10 and VersionTLS11 are accepted and mean 1.2 "
        f"(default {d.tls_min_version})",
    )
    g.add_argument(
        "--tls-cipher-suites",
        help="comma-separated TLS 1.2 cipher suites by their Go/IANA names (default: Python's secure set)",
    )
    g.add_argument(
        "--client-ca-file",
        type=Path,
        help="require webhook clients (kube-apiserver) to present a certificate signed by this CA",
    )
    g.add_argument(
        "--shutdown-grace-period",
        default=None,
        type=parse_duration,
        help="on SIGTERM, time given to in-flight requests before exit (default 10s)",
    )
    g.add_argument(
        "--max-request-bytes",
        type=int,
        help=f"largest AdmissionReview body accepted (default {d.max_request_bytes})",
    )
    _duration_flag(
        g,
        "--request-time-budget",
        "longest time for one admission, body included: a body still arriving gets 408, a "
        "decision still running lets the pod through unchanged with a warning (default 5s; "
        "keep it under the webhook's timeoutSeconds)",
    )
    k = parser.add_argument_group("cluster")
    k.add_argument("--kubeconfig", type=Path, help="(out-of-cluster) path to a kubeconfig file")
    k.add_argument("--kube-api", help="(out-of-cluster) URL of the API server")
    k.add_argument(
        "--namespace",
        help=f"namespace of the webhook and of its ConfigMap (default {d.namespace})",
    )
    _bool_flag(
        k,
        "--watch-config-map",
        "also read identities from ConfigMap pod-identity-webhook in --namespace",
    )
    _duration_flag(
        k,
        "--resync-period",
        "upstream's informer resync: sends no API request; readiness fails once the watch "
        "has failed for 3 periods (default 60s)",
    )
    _duration_flag(
        k,
        "--service-account-lookup-grace-period",
        "on a cache miss, wait up to this long for the ServiceAccount (default 0: do not wait)",
    )
    _bool_flag(
        k,
        "--enable-debugging-handlers",
        "serve GET /debug/alpha/cache on the metrics port",
    )
    o = parser.add_argument_group("logging")
    o.add_argument("--log-format", choices=("text", "json"), help="log line format (default text)")
    o.add_argument(
        "--log-level",
        choices=("debug", "info", "warning", "error"),
        help="log level (default info)",
    )
    o.add_argument(
        "-v",
        "--v",
        dest="verbosity",
        nargs="?",
        const=KLOG_DEBUG_VERBOSITY,
        type=int,
        help=f"upstream's klog verbosity: {KLOG_DEBUG_VERBOSITY} or more (or a bare -v) "
        "is --log-level debug, less is info",
    )
    k = parser.add_argument_group(
        "upstream's klog flags, accepted so upstream's manifests run unchanged; "
        "logs always go to stderr"
    )
    for flag in KLOG_BOOL_FLAGS:
        _bool_flag(k, flag, "ignored")
    for flag in KLOG_VALUE_FLAGS:
        k.add_argument(flag, metavar="VALUE", help="ignored")
    u = parser.add_argument_group(
        "upstream's in-cluster certificate flags (a CertificateSigningRequest per start, which "
        "upstream marks deprecated): accepted, the certificate comes from --tls-cert/--tls-key"
    )
    _bool_flag(
        u,
        "--in-cluster",
        "true (upstream's default) or false: both serve --tls-cert/--tls-key; with true and "
        "no readable pair, start-up stops and says what to mount instead",
    )
    u.add_argument("--service-name", help=f"not used (default {d.service_name})")
    u.add_argument("--tls-secret", help=f"not used (default {d.tls_secret})")
    _bool_flag(u, "--version", "print the version and exit, as upstream's --version")
    add_bounds_arguments(parser)


def add_bounds_arguments(parser: argparse.ArgumentParser) -> None:
    """Caps on what a client controls (docs/production.md, "Bounds")."""
    d = Settings()
    b = parser.add_argument_group("bounds on what clients control")
    b.add_argument(
        "--metrics-bind-address",
        help="address of the metrics port (/metrics, /healthz, /readyz and, with "
        "--enable-debugging-handlers, /debug/alpha/cache); default: --bind-address. Set it to the "
        "pod IP or 127.0.0.1 and allow the port only to Prometheus with a NetworkPolicy",
    )
    b.add_argument(
        "--max-connections",
        type=int,
        help="open webhook connections, TLS handshakes included; further ones are closed at "
        f"accept, before any TLS (default {d.max_connections}; needs as many file descriptors)",
    )
    b.add_argument(
        "--max-concurrent-requests",
        type=int,
        help="requests being answered at once; more wait, unread, for a slot "
        f"(default {d.max_concurrent_requests})",
    )
    b.add_argument(
        "--max-inflight-request-bytes",
        type=int,
        help="request bodies being answered at once, in bytes by Content-Length; more wait, "
        f"unread, for room; one request always runs (default {d.max_inflight_request_bytes})",
    )
    b.add_argument(
        "--max-pipelined-requests",
        type=int,
        help="requests read ahead on one connection while an earlier one is answered; past it "
        f"the connection is not read (default {d.max_pipelined_requests})",
    )
    b.add_argument(
        "--max-header-bytes",
        type=int,
        help=f"request line and headers of one request; more gets 431 (default {d.max_header_bytes})",
    )
    b.add_argument(
        "--max-header-count",
        type=int,
        help=f"headers in one request; more gets 431 (default {d.max_header_count})",
    )
    _duration_flag(
        b,
        "--tls-handshake-timeout",
        "a connection that has not finished its TLS handshake by then is closed (default 10s)",
    )
    _duration_flag(
        b,
        "--request-read-timeout",
        "a connection that has not sent a complete request this long after it opened or its "
        "request began is closed (default 30s)",
    )
    _duration_flag(
        b,
        "--keep-alive-timeout",
        "an idle keep-alive connection is closed after this (default 30s)",
    )


def _validate_bounds(s: Settings) -> None:
    for flag, count, least in (
        ("--max-connections", s.max_connections, 1),
        ("--max-concurrent-requests", s.max_concurrent_requests, 1),
        ("--max-inflight-request-bytes", s.max_inflight_request_bytes, 1024),
        ("--max-pipelined-requests", s.max_pipelined_requests, 0),
        ("--max-header-bytes", s.max_header_bytes, 1024),
        ("--max-header-count", s.max_header_count, 1),
    ):
        if count < least:
            raise SettingsError(flag, count, f"at least {least}")
    for flag, seconds in (
        ("--tls-handshake-timeout", s.tls_handshake_timeout),
        ("--request-read-timeout", s.request_read_timeout),
        ("--keep-alive-timeout", s.keep_alive_timeout),
    ):
        if seconds <= 0:
            raise SettingsError(flag, seconds, "a positive duration")


def _validate(s: Settings) -> None:
    if not s.annotation_prefix or "/" in s.annotation_prefix:
        raise SettingsError(
            "--annotation-prefix", s.annotation_prefix, "a DNS domain such as eks.amazonaws.com"
        )
    if not s.token_mount_path.startswith("/"):
        raise SettingsError("--token-mount-path", s.token_mount_path, "an absolute path")
    if not s.container_credentials_token_mount_path.startswith("/"):
        raise SettingsError(
            "--container-credentials-token-mount-path",
            s.container_credentials_token_mount_path,
            "an absolute path",
        )
    for flag, port in (("--port", s.port), ("--metrics-port", s.metrics_port)):
        if not 0 <= port <= 65535:
            raise SettingsError(flag, port, "a TCP port from 0 to 65535")
    if s.tls_min_version not in TLS_VERSIONS:
        raise SettingsError(
            "--tls-min-version",
            s.tls_min_version,
            "one of " + ", ".join(TLS_VERSION_SPELLINGS),
        )
    if s.max_request_bytes < 1024:
        raise SettingsError("--max-request-bytes", s.max_request_bytes, "at least 1024")
    if s.request_time_budget <= 0:
        raise SettingsError("--request-time-budget", s.request_time_budget, "a positive duration")
    for flag, seconds in (
        ("--resync-period", s.resync_period),
        ("--service-account-lookup-grace-period", s.service_account_lookup_grace_period),
        ("--shutdown-grace-period", s.shutdown_grace_period),
    ):
        if seconds < 0:
            raise SettingsError(flag, seconds, "a duration of zero or more")
    _validate_bounds(s)


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
    _validate(settings)
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
