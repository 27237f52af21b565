"""The key of a namespaced object, "namespace/name", as client-go's MetaNamespaceKeyFunc writes
it: the ServiceAccount store, the cluster watches, the container-credentials list, the mutator
and doctor all key objects by it."""

from __future__ import annotations


def key_of(namespace: str, name: str) -> str:
    return f"{namespace}/{name}"
