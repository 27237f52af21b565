"""Look up a pod's identity in the sources and compute its patch: the one path every request takes."""

from __future__ import annotations

from enum import Enum
from random import Random
from typing import NamedTuple, Protocol

from webhook.mutation.identity import IdentityDefaults, ServiceAccountIdentity
from webhook.mutation.patch import build_identity_patch
from webhook.mutation.podidentity import ContainerCredentials, Mode, resolve_pod_identity
from webhook.settings import Settings
from webhook.sources.serviceaccounts.store import ServiceAccountStore, key_of
from webhook.types import JsonObject, PatchOp


class Outcome(Enum):
    MUTATED = "mutated"
    ALREADY_PRESENT = "already present"
    NO_ROLE = "no role"
    NOT_FOUND = "not found"


class IdentityLookup(Protocol):
    def get(self, namespace: str, name: str) -> ServiceAccountIdentity | None: ...


class MutationResult(NamedTuple):
    ops: list[PatchOp]
    warnings: tuple[str, ...]
    outcome: Outcome
    mode: Mode | None
    service_account: str
    # Pod annotations (without the prefix) whose value was ignored or adjusted.
    invalid_annotations: tuple[str, ...] = ()


def identity_defaults(
    settings: Settings, *, account_id: str = "", partition: str = ""
) -> IdentityDefaults:
    return IdentityDefaults(
        annotation_prefix=settings.annotation_prefix,
        audience=settings.token_audience,
        regional_sts=settings.sts_regional_endpoint,
        token_expiration=settings.token_expiration,
        compose_account_id=account_id,
        compose_partition=partition,
    )


def container_credentials_of(settings: Settings) -> ContainerCredentials:
    return ContainerCredentials(
        audience=settings.container_credentials_audience,
        mount_path=settings.container_credentials_token_mount_path,
        volume_name=settings.container_credentials_token_volume_name,
        token_path=settings.container_credentials_token_path,
        full_uri=settings.container_credentials_full_uri,
    )


class PodMutator:
    def __init__(
        self,
        settings: Settings,
        store: ServiceAccountStore,
        *,
        config_map: IdentityLookup | None = None,
        rng: Random | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.config_map = config_map
        self.container_credentials_keys: frozenset[str] = frozenset()
        self._container_credentials = container_credentials_of(settings)
        self._rng = rng or Random()

    async def mutate(self, pod: JsonObject, namespace: str) -> MutationResult:
        """As `mutate_now`, but waits the grace period for a ServiceAccount not yet seen."""
        name = service_account_name(pod)
        grace = self.settings.service_account_lookup_grace_period
        if grace > 0 and self.store.get(namespace, name) is None:
            await self.store.wait_for(namespace, name, grace)
        return self.mutate_now(pod, namespace)

    def mutate_now(self, pod: JsonObject, namespace: str) -> MutationResult:
        name = service_account_name(pod)
        key = key_of(namespace, name)
        service_account = self.store.get(namespace, name)
        config_map = self.config_map.get(namespace, name) if self.config_map else None
        listed = key in self.container_credentials_keys
        resolution = resolve_pod_identity(
            pod,
            service_account=service_account,
            config_map=config_map,
            container_credentials=self._container_credentials if listed else None,
            annotation_prefix=self.settings.annotation_prefix,
            mount_path=self.settings.token_mount_path,
            region=self.settings.aws_default_region,
            rng=self._rng,
        )
        identity = resolution.identity
        if identity is None:
            found = service_account is not None or config_map is not None
            outcome = Outcome.NO_ROLE if found else Outcome.NOT_FOUND
            return MutationResult([], (), outcome, None, key)
        mutation = build_identity_patch(pod, identity)
        outcome = Outcome.MUTATED if mutation.ops else Outcome.ALREADY_PRESENT
        warnings = resolution.warnings + mutation.warnings
        return MutationResult(
            mutation.ops, warnings, outcome, identity.mode, key, resolution.invalid
        )


def service_account_name(pod: JsonObject) -> str:
    return (pod.get("spec") or {}).get("serviceAccountName") or "default"
