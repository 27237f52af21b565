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
        return defaults.no_identity
    return identity_from_annotations(
        annotations, defaults, source=f"ServiceAccount {namespace}/{name}"
    )
