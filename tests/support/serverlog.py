"""What a real server's log says about its two uvicorn servers starting and stopping."""

from __future__ import annotations

import re

# uvicorn's own words, which do not say which of the two servers they are about
UVICORN_LIFECYCLE = ("Started server process", "Shutting down", "Finished server process")


def lifecycle_lines(log: str) -> list[tuple[str, str, str]]:
    """(server, where, event) of every "NAME server on URL: EVENT" line, in order."""
    return re.findall(r" uvicorn: (webhook|metrics) server on (\S+): (.+)$", log, re.M)


def assert_each_server_named_once_per_event(log: str, webhook_url: str, metrics_url: str) -> None:
    for words in UVICORN_LIFECYCLE:
        assert words not in log, log
    lines = lifecycle_lines(log)
    for name, url in (("webhook", webhook_url), ("metrics", metrics_url)):
        events = [event for server, where, event in lines if server == name]
        assert events == ["started", "shutting down", "stopped"], log
        assert {where for server, where, _ in lines if server == name} == {url}, log
