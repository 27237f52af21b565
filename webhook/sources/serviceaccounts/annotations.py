"""Turning a ServiceAccount's annotations into its identity, once, as it arrives."""

from __future__ import annotations

from collections.abc import Mapping

from webhook.mutation.identity import (
    IdentityDefaults,
    ServiceAccountIdentity,
    identity_from_annotations,
)


def identity_of_service_account(
    namespace: str, name: str, annotations: Mapping[str, str], defaults: IdentityDefaults
) -> ServiceAccountIdentity:
    prefix = defaults.annotation_prefix + "/"
    if not any(key.startswith(prefix) for key in annotations):
        return no_identity(defaults)
    return identity_from_annotations(
        annotations, defaults, source=f"ServiceAccount {namespace}/{name}"
    )


_shared: dict[IdentityDefaults, ServiceAccountIdentity] = {}


def no_identity(defaults: IdentityDefaults) -> ServiceAccountIdentity:
    """One shared entry for every ServiceAccount without our annotations: most of a big cluster."""
    found = _shared.get(defaults)
    if found is None:
        found = identity_from_annotations({}, defaults, source="")
        _shared[defaults] = found
    return found
