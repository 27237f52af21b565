"""Strict mode: a pod that asks for an identity by its label is refused when it cannot get one.

With `--require-identity-label KEY=VALUE` (manifests/components/strict sets it to the label its
objectSelector selects) a pod carrying that label is never admitted without its identity: an
answer that leaves it without one (ServiceAccount not found, no role, too many containers, over
the time budget) becomes allowed: false with a message naming the reason and the fix. Without the
flag, and for pods without the label, every answer stays as it was (docs/deploy.md, "Strict").
"""

from __future__ import annotations

from typing import NamedTuple

from webhook.flags.settings import Settings
from webhook.flags.values import RequiredLabel, parse_required_label
from webhook.mutation.answer import Answer, Outcome
from webhook.mutation.shape import MAX_MUTATED_CONTAINERS
from webhook.server.admission.codec import Review
from webhook.server.admission.endpoint import Enforce
from webhook.server.admission.outcomes import ServingOutcome
from webhook.types import JsonObject

# The outcomes that leave a pod without the identity it asked for; every other outcome either
# gave it one (mutated, already present) or is not about a pod's identity.
UNIDENTIFIED: frozenset[Outcome | ServingOutcome] = frozenset(
    (Outcome.NOT_FOUND, Outcome.NO_ROLE, Outcome.TOO_MANY_CONTAINERS, ServingOutcome.OVER_BUDGET)
)


def carries(pod: JsonObject, label: RequiredLabel) -> bool:
    labels = (pod.get("metadata") or {}).get("labels") or {}
    return bool(labels.get(label.key) == label.value)


class Limits(NamedTuple):
    """What the refusal message quotes, so that the fix it offers fits this server's flags."""

    annotation_prefix: str
    grace_period: float  # --service-account-lookup-grace-period, seconds
    time_budget: float  # --request-time-budget, seconds


def refusal_message(answer: Answer, label: RequiredLabel, limits: Limits) -> str:
    """Why the pod is refused and what to do about it; "" when the answer gave it its identity."""
    outcome = answer.outcome
    if outcome not in UNIDENTIFIED:
        return ""
    account = answer.detail or "its ServiceAccount"
    role = f"{limits.annotation_prefix}/role-arn"
    if outcome is Outcome.NOT_FOUND:
        waited = (
            f"within the {limits.grace_period:g}s lookup grace period"
            if limits.grace_period > 0
            else "(no --service-account-lookup-grace-period)"
        )
        reason = f"ServiceAccount {account} was not found {waited}"
        fix = (
            "create the ServiceAccount before the pod, and check that the webhook's "
            "ServiceAccount watch is synced (its /readyz and log)"
        )
    elif outcome is Outcome.NO_ROLE:
        reason = f"ServiceAccount {account} has no {role} annotation"
        fix = f"annotate the ServiceAccount with {role}"
    elif outcome is Outcome.TOO_MANY_CONTAINERS:
        reason = (
            f"the pod has more than the {MAX_MUTATED_CONTAINERS} containers the webhook patches"
        )
        fix = "split the pod"
    else:  # OVER_BUDGET
        reason = f"the webhook did not decide within its {limits.time_budget:g}s time budget"
        fix = "create the pod again; if it recurs, see the webhook's log and CPU throttling"
    return (
        f"pod-identity-webhook: refused, the pod carries {label} but gets no AWS identity: "
        f"{reason}. Fix: {fix}, or remove the label {label.key} from the pod"
    )


def refuse_unidentified(
    pod: JsonObject | None, answer: Answer, label: RequiredLabel, limits: Limits
) -> Answer:
    """`answer`, made a refusal when the pod carries `label` and gets no identity from it."""
    if pod is None or not carries(pod, label):
        return answer
    message = refusal_message(answer, label, limits)
    if not message:
        return answer
    return answer._replace(ops=[], refusal=message)


def identity_enforcement(settings: Settings) -> Enforce | None:
    """Strict mode's last look at each /mutate answer; None (nothing to do) without
    --require-identity-label, so that the ordinary path pays nothing for it."""
    if not settings.require_identity_label:
        return None
    label = parse_required_label(settings.require_identity_label)
    limits = Limits(
        annotation_prefix=settings.annotation_prefix,
        grace_period=settings.service_account_lookup_grace_period,
        time_budget=settings.request_time_budget,
    )

    def enforce(review: Review, answer: Answer) -> Answer:
        return refuse_unidentified(review.pod, answer, label, limits)

    return enforce
