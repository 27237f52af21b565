"""Flags of the long-running server: listening, cluster, logging, upstream's own, and bounds."""

from __future__ import annotations

import argparse
from pathlib import Path

from webhook.flags.settings import Settings
from webhook.flags.shared import KLOG_DEBUG_VERBOSITY
from webhook.flags.values import bool_flag, duration_flag, integer, size_flag

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


def add_server_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of the long-running server only."""
    # upstream's --version; in the options group beside --help, as it stops like --help does
    bool_flag(parser, "--version", "print the version and exit, as upstream's --version")
    _add_listening_arguments(parser)
    _add_metrics_arguments(parser)
    _add_cluster_arguments(parser)
    _add_logging_arguments(parser)
    _add_upstream_arguments(parser)
    add_bounds_arguments(parser)


def _add_listening_arguments(parser: argparse.ArgumentParser) -> None:
    d = Settings()
    g = parser.add_argument_group("server")
    g.add_argument(
        "--bind-address",
        help="address to listen on (default: every interface, IPv6 and IPv4 on one dual-stack "
        "socket where the host has IPv6, else IPv4, as upstream's :PORT)",
    )
    g.add_argument("--port", type=integer, help=f"HTTPS port of the webhook (default {d.port})")
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
    duration_flag(
        g,
        "--shutdown-grace-period",
        "on SIGTERM, time given to in-flight requests before exit (default 10s)",
    )
    size_flag(
        g,
        "--max-request-bytes",
        f"largest AdmissionReview body accepted, in bytes or with a unit such as 6Mi or 6MiB "
        f"(default {d.max_request_bytes}, 6 MiB)",
    )
    duration_flag(
        g,
        "--request-time-budget",
        "longest time for one admission, body included: a body still arriving gets 408, a "
        "decision still running lets the pod through unchanged with a warning (default 5s; "
        "keep it under the webhook's timeoutSeconds)",
    )


def _add_metrics_arguments(parser: argparse.ArgumentParser) -> None:
    d = Settings()
    m = parser.add_argument_group("metrics, health and debugging (plain HTTP)")
    m.add_argument(
        "--metrics-port",
        type=integer,
        help=f"plain HTTP port for /metrics, /healthz and /readyz (default {d.metrics_port})",
    )
    m.add_argument(
        "--metrics-bind-address",
        help="address of the metrics port (/metrics, /healthz, /readyz and, with "
        "--enable-debugging-handlers, /debug/alpha/cache); default: --bind-address. Set it to the "
        "pod IP or 127.0.0.1 and allow the port only to Prometheus with a NetworkPolicy",
    )
    bool_flag(
        m,
        "--enable-debugging-handlers",
        "serve GET /debug/alpha/cache on the metrics port: every cached ServiceAccount's role "
        "ARN, to anyone who reaches that port (see --metrics-bind-address); off unless given",
    )


def _add_cluster_arguments(parser: argparse.ArgumentParser) -> None:
    d = Settings()
    k = parser.add_argument_group("cluster")
    k.add_argument("--kubeconfig", type=Path, help="(out-of-cluster) path to a kubeconfig file")
    k.add_argument("--kube-api", help="(out-of-cluster) URL of the API server")
    k.add_argument(
        "--namespace",
        help=f"namespace of the webhook and of its ConfigMap (default {d.namespace})",
    )
    bool_flag(
        k,
        "--watch-config-map",
        "also read identities from ConfigMap pod-identity-webhook in --namespace",
    )
    duration_flag(
        k,
        "--resync-period",
        "upstream's informer resync: sends no API request; readiness fails once the watch "
        "has failed for 3 periods (default 60s)",
    )
    duration_flag(
        k,
        "--service-account-lookup-grace-period",
        "on a cache miss, wait up to this long for the ServiceAccount (default 0: do not wait)",
    )
    k.add_argument(
        "--require-identity-label",
        metavar="KEY=VALUE",
        help="strict mode: a pod carrying this label is refused (allowed: false, with the reason "
        "and the fix) when it gets no identity: ServiceAccount not found after the grace period, "
        "no role, too many containers, or over the time budget (default: off, such pods are "
        "allowed unchanged; manifests/components/strict sets it)",
    )


def _add_logging_arguments(parser: argparse.ArgumentParser) -> None:
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
        type=integer,
        help=f"upstream's klog verbosity: {KLOG_DEBUG_VERBOSITY} or more (or a bare -v) "
        "is --log-level debug, less is info",
    )


def _add_upstream_arguments(parser: argparse.ArgumentParser) -> None:
    """Upstream's klog and in-cluster certificate flags: accepted so its manifests run unchanged."""
    d = Settings()
    k = parser.add_argument_group(
        "upstream's klog flags, accepted so upstream's manifests run unchanged; "
        "logs always go to stderr"
    )
    for flag in KLOG_BOOL_FLAGS:
        bool_flag(k, flag, "ignored")
    for flag in KLOG_VALUE_FLAGS:
        k.add_argument(flag, metavar="VALUE", help="ignored")
    u = parser.add_argument_group(
        "upstream's in-cluster certificate flags (a CertificateSigningRequest per start, which "
        "upstream marks deprecated): accepted, the certificate comes from --tls-cert/--tls-key"
    )
    bool_flag(
        u,
        "--in-cluster",
        "true (upstream's default) or false: both serve --tls-cert/--tls-key; with true and "
        "no readable pair, start-up stops and says what to mount instead",
    )
    u.add_argument("--service-name", help=f"not used (default {d.service_name})")
    u.add_argument("--tls-secret", help=f"not used (default {d.tls_secret})")


def add_bounds_arguments(parser: argparse.ArgumentParser) -> None:
    """Caps on what a client controls (docs/production.md, "Bounds")."""
    d = Settings()
    b = parser.add_argument_group("bounds on what clients control")
    b.add_argument(
        "--max-connections",
        type=integer,
        help="open webhook connections, TLS handshakes included; further ones are closed at "
        f"accept, before any TLS (default {d.max_connections}; needs as many file descriptors)",
    )
    b.add_argument(
        "--max-concurrent-requests",
        type=integer,
        help="requests being answered at once; more wait, unread, for a slot "
        f"(default {d.max_concurrent_requests})",
    )
    size_flag(
        b,
        "--max-inflight-request-bytes",
        "request bodies being answered at once, by Content-Length, in bytes or with a unit "
        "such as 8Mi; more wait, unread, for room; one request always runs "
        f"(default {d.max_inflight_request_bytes}, 8 MiB)",
    )
    b.add_argument(
        "--max-pipelined-requests",
        type=integer,
        help="requests read ahead on one connection while an earlier one is answered; past it "
        f"the connection is not read (default {d.max_pipelined_requests})",
    )
    size_flag(
        b,
        "--max-header-bytes",
        "request line and headers of one request, in bytes or with a unit such as 32Ki; more "
        f"gets 431 (default {d.max_header_bytes}, 32 KiB)",
    )
    b.add_argument(
        "--max-header-count",
        type=integer,
        help=f"headers in one request; more gets 431 (default {d.max_header_count})",
    )
    duration_flag(
        b,
        "--tls-handshake-timeout",
        "a connection that has not finished its TLS handshake by then is closed (default 10s)",
    )
    duration_flag(
        b,
        "--request-read-timeout",
        "a connection that has not sent a complete request this long after it opened or its "
        "request began is closed (default 30s)",
    )
    duration_flag(
        b,
        "--keep-alive-timeout",
        "an idle keep-alive connection is closed after this (default 30s)",
    )
