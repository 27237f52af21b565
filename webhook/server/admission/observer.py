"""What each answered request leaves behind: its metrics and the admission log line."""

from __future__ import annotations

import logging

from webhook.logs import InfoLine, clip
from webhook.mutation.answer import Answer
from webhook.server.admission.codec import Review
from webhook.server.admission.endpoint import ADMISSION_LOGGER, Observation
from webhook.server.admission.outcomes import ServingOutcome
from webhook.server.metrics.registry import Metrics

# The admission line and its debug detail go to the admission log, under its documented name
# (see webhook/server/admission/endpoint.py); this module logs nothing else.
admission_log = logging.getLogger(ADMISSION_LOGGER)


class AdmissionObserver:
    """The endpoint's `observe`: counts every request, and logs each decided admission."""

    def __init__(self, metrics: Metrics, *, fargate_path: str) -> None:
        self._metrics = metrics
        self._fargate_path = fargate_path
        self._line = InfoLine(admission_log)

    def __call__(self, observation: Observation) -> None:
        metrics = self._metrics
        metrics.observe_request(
            observation.verb, observation.path, observation.status, observation.seconds
        )
        review, answer = observation.review, observation.answer
        if review is None or answer is None:
            return
        if answer.outcome is ServingOutcome.OVER_BUDGET:
            metrics.over_budget.inc()
        if answer.refusal:
            metrics.refused.labels(answer.outcome.value).inc()
        if admission_log.isEnabledFor(logging.DEBUG):
            # the warnings' text may quote annotation values, which are never logged
            admission_log.debug(
                "admission uid=%s patch paths=%s warnings=%d",
                clip(review.uid),
                [op["path"] for op in answer.ops],
                len(answer.warnings),
            )
        if self._line.enabled():
            self._log(observation.path, observation.seconds, review, answer)

    def _log(self, path: str, seconds: float, review: Review, answer: Answer) -> None:
        pod = review.pod or {}
        metadata = pod.get("metadata") or {}
        # Every field the client wrote is cut to MAX_FIELD_CHARS; the handler escapes control
        # characters (docs/production.md, "Logs").
        name = clip(metadata.get("name") or metadata.get("generateName") or "-")
        uid, namespace = clip(review.uid), clip(review.namespace)
        subject = "profile" if path == self._fargate_path else "serviceaccount"
        clipped_detail = clip(answer.detail)
        outcome = answer.outcome.value
        detail = clipped_detail or "-"
        latency_ms = seconds * 1000
        fields: dict[str, object] = {
            "path": path,
            "uid": uid,
            "namespace": namespace,
            "pod": name,
            subject: clipped_detail,
            "outcome": outcome,
        }
        # strict mode's refusals (webhook/assembly/strict.py); every other answer allows
        refusal = " allowed=false" if answer.refusal else ""
        if answer.refusal:
            fields["allowed"] = False
        fields["latency_ms"] = round(latency_ms, 3)
        self._line(
            f"admission path={path} uid={uid} namespace={namespace} pod={name} "
            f"{subject}={detail} outcome={outcome}{refusal} latency_ms={latency_ms:.2f}",
            fields,
        )
