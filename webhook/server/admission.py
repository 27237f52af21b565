"""The /mutate hot path as a plain ASGI app: no dependency injection, no request models.

kube-apiserver calls this for every pod it creates, so the framework's per-request machinery
is skipped here (docs/performance.md measures it); FastAPI serves everything else.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

from starlette.types import Receive, Scope, Send

from webhook.server.codec import BadRequest, Review, decode_review, errored, patched
from webhook.server.deadlines import Deadlines, resolution_for
from webhook.types import PatchOp

logger = logging.getLogger("webhook.admission")


class Decision(NamedTuple):
    ops: list[PatchOp]
    warnings: tuple[str, ...]
    outcome: str  # for logs and metrics: mutated, already present, no role, not found, ...
    detail: str = ""  # e.g. the ServiceAccount or the Fargate profile


Decide = Callable[[Review], Awaitable[Decision]]
Observe = Callable[[str, str, int, float, Review | None, Decision | None], None]  # verb, path, ...

_JSON_HEADERS = [(b"content-type", b"application/json")]
OVER_BUDGET = "over time budget"  # the outcome of a decision cut off by the time budget


class AdmissionEndpoint:
    """POST an AdmissionReview, get one back. Checks in a fixed order:
    method 405, body size 413, body arrival within the time budget 408, content type 415,
    decoding 400, then the decision, allowed unchanged when the budget runs out."""

    def __init__(
        self,
        path: str,
        decide: Decide,
        *,
        max_body_bytes: int,
        observe: Observe,
        time_budget: float | None = None,
    ) -> None:
        self.path = path
        self._decide = decide
        self._max_body_bytes = max_body_bytes
        self._observe = observe
        self._time_budget = time_budget
        self._deadlines: Deadlines | None = None
        self._cutoff = 0.0  # seconds after the headers at which the deadline is armed
        if time_budget is not None:
            resolution = resolution_for(time_budget)
            self._deadlines = Deadlines(resolution)
            # The check fires up to one resolution late: arm it two early, so the over-budget
            # answer leaves before the budget's wall-clock, not just after it.
            self._cutoff = time_budget - 2 * resolution

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        review: Review | None = None
        decision: Decision | None = None
        body = b""
        # One deadline for the whole request: a body sent slowly eats into the decision's time.
        budget, deadlines = self._time_budget, self._deadlines
        task: asyncio.Task[Any] | None = None
        try:
            if scope["method"] != "POST":
                raise BadRequest(405, f"{scope['method']} is not allowed; POST an AdmissionReview")
            if deadlines is not None and budget is not None:
                task = asyncio.current_task()
                assert task is not None
                cancelling = task.cancelling()
                deadlines.add(task, asyncio.get_running_loop().time() + self._cutoff)
            try:
                body = await self._read_body(scope, receive)
                _check_content_type(scope)
                review = decode_review(body)
                decision = await self._decide(review)
            except asyncio.CancelledError:
                # Ours only if the deadline cancelled it, and nobody else (a shutdown) did too.
                if (
                    task is None
                    or deadlines is None
                    or not deadlines.discard(task)
                    or task.uncancel() > cancelling
                ):
                    raise
                if review is None:
                    raise BadRequest(
                        408, f"the body did not arrive within the time budget of {budget:g}s"
                    ) from None
                decision = self._over_budget(review)
            finally:
                if task is not None and deadlines is not None:
                    deadlines.discard(task)
            status, payload = 200, patched(review, decision.ops, decision.warnings)
        except BadRequest as exc:
            status, payload = exc.status, errored(exc.status, exc.message, body=body)
            logger.warning("rejected %s request: %s", self.path, exc.message)
        except Exception:
            # Never a traceback to the client; the log has it.
            logger.exception("internal error answering %s", self.path)
            status, payload = 500, errored(500, "internal error; see the webhook's log", body=body)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [*_JSON_HEADERS, (b"content-length", str(len(payload)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": payload})
        self._observe(
            scope["method"], self.path, status, time.perf_counter() - started, review, decision
        )

    def _over_budget(self, review: Review) -> Decision:
        """Past the budget the pod is allowed unchanged: never a hang, never a kube-apiserver
        timeout that failurePolicy: Fail would turn into a refused pod."""
        logger.warning(
            "admission %s in namespace %s took longer than the time budget of %gs; "
            "allowed without changes",
            review.uid,
            review.namespace,
            self._time_budget,
        )
        warning = (
            f"pod-identity-webhook: not mutated, the admission took longer than "
            f"{self._time_budget:g}s; the pod has no AWS credentials from the webhook"
        )
        return Decision([], (warning,), OVER_BUDGET)

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes:
        declared = _header(scope, b"content-length")
        if declared.isdigit() and int(declared) > self._max_body_bytes:
            raise BadRequest(
                413, f"body of {int(declared)} bytes is over the limit of {self._max_body_bytes}"
            )
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise BadRequest(400, "client disconnected before sending the whole body")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self._max_body_bytes:
                raise BadRequest(413, f"body is over the limit of {self._max_body_bytes} bytes")
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _check_content_type(scope: Scope) -> None:
    content_type = _header(scope, b"content-type").split(b";", 1)[0].strip().lower()
    if content_type != b"application/json":
        raise BadRequest(415, "Content-Type is not supported; expected application/json")


def _header(scope: Scope, name: bytes) -> bytes:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return b""
