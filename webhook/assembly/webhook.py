"""`serve`'s webhook, assembled: live sources, the two decisions, metrics, background tasks."""

from __future__ import annotations

from dataclasses import dataclass
from random import Random

from webhook.assembly.background import BackgroundTasks
from webhook.assembly.decisions import FargateDecision, IdentityDecision
from webhook.assembly.livesources import LiveSources
from webhook.assembly.observer import MetricsObserver
from webhook.assembly.podmutator import PodMutator
from webhook.assembly.settingsmap import serving_defaults
from webhook.assembly.strict import identity_enforcement
from webhook.flags.settings import Settings
from webhook.server.admission.endpoint import Enforce
from webhook.server.metrics.registry import Metrics
from webhook.sources.serviceaccounts.store import ServiceAccountStore


@dataclass(frozen=True)
class AssembledWebhook:
    """What the server serves (webhook.server.admission.apps.Served): built by `assemble`, its files read
    by `load_sources`, its background tasks run between `start` and `stop`."""

    settings: Settings
    metrics: Metrics
    sources: LiveSources
    decide_identity: IdentityDecision
    decide_fargate: FargateDecision
    identity_enforcement: Enforce | None
    tasks: BackgroundTasks

    @property
    def store(self) -> ServiceAccountStore:
        return self.sources.store

    def load_sources(self) -> None:
        """Read every configured file once; a bad one raises StartupError naming file, field
        and reason."""
        self.sources.load()

    async def start(self) -> None:
        await self.tasks.start()

    async def stop(self) -> None:
        await self.tasks.stop()

    def liveness(self) -> list[str]:
        return self.tasks.liveness()

    def readiness(self) -> list[str]:
        """Why the webhook is not ready; empty when it is."""
        return [reason for check in self.sources.readiness_checks if (reason := check())]


def assemble(settings: Settings, *, rng: Random | None = None) -> AssembledWebhook:
    """Raises StartupError when the configuration cannot be served (the message says why)."""
    metrics = Metrics()
    observer = MetricsObserver(metrics)
    sources = LiveSources(settings, serving_defaults(settings), observer)
    lookup = sources.cluster.lookup
    mutator = PodMutator.from_settings(
        settings,
        sources.store,
        container_credentials_keys=sources.container_credentials_keys,
        config_map=sources.cluster.config_map,
        on_miss=lookup.request if lookup is not None else None,
        rng=rng,
    )
    return AssembledWebhook(
        settings=settings,
        metrics=metrics,
        sources=sources,
        decide_identity=IdentityDecision(mutator, metrics),
        decide_fargate=FargateDecision(
            lambda: sources.fargate_profiles,
            scheduler_name=settings.fargate_scheduler_name,
            metrics=metrics,
        ),
        identity_enforcement=identity_enforcement(settings),
        tasks=BackgroundTasks(sources.background, on_restart=observer.task_restarted),
    )
