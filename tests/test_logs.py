"""The admission line's fast path writes what `logging` itself would write."""

from __future__ import annotations

import io
import logging
import re

import orjson
import pytest

from webhook.logs import InfoLine, WebhookHandler

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
    assert caplog.records[0].outcome == "mutated"
