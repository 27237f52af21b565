"""The admission line's fast path writes what `logging` itself would write."""

from __future__ import annotations

import asyncio
import io
import logging
import re

import orjson
import pytest

from webhook.logs import HOLD_SECONDS, InfoLine, WebhookHandler

FIELDS = {"namespace": "team-a", "pod": "web-", "outcome": "mutated", "latency_ms": 0.412}
MESSAGE = "admission path=/mutate namespace=team-a pod=web- outcome=mutated"


def _both_ways(fmt: str) -> tuple[str, str]:
    """(line written by the fast path, line written by logger.info through the same handler)"""
    stream = io.StringIO()
    handler = WebhookHandler(stream, fmt)
    handler.write_info("webhook.admission", MESSAGE, dict(FIELDS))
    fast = stream.getvalue()
    stream.seek(0)
    stream.truncate()
    logger = logging.getLogger("webhook.admission.test-logs")
    logger.propagate = False
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        logger.info("%s", MESSAGE, extra=dict(FIELDS))
    finally:
        logger.removeHandler(handler)
    return fast, stream.getvalue().replace("webhook.admission.test-logs", "webhook.admission")


def test_text_line_matches_logging() -> None:
    fast, slow = _both_ways("text")
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}"
    assert re.fullmatch(stamp + r" INFO webhook\.admission: " + re.escape(MESSAGE) + "\n", fast)
    assert fast.split(" ", 2)[2] == slow.split(" ", 2)[2]


def test_json_line_matches_logging() -> None:
    fast, slow = _both_ways("json")
    fast_entry, slow_entry = orjson.loads(fast), orjson.loads(slow)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", fast_entry["time"])
    del fast_entry["time"], slow_entry["time"]
    assert fast_entry == slow_entry
    assert fast_entry["level"] == "info"
    assert fast_entry["outcome"] == "mutated"


def test_info_line_falls_back_to_logging_without_the_serve_handler(
    caplog: pytest.LogCaptureFixture,
) -> None:
    line = InfoLine(logging.getLogger("webhook.admission"))
    with caplog.at_level(logging.INFO, logger="webhook.admission"):
        assert line.enabled()
        line(MESSAGE, dict(FIELDS))
    assert [r.getMessage() for r in caplog.records] == [MESSAGE]
    assert caplog.records[0].__dict__["outcome"] == "mutated"


class CountingStream(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


def _lines(stream: io.StringIO) -> list[str]:
    return [line.split(": ", 1)[1] for line in stream.getvalue().splitlines()]


def test_lines_written_on_the_loop_are_held_then_written_together() -> None:
    stream = CountingStream()
    handler = WebhookHandler(stream, "text")

    async def burst() -> tuple[str, int]:
        for number in range(3):
            handler.write_info("webhook.admission", f"admission {number}", {})
        await asyncio.sleep(0)
        seen_soon_after = stream.getvalue()
        await asyncio.sleep(HOLD_SECONDS * 5)
        return seen_soon_after, stream.writes

    seen_soon_after, writes = asyncio.run(burst())
    assert seen_soon_after == ""
    assert writes == 1
    assert _lines(stream) == ["admission 0", "admission 1", "admission 2"]


def test_other_records_and_flush_keep_the_order() -> None:
    stream = CountingStream()
    handler = WebhookHandler(stream, "text")
    logger = logging.getLogger("webhook.test-logs-order")
    logger.propagate = False
    logger.addHandler(handler)

    async def step() -> None:
        handler.write_info("webhook.admission", "admission 1", {})
        logger.warning("rejected something")
        handler.write_info("webhook.admission", "admission 2", {})
        handler.flush()  # what logging.shutdown does at exit
        assert _lines(stream) == ["admission 1", "rejected something", "admission 2"]

    try:
        asyncio.run(step())
    finally:
        logger.removeHandler(handler)


def test_lines_off_the_loop_are_written_at_once() -> None:
    stream = CountingStream()
    handler = WebhookHandler(stream, "json")
    handler.write_info("webhook.admission", "admission off loop", {"uid": "u-1"})
    assert orjson.loads(stream.getvalue())["uid"] == "u-1"


def test_a_loop_that_ends_before_its_flush_does_not_strand_lines() -> None:
    stream = CountingStream()
    handler = WebhookHandler(stream, "text")
    first = asyncio.new_event_loop()

    def write_and_stop() -> None:
        handler.write_info("webhook.admission", "on a loop closed right after", {})
        first.stop()

    first.call_soon(write_and_stop)
    first.run_forever()
    first.close()  # its scheduled flush never ran
    assert stream.getvalue() == ""

    async def write_and_step(message: str) -> None:
        handler.write_info("webhook.admission", message, {})
        await asyncio.sleep(HOLD_SECONDS * 5)

    asyncio.run(write_and_step("on the next loop"))
    assert _lines(stream) == ["on a loop closed right after", "on the next loop"]
