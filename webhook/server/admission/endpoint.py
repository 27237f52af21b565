"""The /mutate hot path as a plain ASGI app: no dependency injection, no request models.

kube-apiserver calls this for every pod it creates, so the framework's per-request machinery
is skipped here (docs/performance.md measures it); FastAPI serves everything else.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import KW_ONLY, dataclass, field
from typing import Any, NamedTuple

from starlette.types import Receive, Scope, Send

from webhook.mutation.answer import Answer
from webhook.server.admission.codec import (
    BadRequest,
    Review,
    echo_of,
    errored,
    parse_body,
    patched,
    refused,
    review_of,
)
from webhook.server.admission.outcomes import ServingOutcome
from webhook.server.transport.deadlines import Deadlines, resolution_for

# The admission log keeps the name its lines have always carried: docs/production.md ("Logs")
# shows it and log queries select on it. This module and the observer (observer.py) write under it.
ADMISSION_LOGGER = "webhook.admission"
logger = logging.getLogger(ADMISSION_LOGGER)


class Observation(NamedTuple):
    """One answered request, for metrics and the admission log line."""

    verb: str
    path: str
    status: int
    seconds: float
    review: Review | None  # None when the request was refused before it was decoded
    answer: Answer | None  # None when the request was refused or failed


Decide = Callable[[Review], Awaitable[Answer]]
# A last look at every answer, the over-budget one included: strict mode's refusal
# (webhook/assembly/strict.py) is made here, so that it covers answers the decision never gave.
Enforce = Callable[[Review, Answer], Answer]
Observe = Callable[[Observation], None]

_JSON_HEADERS = [(b"content-type", b"application/json")]


@dataclass(slots=True, eq=False)
class AdmissionEndpoint:
    """POST an AdmissionReview, get one back. Checks in a fixed order:
    method 405, body size 413, body arrival within the time budget 408, content type 415,
    decoding 400, then the decision, allowed unchanged when the budget runs out (refused
    instead, in strict mode, for a pod that asks for an identity by its label)."""

    path: str
    decide: Decide
    _: KW_ONLY
    max_body_bytes: int
    observe: Observe
    time_budget: float | None = None
    enforce: Enforce | None = None
    _deadlines: Deadlines | None = field(default=None, init=False)
    _cutoff: float = field(default=0.0, init=False)  # seconds after the headers, then armed

    def __post_init__(self) -> None:
        if self.time_budget is not None:
            resolution = resolution_for(self.time_budget)
            self._deadlines = Deadlines(resolution)
            # The check fires up to one resolution late: arm it two early, so the over-budget
            # answer leaves before the budget's wall-clock, not just after it.
            self._cutoff = self.time_budget - 2 * resolution

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        review: Review | None = None
        answer: Answer | None = None
        document: Any = None  # the decoded body, kept for the echo of an error answer
        # One deadline for the whole request: a body sent slowly eats into the decision's time.
        budget, deadlines = self.time_budget, self._deadlines
        task: asyncio.Task[Any] | None = None
        cancelling = 0
        try:
            if scope["method"] != "POST":
                raise BadRequest(405, f"{scope['method']} is not allowed; POST an AdmissionReview")
            if deadlines is not None and budget is not None:
                task = asyncio.current_task()
                if task is not None:  # always, under an event loop's task
                    cancelling = task.cancelling()
                    deadlines.add(task, asyncio.get_running_loop().time() + self._cutoff)
            try:
                body = await self._read_body(scope, receive)
                if not _is_json(scope):
                    document = _echoable(body)
                    raise BadRequest(
                        415, "Content-Type is not supported; expected application/json"
                    )
                document = parse_body(body)
                review = review_of(document)
                answer = await self.decide(review)
            except asyncio.CancelledError:
                if not self._cut_off(task, cancelling):
                    raise
                if review is None:
                    raise BadRequest(
                        408, f"the body did not arrive within the time budget of {budget:g}s"
                    ) from None
                answer = self._over_budget(review)
            finally:
                if task is not None and deadlines is not None:
                    deadlines.discard(task)
            if self.enforce is not None:
                answer = self.enforce(review, answer)
            if answer.refusal:
                status, payload = 200, refused(review, answer.refusal, answer.warnings)
            else:
                status, payload = 200, patched(review, answer.ops, answer.warnings)
        except BadRequest as exc:
            status = exc.status
            payload = errored(status, exc.message, echo=echo_of(document))
            logger.warning("rejected %s request: %s", self.path, exc.message)
        except Exception:
            # Never a traceback to the client; the log has it.
            logger.exception("internal error answering %s", self.path)
            status = 500
            payload = errored(500, "internal error; see the webhook's log", echo=echo_of(document))
        await _respond(send, status, payload)
        self.observe(
            Observation(
                scope["method"], self.path, status, time.perf_counter() - started, review, answer
            )
        )

    def _cut_off(self, task: asyncio.Task[Any] | None, cancelling: int) -> bool:
        """Whether a cancellation is the deadline's alone, and not also a shutdown's."""
        deadlines = self._deadlines
        return (
            task is not None
            and deadlines is not None
            and deadlines.discard(task)
            and task.uncancel() <= cancelling
        )

    def _over_budget(self, review: Review) -> Answer:
        """Past the budget the pod is allowed unchanged: never a hang, never a kube-apiserver
        timeout that failurePolicy: Fail would turn into a refused pod."""
        logger.warning(
            "admission %s in namespace %s took longer than the time budget of %gs; "
            "answered without changes",
            review.uid,
            review.namespace,
            self.time_budget,
        )
        warning = (
            f"pod-identity-webhook: not mutated, the admission took longer than "
            f"{self.time_budget:g}s; the pod has no AWS credentials from the webhook"
        )
        return Answer([], (warning,), ServingOutcome.OVER_BUDGET)

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes:
        declared = _header(scope, b"content-length")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            raise BadRequest(
                413, f"body of {int(declared)} bytes is over the limit of {self.max_body_bytes}"
            )
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise BadRequest(400, "client disconnected before sending the whole body")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise BadRequest(413, f"body is over the limit of {self.max_body_bytes} bytes")
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def _respond(send: Send, status: int, payload: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*_JSON_HEADERS, (b"content-length", str(len(payload)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": payload})


def _is_json(scope: Scope) -> bool:
    return _header(scope, b"content-type").split(b";", 1)[0].strip().lower() == b"application/json"


def _echoable(body: bytes) -> Any:
    """The body decoded only so that the 415 answer can echo its apiVersion and uid."""
    try:
        return parse_body(body)
    except BadRequest:
        return None


def _header(scope: Scope, name: bytes) -> bytes:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return b""
