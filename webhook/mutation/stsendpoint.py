"""Which STS endpoint URLs a pod may be pointed at (AWS_ENDPOINT_URL_STS), checked once per value.

The rules are in README ("STS endpoint"): an absolute https URL, or http only to a host whose
traffic never leaves the machine or the cluster network (loopback, and the cluster-local DNS
names of Services), because the SDK sends the pod's web identity token to that endpoint; no
user info, query or fragment (the SDKs would pass them on or choke on them); at most
MAX_STS_ENDPOINT_URL_CHARS characters.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

STS_ENDPOINT_ENV = "AWS_ENDPOINT_URL_STS"
# Far above any real endpoint (a Service DNS name is at most 253 characters), far below what
# would bloat every pod it is written into.
MAX_STS_ENDPOINT_URL_CHARS = 512
# Host names that resolve inside the cluster or the machine: plain http is allowed for them.
LOOPBACK_NAMES = ("localhost",)
CLUSTER_LOCAL_SUFFIXES = (".svc", ".svc.cluster.local", ".cluster.local")


def sts_endpoint_problem(value: str) -> str | None:
    """Why `value` cannot be AWS_ENDPOINT_URL_STS, or None when it can."""
    if len(value) > MAX_STS_ENDPOINT_URL_CHARS:
        return f"is longer than {MAX_STS_ENDPOINT_URL_CHARS} characters"
    if any(ch.isspace() or not ch.isprintable() or not ch.isascii() for ch in value):
        return "contains a space, a control or a non-ASCII character"
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as exc:
        return f"is not a URL ({exc})"
    if parts.scheme not in ("https", "http"):
        return "is not an absolute https URL"
    if "@" in parts.netloc:
        return "has user info (user@host); put no credentials in the URL"
    if "?" in value:
        return "has a query (?...)"
    if "#" in value:
        return "has a fragment (#...)"
    host = (parts.hostname or "").rstrip(".")
    if not host:
        return "has no host"
    if port == 0:
        return "has port 0"
    if parts.scheme == "http" and not is_local_host(host):
        return (
            "uses http to a host that is neither loopback nor cluster-local "
            "(localhost, 127.0.0.0/8, ::1, *.svc, *.svc.cluster.local, *.cluster.local); "
            "use https"
        )
    return None


def is_local_host(host: str) -> bool:
    """Loopback (localhost, 127.0.0.0/8, ::1) or a cluster-local DNS name."""
    host = host.lower().rstrip(".")
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        pass
    return host.endswith(CLUSTER_LOCAL_SUFFIXES)
