"""What `doctor --kubeconfig` reads from a cluster: the pod as stored, its ServiceAccount, and a
fresh token for that ServiceAccount from the TokenRequest API, as kubelet asks for the pod's
projected token (same audience, bound to the pod). The token is only checked, never printed.

The kubernetes client is imported on first use: it takes most of a second to import, and only
--kubeconfig needs it (every other subcommand shares this process's start-up)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from webhook.doctor.inputs import DoctorInputError
from webhook.doctor.jws import Token, TokenError, decode_token
from webhook.flags.settings import Settings
from webhook.types import JsonObject

# the shortest lifetime the TokenRequest API grants; doctor only reads the token's claims
TOKEN_SECONDS = 600


@dataclass(frozen=True, slots=True)
class RequestedToken:
    token: Token | None
    summary: str  # what was asked for, or why there is no token


class Cluster:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._core: Any = None

    def _api(self) -> Any:
        from webhook.sources.kube.client import (
            ClusterConfigError,
            cluster_configuration,
            new_core_api,
        )

        if self._core is None:
            try:
                self._core = new_core_api(cluster_configuration(self._settings))
            except ClusterConfigError as exc:
                raise DoctorInputError(f"--kubeconfig {self._settings.kubeconfig}: {exc}") from exc
        return self._core

    def _failure(self, exc: Exception) -> DoctorInputError:
        return DoctorInputError(f"--kubeconfig {self._settings.kubeconfig}: {exc}")

    def pod(self, namespace: str, name: str) -> JsonObject:
        from webhook.sources.kube.client import KubeApiError, get_pod

        try:
            found = get_pod(self._api(), namespace, name)
        except KubeApiError as exc:
            raise self._failure(exc) from exc
        if found is None:
            raise DoctorInputError(
                f"--pod {name}: no pod {name} in namespace {namespace} "
                f"(--kubeconfig {self._settings.kubeconfig}); -n NAMESPACE names another"
            )
        found.setdefault("kind", "Pod")
        return found

    def service_account(self, namespace: str, name: str) -> JsonObject | None:
        from webhook.sources.kube.client import KubeApiError, get_service_account

        try:
            found: JsonObject | None = get_service_account(self._api(), namespace, name)
        except KubeApiError as exc:
            raise self._failure(exc) from exc
        return found

    def token(
        self, namespace: str, service_account: str, audience: str, pod: JsonObject | None
    ) -> RequestedToken:
        """A token as the pod's projected volume gets it, or None and why (a refusal is not an
        input error: the report says the token was not checked and how to give one)."""
        from webhook.sources.kube.client import KubeApiError, request_token

        metadata = (pod or {}).get("metadata") or {}
        name, uid = metadata.get("name"), metadata.get("uid")
        bound = (name, uid) if isinstance(name, str) and isinstance(uid, str) else None
        asked = (
            f"TokenRequest for ServiceAccount {namespace}/{service_account}, audience {audience}"
            + (f", bound to pod {name}" if bound else "")
        )
        try:
            raw = request_token(
                self._api(),
                namespace,
                service_account,
                audience=audience,
                seconds=TOKEN_SECONDS,
                pod=bound,
            )
        except KubeApiError as exc:
            why = (
                "the cluster refused it (RBAC: create serviceaccounts/token)"
                if exc.status == 403
                else str(exc)
            )
            return RequestedToken(
                None, f"no token: {asked}: {why}; give --token FILE, a projected token from the pod"
            )
        try:
            return RequestedToken(decode_token(raw), asked)
        except TokenError as exc:
            return RequestedToken(None, f"no token: {asked}: not a signed JWT: {exc}")
