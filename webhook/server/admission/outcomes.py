"""The answers the server gives without asking the core (webhook/mutation/), each for a reason
of its own running rather than of the pod; the core's outcomes are `Outcome` (answer.py)."""

from __future__ import annotations

from enum import Enum


class ServingOutcome(Enum):
    # The request time budget ran out before the decision: the pod is allowed unchanged.
    OVER_BUDGET = "over time budget"
    # /mutate-fargate called on a webhook started without --fargate-profiles.
    NO_FARGATE_PROFILES = "no --fargate-profiles"
