"""The running webhook: its sources, its mutator and its metrics, wired from Settings."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Coroutine
from pathlib import Path
from random import Random
from typing import Any

from webhook.mutation.answer import Answer, Outcome
from webhook.mutation.fargate import FargateProfile, schedule_on_fargate
from webhook.mutation.identity import IdentityDefaults
from webhook.mutation.refusal import Limits, parse_required_label, refuse_unidentified
from webhook.mutation.shape import oversized_warning
from webhook.mutator import PodMutator, identity_defaults
from webhook.server.admission import Enforce
from webhook.server.codec import Review
from webhook.server.metrics import Metrics
from webhook.settings import Settings
from webhook.sources.cluster import ClusterSources, build_cluster_sources
from webhook.sources.errors import ConfigError
from webhook.sources.files.containercredentials import parse_container_credentials
from webhook.sources.files.fargateprofiles import parse_fargate_profiles
from webhook.sources.files.watchedfile import WatchedFile
from webhook.sources.imds import MetadataError, fetch_instance_identity
from webhook.sources.kube.client import ClusterConfigError, cluster_configuration
from webhook.sources.serviceaccounts.file import parse_service_accounts
from webhook.sources.serviceaccounts.store import ServiceAccountStore
from webhook.sources.serviceaccounts.watch import report_invalid
from webhook.sources.supervisor import Supervised

logger = logging.getLogger(__name__)

ReadinessCheck = Callable[[], str]  # "" when ready, else why not


class StartupError(RuntimeError):
    """The webhook cannot start as configured; the message says what to fix."""


class WebhookService:
    def __init__(self, settings: Settings, *, rng: Random | None = None) -> None:
        self.settings = settings
        self.metrics = Metrics()
        self.store = ServiceAccountStore()
        self.defaults: IdentityDefaults = identity_defaults(settings)
        self._rng = rng
        # Replaced by the container-credentials file's loader; the mutator reads it per admission.
        self._container_credentials_keys: frozenset[str] = frozenset()
        self.watched_files: list[WatchedFile] = []
        self.readiness_checks: list[ReadinessCheck] = [self._store_ready]
        self.cluster = ClusterSources()
        self.mutator = self._build_mutator()  # built again once load_sources knows the sources
        self.fargate_profiles: tuple[FargateProfile, ...] | None = (
            None  # None: no --fargate-profiles
        )
        self._background: list[Callable[[], Coroutine[Any, Any, None]]] = []
        self.supervised: list[Supervised] = []  # every background task, restarted if it dies
        self._tasks: list[asyncio.Task[None]] = []

    # -- start-up -------------------------------------------------------------------------

    def load_sources(self) -> None:
        """Read every configured source once; a bad file fails start-up naming file, field, reason."""
        s = self.settings
        if s.compose_role_arn:
            self.defaults = identity_defaults(s, **self._compose_account())
        if s.service_accounts_file is not None:
            self._watch(
                s.service_accounts_file, self._load_service_accounts, name="serviceaccounts"
            )
        if s.service_accounts_file is None or s.watch_config_map:
            self._watch_cluster()
        if s.watch_container_credentials_config is not None:
            self._watch(
                s.watch_container_credentials_config,
                self._load_container_credentials,
                name="container-credentials",
                absent_content=b"",  # as upstream: no file yet, or deleted, means no identities
            )
        if s.fargate_profiles is not None:
            self._watch(s.fargate_profiles, self._load_fargate_profiles, name="fargate-profiles")
        self.mutator = self._build_mutator()

    def _build_mutator(self) -> PodMutator:
        lookup = self.cluster.lookup
        return PodMutator.from_settings(
            self.settings,
            self.store,
            container_credentials_keys=self._listed_keys,
            config_map=self.cluster.config_map,
            on_miss=lookup.request if lookup is not None else None,
            rng=self._rng,
        )

    def _listed_keys(self) -> frozenset[str]:
        return self._container_credentials_keys

    def _watch(
        self,
        path: Path,
        load: Callable[[Path, bytes], None],
        *,
        name: str,
        absent_content: bytes | None = None,
    ) -> None:
        watched = WatchedFile(
            path,
            functools.partial(load, path),
            name=name,
            on_reload=self.metrics.config_reloaded,
            absent_content=absent_content,
        )
        if absent_content is not None:
            # A file that may be absent may also be invalid at start, as upstream's
            # container-credentials watcher allows: logged and counted, retried on change.
            watched.poll()
        else:
            try:
                watched.load_now()
            except ConfigError as exc:
                raise StartupError(str(exc)) from exc
            self.metrics.config_reloaded(name, True)
        self.watched_files.append(watched)
        self._background.append(self._supervise(watched.watch, name=f"{name} file reload"))

    def _compose_account(self) -> dict[str, str]:
        s = self.settings
        if s.aws_account_id:
            return {"account_id": s.aws_account_id, "partition": s.aws_partition}
        try:
            instance = fetch_instance_identity()
        except MetadataError as exc:
            raise StartupError(f"--compose-role-arn: {exc}") from exc
        logger.info(
            "--compose-role-arn: account %s, partition %s (region %s, from instance metadata)",
            instance.account_id,
            instance.partition,
            instance.region,
        )
        return {"account_id": instance.account_id, "partition": instance.partition}

    def _watch_cluster(self) -> None:
        s = self.settings
        try:
            configuration = cluster_configuration(s)
        except ClusterConfigError as exc:
            raise StartupError(str(exc)) from exc
        self.cluster = build_cluster_sources(
            s,
            configuration,
            store=self.store if s.service_accounts_file is None else None,
            defaults=self.defaults,
            report=self._report_cache,
            count_restart=self._count_restart,
            on_reload=self.metrics.config_reloaded,
            count_skip=self._count_skip,
            count_invalid=self._count_invalid_service_account,
        )
        for watch in self.cluster.watches:
            self.readiness_checks.append(watch.not_ready_reason)
            self._background.append(self._supervise(watch.run, name=watch.name))

    def _supervise(
        self, run: Callable[[], Coroutine[Any, Any, None]], *, name: str
    ) -> Callable[[], Coroutine[Any, Any, None]]:
        supervised = Supervised(run, name=name, on_restart=self._count_background_restart)
        self.supervised.append(supervised)
        return supervised.run

    def _count_background_restart(self, name: str) -> None:
        self.metrics.background_restarts.labels(name).inc()

    def _count_skip(self, source: str) -> None:
        self.metrics.skipped_objects.labels(source).inc()

    def _count_invalid_service_account(self, annotations: tuple[str, ...]) -> None:
        for annotation in annotations:
            self.metrics.invalid_annotations.labels("serviceaccount", annotation).inc()

    def _count_restart(self, resource: str, reason: str) -> None:
        self.metrics.watch_restarts.labels(resource, reason).inc()

    def _report_cache(self, size: int, has_role: bool) -> None:
        self.metrics.cache_size.set(size)
        if size:  # upstream: any ServiceAccount cached, with a role or not; never reset
            self.metrics.used.set(1)

    def cache_json(self) -> dict[str, dict[str, object]]:
        """The ServiceAccount cache as upstream's /debug/alpha/cache prints it."""
        return {
            key: {
                "RoleARN": identity.role_arn,
                "Audience": identity.audience,
                "UseRegionalSTS": identity.regional_sts,
                "TokenExpiration": identity.token_expiration,
            }
            for key, identity in self.store.snapshot().items()
        }

    def _load_service_accounts(self, path: Path, content: bytes) -> None:
        entries = parse_service_accounts(
            content,
            self.defaults,
            source=path,
            on_skip=lambda key: self._count_skip("serviceaccounts file"),
        )
        for key, identity in entries.items():
            report_invalid(identity, f"ServiceAccount {key}", self._count_invalid_service_account)
        self.store.replace_all(entries)
        self._report_cache(len(entries), any(identity.role_arn for identity in entries.values()))
        logger.info("loaded %d ServiceAccounts from %s", len(entries), path)

    def _load_container_credentials(self, path: Path, content: bytes) -> None:
        keys = parse_container_credentials(content, source=path)
        self._container_credentials_keys = keys
        logger.info("container credentials apply to %d ServiceAccounts (from %s)", len(keys), path)

    def _load_fargate_profiles(self, path: Path, content: bytes) -> None:
        profiles = parse_fargate_profiles(content, source=path)
        self.fargate_profiles = profiles
        logger.info(
            "loaded %d Fargate profiles from %s: %s",
            len(profiles),
            path,
            ", ".join(profile.name for profile in profiles) or "-",
        )

    async def start(self) -> None:
        for run in self._background:
            self._tasks.append(asyncio.create_task(run()))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    # -- serving --------------------------------------------------------------------------

    def _store_ready(self) -> str:
        if self.store.loaded or self.cluster.watches:
            return ""  # a cluster watch reports itself whether its first list is in
        return self.store.not_ready_reason

    def liveness(self) -> list[str]:
        """Why the process should be restarted (a background task cannot be kept running)."""
        return [reason for task in self.supervised if (reason := task.health_reason())]

    def readiness(self) -> list[str]:
        """Why the webhook is not ready; empty when it is."""
        return [reason for check in self.readiness_checks if (reason := check())]

    async def decide_identity(self, review: Review) -> Answer:
        if review.pod is None:
            return Answer([], (), Outcome.NOT_A_POD)
        oversized = oversized_warning(review.pod)
        if oversized:
            return Answer([], (oversized,), Outcome.TOO_MANY_CONTAINERS)
        answer = await self.mutator.mutate(review.pod, review.namespace)
        if answer.mode is not None:  # upstream counts already-patched pods too
            self.metrics.pod_identified(answer.mode.value)
        if answer.outcome is Outcome.NOT_FOUND:
            self.metrics.service_account_missing()
        for annotation in answer.invalid_annotations:
            self.metrics.invalid_annotations.labels("pod", annotation).inc()
        return answer

    def identity_enforcement(self) -> Enforce | None:
        """Strict mode's last look at each /mutate answer; None (nothing to do) without
        --require-identity-label, so that the ordinary path pays nothing for it."""
        s = self.settings
        if not s.require_identity_label:
            return None
        label = parse_required_label(s.require_identity_label)
        limits = Limits(
            annotation_prefix=s.annotation_prefix,
            grace_period=s.service_account_lookup_grace_period,
            time_budget=s.request_time_budget,
        )

        def enforce(review: Review, answer: Answer) -> Answer:
            return refuse_unidentified(review.pod, answer, label, limits)

        return enforce

    async def decide_fargate(self, review: Review) -> Answer:
        if review.pod is None:
            return Answer([], (), Outcome.NOT_A_POD)
        profiles = self.fargate_profiles
        if profiles is None:
            return Answer([], (), Outcome.NO_FARGATE_PROFILES)
        answer = schedule_on_fargate(
            review.pod,
            review.namespace,
            profiles=profiles,
            scheduler_name=self.settings.fargate_scheduler_name,
        )
        if answer.ops:
            self.metrics.fargate_scheduled.labels(answer.detail).inc()
        return answer
