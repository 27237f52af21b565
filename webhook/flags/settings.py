"""Every option and its default, in one frozen Settings shared by all subcommands, validated once.

Defaults follow the upstream Go webhook so an operator can swap the image without touching the
container args; the identity defaults come from the core (webhook/mutation/defaults.py). Attribute
names are the flag with underscores; webhook/flags/shared.py and webhook/flags/serving.py parse the
command line into Settings.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from webhook.flags.values import parse_required_label
from webhook.mutation.defaults import (
    DEFAULT_ANNOTATION_PREFIX,
    DEFAULT_CC_AUDIENCE,
    DEFAULT_CC_FULL_URI,
    DEFAULT_CC_MOUNT_PATH,
    DEFAULT_CC_TOKEN_PATH,
    DEFAULT_CC_VOLUME_NAME,
    DEFAULT_FARGATE_SCHEDULER_NAME,
    DEFAULT_TOKEN_AUDIENCE,
    DEFAULT_TOKEN_EXPIRATION_SECONDS,
    DEFAULT_TOKEN_MOUNT_PATH,
)
from webhook.mutation.stsendpoint import sts_endpoint_problem

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


@dataclass(frozen=True, slots=True)
class Settings:
    # identity mutation
    annotation_prefix: str = DEFAULT_ANNOTATION_PREFIX
    token_audience: str = DEFAULT_TOKEN_AUDIENCE
    token_mount_path: str = DEFAULT_TOKEN_MOUNT_PATH
    token_expiration: int = DEFAULT_TOKEN_EXPIRATION_SECONDS
    aws_default_region: str = ""
    sts_regional_endpoint: bool = False
    sts_endpoint_url: str = ""  # AWS_ENDPOINT_URL_STS for IRSA pods; "" for none
    # sources of identities
    service_accounts_file: Path | None = None
    kubeconfig: Path | None = None
    kube_api: str = ""
    namespace: str = "eks"
    watch_config_map: bool = False
    resync_period: float = 60.0
    service_account_lookup_grace_period: float = 0.0
    # strict mode: "KEY=VALUE"; a pod with this label that gets no identity is refused
    require_identity_label: str = ""
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


def validate(s: Settings) -> None:
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
    if s.sts_endpoint_url:
        problem = sts_endpoint_problem(s.sts_endpoint_url)
        if problem:
            raise SettingsError(
                "--sts-endpoint-url",
                s.sts_endpoint_url,
                f"an absolute https URL, or http to a loopback or cluster-local host (it {problem})",
            )
    if s.require_identity_label:
        try:
            parse_required_label(s.require_identity_label)
        except ValueError:
            raise SettingsError(
                "--require-identity-label",
                s.require_identity_label,
                "KEY=VALUE, e.g. eks.amazonaws.com/pod-identity-webhook=enabled",
            ) from None
    _validate_bounds(s)
