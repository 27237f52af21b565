"""The two admission decisions, ready to serve: a pod's identity (/mutate) and its Fargate
scheduling (/mutate-fargate). Each is built once, from the sources it reads per admission."""

from __future__ import annotations

from collections.abc import Callable

from webhook.assembly.podmutator import PodMutator
from webhook.mutation.answer import Answer, Outcome
from webhook.mutation.fargate import FargateProfile, schedule_on_fargate
from webhook.server.admission.codec import Review
from webhook.server.admission.outcomes import ServingOutcome
from webhook.server.metrics.registry import Metrics
from webhook.types import JsonObject

# The profiles in force, read per admission: the file that holds them is reloaded while the
# webhook runs. None: no --fargate-profiles.
ProfilesSource = Callable[[], tuple[FargateProfile, ...] | None]


class IdentityDecision:
    """/mutate: the pod's identity patch, counted in the metrics."""

    def __init__(self, mutator: PodMutator, metrics: Metrics) -> None:
        self.mutator = mutator
        self._metrics = metrics

    async def __call__(self, review: Review) -> Answer:
        if review.pod is None:
            return Answer([], (), Outcome.NOT_A_POD)
        if review.oversized:  # checked as the review was decoded
            return Answer([], (review.oversized,), Outcome.TOO_MANY_CONTAINERS)
        answer = await self.mutator.mutate(review.pod, review.namespace)
        metrics = self._metrics
        if answer.mode is not None:  # upstream counts already-patched pods too
            metrics.pod_identified(answer.mode.value)
        if answer.outcome is Outcome.NOT_FOUND:
            metrics.service_account_missing()
        for annotation in answer.invalid_annotations:
            metrics.invalid_annotations.labels("pod", annotation).inc()
        return answer


class FargateDecision:
    """/mutate-fargate: schedule the pod on Fargate when a profile selects it; counted in the
    metrics when there are any (`mutate` previews without them)."""

    def __init__(
        self, profiles: ProfilesSource, *, scheduler_name: str, metrics: Metrics | None = None
    ) -> None:
        self.profiles = profiles
        self._scheduler_name = scheduler_name
        self._metrics = metrics

    def schedule(
        self, pod: JsonObject, namespace: str, profiles: tuple[FargateProfile, ...]
    ) -> Answer:
        return schedule_on_fargate(
            pod, namespace, profiles=profiles, scheduler_name=self._scheduler_name
        )

    async def __call__(self, review: Review) -> Answer:
        if review.pod is None:
            return Answer([], (), Outcome.NOT_A_POD)
        profiles = self.profiles()
        if profiles is None:
            return Answer([], (), ServingOutcome.NO_FARGATE_PROFILES)
        answer = self.schedule(review.pod, review.namespace, profiles)
        if answer.ops and self._metrics is not None:
            self._metrics.fargate_scheduled.labels(answer.detail).inc()
        return answer
