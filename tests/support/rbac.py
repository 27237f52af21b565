"""The Kubernetes permissions the webhook needs, exactly; the deploy manifests are checked against this."""

from __future__ import annotations

from typing import Final

# ClusterRole: the ServiceAccount cache lists and watches every namespace, and a cache miss
# inside --service-account-lookup-grace-period reads one ServiceAccount.
SERVICE_ACCOUNT_RULES: Final = (
    {"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["get", "list", "watch"]},
)
# Role in --namespace, only with --watch-config-map: the pod-identity-webhook ConfigMap.
CONFIG_MAP_RULES: Final = (
    {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list", "watch"]},
)

REQUIRED_RBAC: Final = {
    "ClusterRole": SERVICE_ACCOUNT_RULES,
    "Role": CONFIG_MAP_RULES,  # in the webhook's own namespace, when ConfigMap mode is on
}
