"""The one answer the core gives for a pod, carried unchanged to the encoder and the observer.

Modelled on controller-runtime's single admission `Response`: the patch operations, the warnings
for the user, why (`Outcome`, for the log line and metrics) and a detail naming what decided it
(the ServiceAccount or the Fargate profile). A NamedTuple, as every value built per admission:
immutable, and built in a third of a frozen dataclass's time (docs/performance.md).
"""

from __future__ import annotations

from enum import Enum
from typing import NamedTuple, Protocol

from webhook.mutation.podidentity import Mode
from webhook.types import PatchOp


class Outcome(Enum):
    """Why a pod got the answer it got; the value is what the admission log line shows."""

    # identity (/mutate)
    MUTATED = "mutated"
    ALREADY_PRESENT = "already present"
    NO_ROLE = "no role"
    NOT_FOUND = "not found"
    TOO_MANY_CONTAINERS = "too many containers"  # past MAX_MUTATED_CONTAINERS
    # Fargate (/mutate-fargate)
    SCHEDULED = "scheduled on fargate"
    ALREADY_SCHEDULED = "already scheduled on fargate"
    NO_MATCH = "no fargate profile matches"
    OWN_SCHEDULER = "pod names its own scheduler"
    DAEMONSET = "owned by a DaemonSet"
    BOUND = "already bound to a node"
    # either path
    NOT_A_POD = "not a pod"


class Reason(Protocol):
    """What `Answer.outcome` holds: an `Outcome`, or one of the answers the server gives without
    asking the core (webhook/server/admission/outcomes.py). Its value is what the log shows."""

    @property
    def value(self) -> str: ...


class Answer(NamedTuple):
    ops: list[PatchOp]
    warnings: tuple[str, ...]
    outcome: Reason
    detail: str = ""  # the ServiceAccount ("namespace/name") or the Fargate profile; "" if none
    mode: Mode | None = None  # how the identity is given; None when the pod gets none
    # Pod annotations (without the prefix) whose value was ignored or adjusted.
    invalid_annotations: tuple[str, ...] = ()
    # Not "": the pod is refused (allowed: false) with this message; only in strict mode
    # (webhook/assembly/strict.py), for a labelled pod that gets no identity.
    refusal: str = ""
