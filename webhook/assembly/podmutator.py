"""Look up a pod's identity in the sources and compute its patch: the one path every request takes."""

from __future__ import annotations

from collections.abc import Callable, Container
from dataclasses import KW_ONLY, dataclass, field
from random import Random
from typing import Protocol

from webhook.assembly.settingsmap import container_credentials_of
from webhook.flags.settings import Settings
from webhook.mutation.answer import Answer, Outcome
from webhook.mutation.patch import build_identity_patch
from webhook.mutation.podidentity import (
    ContainerCredentials,
    PodIdentity,
    Resolution,
    resolve_pod_identity,
)
from webhook.mutation.serviceaccount import ServiceAccountIdentity
from webhook.objectkeys import key_of
from webhook.sources.serviceaccounts.store import ServiceAccountStore
from webhook.types import JsonObject

NO_KEYS: frozenset[str] = frozenset()


class IdentityLookup(Protocol):
    def get(self, namespace: str, name: str) -> ServiceAccountIdentity | None: ...


# The ServiceAccounts ("namespace/name") that use container credentials, read per admission:
# the file that lists them is reloaded while the webhook runs.
KeysSource = Callable[[], Container[str]]
# Called (namespace, name) when an admission starts waiting for a ServiceAccount not yet seen.
MissHook = Callable[[str, str], None]


def _no_keys() -> Container[str]:
    return NO_KEYS


@dataclass(slots=True, eq=False)
class PodMutator:
    """Everything it reads is given at construction and never re-wired afterwards."""

    store: ServiceAccountStore
    _: KW_ONLY
    annotation_prefix: str
    mount_path: str
    region: str
    container_credentials: ContainerCredentials
    container_credentials_keys: KeysSource = _no_keys
    config_map: IdentityLookup | None = None
    grace_period: float = 0.0
    on_miss: MissHook | None = None
    rng: Random = field(default_factory=Random)

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        store: ServiceAccountStore,
        *,
        container_credentials_keys: KeysSource = _no_keys,
        config_map: IdentityLookup | None = None,
        on_miss: MissHook | None = None,
        rng: Random | None = None,
    ) -> PodMutator:
        return cls(
            store,
            annotation_prefix=settings.annotation_prefix,
            mount_path=settings.token_mount_path,
            region=settings.aws_default_region,
            container_credentials=container_credentials_of(settings),
            container_credentials_keys=container_credentials_keys,
            config_map=config_map,
            grace_period=settings.service_account_lookup_grace_period,
            on_miss=on_miss,
            rng=rng or Random(),
        )

    def uses_container_credentials(self, namespace: str, name: str) -> bool:
        return key_of(namespace, name) in self.container_credentials_keys()

    async def mutate(self, pod: JsonObject, namespace: str) -> Answer:
        """As `mutate_now`, but waits the grace period for a ServiceAccount not yet seen."""
        name = service_account_name(pod)
        service_account = self.store.get(namespace, name)
        if service_account is None and self.grace_period > 0:
            if self.on_miss is not None:
                self.on_miss(namespace, name)
            await self.store.wait_for(namespace, name, self.grace_period)
            service_account = self.store.get(namespace, name)
        return self._answer(pod, namespace, name, service_account)

    def mutate_now(self, pod: JsonObject, namespace: str) -> Answer:
        name = service_account_name(pod)
        return self._answer(pod, namespace, name, self.store.get(namespace, name))

    def identity_of(self, pod: JsonObject, namespace: str) -> PodIdentity | None:
        """The identity `mutate_now` gives this pod: ServiceAccount, ConfigMap entry or composed
        role ARN, as resolved (doctor compares it with the trust policy and the pod's env)."""
        name = service_account_name(pod)
        return self._resolve(pod, namespace, name, self.store.get(namespace, name))[0].identity

    def _resolve(
        self,
        pod: JsonObject,
        namespace: str,
        name: str,
        service_account: ServiceAccountIdentity | None,
    ) -> tuple[Resolution, bool, str]:
        """(the resolution, whether a ServiceAccount or ConfigMap entry was found, its key)."""
        key = key_of(namespace, name)
        config_map = self.config_map.get(namespace, name) if self.config_map else None
        listed = key in self.container_credentials_keys()
        resolution = resolve_pod_identity(
            pod,
            service_account=service_account,
            config_map=config_map,
            container_credentials=self.container_credentials if listed else None,
            annotation_prefix=self.annotation_prefix,
            mount_path=self.mount_path,
            region=self.region,
            rng=self.rng,
        )
        return resolution, service_account is not None or config_map is not None, key

    def _answer(
        self,
        pod: JsonObject,
        namespace: str,
        name: str,
        service_account: ServiceAccountIdentity | None,
    ) -> Answer:
        resolution, found, key = self._resolve(pod, namespace, name, service_account)
        identity = resolution.identity
        if identity is None:
            return Answer([], (), Outcome.NO_ROLE if found else Outcome.NOT_FOUND, key)
        mutation = build_identity_patch(pod, identity)
        outcome = Outcome.MUTATED if mutation.ops else Outcome.ALREADY_PRESENT
        warnings = resolution.warnings + mutation.warnings
        return Answer(mutation.ops, warnings, outcome, key, identity.mode, resolution.invalid)


def service_account_name(pod: JsonObject) -> str:
    return (pod.get("spec") or {}).get("serviceAccountName") or "default"
