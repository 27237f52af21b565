"""Deadlines: one coarse timer for every request's time budget, and the endpoint using it."""

from __future__ import annotations

import asyncio
from collections.abc import MutableMapping
from typing import Any

import orjson
import pytest

from tests.conftest import ROOT
from webhook.mutation.answer import Answer, Outcome
from webhook.server.admission.codec import Review
from webhook.server.admission.endpoint import AdmissionEndpoint
from webhook.server.transport.deadlines import Deadlines, resolution_for


async def _forever() -> None:
    await asyncio.Event().wait()


def test_a_task_past_its_deadline_is_cancelled_and_reported_as_expired() -> None:
    async def scenario() -> tuple[bool, float]:
        loop = asyncio.get_running_loop()
        deadlines = Deadlines(0.01)
        task = asyncio.create_task(_forever())
        started = loop.time()
        deadlines.add(task, started + 0.05)
        with pytest.raises(asyncio.CancelledError):
            await task
        return deadlines.discard(task), loop.time() - started

    expired, waited = asyncio.run(scenario())
    assert expired is True
    assert 0.05 <= waited < 1.0


def test_a_task_discarded_in_time_is_left_alone() -> None:
    async def scenario() -> tuple[bool, bool, int]:
        deadlines = Deadlines(0.01)
        task = asyncio.create_task(_forever())
        deadlines.add(task, asyncio.get_running_loop().time() + 0.03)
        expired = deadlines.discard(task)
        await asyncio.sleep(0.1)
        cancelled = task.cancelled()
        task.cancel()
        return expired, cancelled, len(deadlines)

    assert asyncio.run(scenario()) == (False, False, 0)


def test_the_timer_runs_only_while_something_is_in_flight() -> None:
    async def scenario() -> list[bool]:
        deadlines = Deadlines(0.01)
        seen = [deadlines._timer is None]
        task = asyncio.create_task(_forever())
        deadlines.add(task, asyncio.get_running_loop().time() + 10)
        seen.append(deadlines._timer is None)
        deadlines.discard(task)
        await asyncio.sleep(0.05)  # one check finds nothing and does not re-arm
        seen.append(deadlines._timer is None)
        task.cancel()
        return seen

    assert asyncio.run(scenario()) == [True, False, True]


def test_a_task_finished_before_the_check_is_not_expired() -> None:
    async def scenario() -> bool:
        deadlines = Deadlines(0.01)
        task = asyncio.create_task(asyncio.sleep(0))
        deadlines.add(task, asyncio.get_running_loop().time())
        await task
        await asyncio.sleep(0.05)
        return deadlines.discard(task)

    assert asyncio.run(scenario()) is False


def test_resolution_is_a_tenth_of_the_budget_up_to_50_ms() -> None:
    assert resolution_for(0.3) == pytest.approx(0.03)
    assert resolution_for(25) == 0.05
    with pytest.raises(ValueError, match="resolution must be positive"):
        Deadlines(0)


# -- the endpoint -----------------------------------------------------------------------------


def _scope() -> dict[str, Any]:
    return {
        "type": "http",
        "method": "POST",
        "path": "/mutate",
        "headers": [(b"content-type", b"application/json")],
    }


async def _call(endpoint: AdmissionEndpoint, body: bytes) -> tuple[int, dict[str, Any]]:
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    await endpoint(_scope(), receive, send)
    return sent[0]["status"], orjson.loads(sent[1]["body"])


def _endpoint(decide: Any) -> AdmissionEndpoint:
    return AdmissionEndpoint(
        "/mutate",
        decide,
        max_body_bytes=1 << 20,
        observe=lambda *args: None,
        time_budget=0.1,
    )


BODY = (ROOT / "examples" / "admissionreview.json").read_bytes()


def test_a_decision_over_budget_is_allowed_unchanged_with_a_warning() -> None:
    async def slow(review: Review) -> Answer:
        await _forever()
        raise AssertionError("unreachable")

    status, answer = asyncio.run(_call(_endpoint(slow), BODY))
    assert status == 200
    assert answer["response"]["allowed"] is True
    assert "patch" not in answer["response"]
    assert "took longer than 0.1s" in answer["response"]["warnings"][0]


def test_a_cancellation_from_elsewhere_is_not_taken_for_the_deadline() -> None:
    async def scenario() -> bool:
        started = asyncio.Event()

        async def waits(review: Review) -> Answer:
            started.set()
            await _forever()
            raise AssertionError("unreachable")

        request = asyncio.create_task(_call(_endpoint(waits), BODY))
        await started.wait()
        request.cancel()  # a shutdown, say: well before the 0.1 s budget
        try:
            await request
        except asyncio.CancelledError:
            return True
        return False

    assert asyncio.run(scenario()) is True


def test_a_fast_decision_is_answered_and_leaves_nothing_behind() -> None:
    async def fast(review: Review) -> Answer:
        return Answer([], (), Outcome.NO_ROLE)

    async def scenario() -> tuple[int, int]:
        endpoint = _endpoint(fast)
        status, _ = await _call(endpoint, BODY)
        assert endpoint._deadlines is not None
        return status, len(endpoint._deadlines)

    assert asyncio.run(scenario()) == (200, 0)
