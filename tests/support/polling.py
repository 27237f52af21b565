"""The one way tests wait for something the server does in the background."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def eventually(
    probe: Callable[[], T],
    expected: object = True,
    *,
    timeout: float = 10.0,
    interval: float = 0.05,
) -> T:
    """Call `probe` until it returns `expected` (True unless given) or `timeout` seconds pass.

    Returns the last value, so the caller's assert shows what was seen instead."""
    deadline = time.monotonic() + timeout
    value = probe()
    while value != expected and time.monotonic() < deadline:
        time.sleep(interval)
        value = probe()
    return value
