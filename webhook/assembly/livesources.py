"""`serve`'s sources: the files, watched and reloaded; the cluster, listed and watched.

Built from Settings without reading anything but the cluster's configuration; `load` then
reads each file once, so that a bad file fails start-up naming file, field and reason.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from webhook.assembly.settingsmap import StartupError
from webhook.flags.settings import Settings
from webhook.mutation.fargate import FargateProfile
from webhook.mutation.serviceaccount import IdentityDefaults
from webhook.sources.cluster import ClusterSources, build_cluster_sources
from webhook.sources.errors import ConfigError
from webhook.sources.files.containercredentials import parse_container_credentials
from webhook.sources.files.fargateprofiles import parse_fargate_profiles
from webhook.sources.files.watchedfile import WatchedFile
from webhook.sources.kube.client import ClusterConfigError, cluster_configuration
from webhook.sources.observer import SourceObserver
from webhook.sources.serviceaccounts.file import parse_service_accounts
from webhook.sources.serviceaccounts.store import ServiceAccountStore
from webhook.sources.serviceaccounts.watch import report_invalid

logger = logging.getLogger(__name__)

Run = Callable[[], Coroutine[Any, Any, None]]
ReadinessCheck = Callable[[], str]  # "" when ready, else why not


class LiveSources:
    def __init__(
        self, settings: Settings, defaults: IdentityDefaults, observer: SourceObserver
    ) -> None:
        s = settings
        self.store = ServiceAccountStore()
        self.defaults = defaults
        self._observer = observer
        # Replaced by the container-credentials file's loader; the mutator reads it per admission.
        self._container_credentials_keys: frozenset[str] = frozenset()
        self.fargate_profiles: tuple[FargateProfile, ...] | None = None  # no --fargate-profiles
        self.watched_files: list[WatchedFile] = []
        self.background: list[tuple[str, Run]] = []  # (name, run): each kept running
        self.readiness_checks: list[ReadinessCheck] = [self._store_ready]
        self.cluster = ClusterSources()
        if s.service_accounts_file is not None:
            self._watch(
                s.service_accounts_file, self._load_service_accounts, name="serviceaccounts"
            )
        if s.service_accounts_file is None or s.watch_config_map:
            self._watch_cluster(s)
        if s.watch_container_credentials_config is not None:
            self._watch(
                s.watch_container_credentials_config,
                self._load_container_credentials,
                name="container-credentials",
                absent_content=b"",  # as upstream: no file yet, or deleted, means no identities
            )
        if s.fargate_profiles is not None:
            self._watch(s.fargate_profiles, self._load_fargate_profiles, name="fargate-profiles")

    def load(self) -> None:
        """Read every configured file once; a bad file raises StartupError."""
        for watched in self.watched_files:
            if watched.may_be_absent:
                # A file that may be absent may also be invalid at start, as upstream's
                # container-credentials watcher allows: logged and counted, retried on change.
                watched.poll()
                continue
            try:
                watched.load_now()
            except ConfigError as exc:
                raise StartupError(str(exc)) from exc
            self._observer.config_reloaded(watched.name, True)

    def container_credentials_keys(self) -> frozenset[str]:
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
            on_reload=self._observer.config_reloaded,
            absent_content=absent_content,
        )
        self.watched_files.append(watched)
        self.background.append((f"{name} file reload", watched.watch))

    def _watch_cluster(self, s: Settings) -> None:
        try:
            configuration = cluster_configuration(s)
        except ClusterConfigError as exc:
            raise StartupError(str(exc)) from exc
        self.cluster = build_cluster_sources(
            s,
            configuration,
            store=self.store if s.service_accounts_file is None else None,
            defaults=self.defaults,
            observer=self._observer,
        )
        for watch in self.cluster.watches:
            self.readiness_checks.append(watch.not_ready_reason)
            self.background.append((watch.name, watch.run))

    def _store_ready(self) -> str:
        if self.store.loaded or self.cluster.watches:
            return ""  # a cluster watch reports itself whether its first list is in
        return self.store.not_ready_reason

    def _load_service_accounts(self, path: Path, content: bytes) -> None:
        entries = parse_service_accounts(
            content,
            self.defaults,
            source=path,
            on_skip=lambda key: self._observer.object_skipped("serviceaccounts file"),
        )
        for key, identity in entries.items():
            report_invalid(identity, f"ServiceAccount {key}", self._observer.annotations_invalid)
        self.store.replace_all(entries)
        self._observer.cache_reported(len(entries))
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
