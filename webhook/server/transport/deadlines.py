"""Request deadlines with one coarse timer for all requests, instead of one timer each.

`asyncio.timeout_at` arms a timer per request, about 5 µs on uvloop, on every admission even
though nearly none ever runs out (docs/performance.md). Here a request costs a dict entry; while any is in
flight, one periodic check cancels those past their deadline, at most `resolution` late.
"""

from __future__ import annotations

import asyncio
from typing import Any


class Deadlines:
    def __init__(self, resolution: float) -> None:
        if resolution <= 0:
            raise ValueError(f"resolution must be positive, got {resolution!r}")
        self.resolution = resolution
        self._in_flight: dict[asyncio.Task[Any], float] = {}
        self._expired: set[asyncio.Task[Any]] = set()
        self._timer: asyncio.TimerHandle | None = None

    def __len__(self) -> int:
        return len(self._in_flight)

    def add(self, task: asyncio.Task[Any], deadline: float) -> None:
        """Cancel `task` once the loop's clock passes `deadline`, unless discarded first."""
        self._in_flight[task] = deadline
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.resolution, self._check)

    def discard(self, task: asyncio.Task[Any]) -> bool:
        """Stop watching `task`; True when it was cancelled here because its deadline passed."""
        self._in_flight.pop(task, None)
        if not self._expired:
            return False
        try:
            self._expired.remove(task)
        except KeyError:
            return False
        return True

    def _check(self) -> None:
        self._timer = None
        if not self._in_flight:
            return  # nothing in flight: no timer until the next request
        loop = asyncio.get_running_loop()
        now = loop.time()
        for task, deadline in list(self._in_flight.items()):
            if deadline <= now:
                del self._in_flight[task]
                if not task.done():
                    self._expired.add(task)
                    task.cancel()
        if self._in_flight:
            self._timer = loop.call_later(self.resolution, self._check)


def resolution_for(budget: float) -> float:
    """A tenth of the budget, at most 50 ms: late by at most that, checked 20 times a second."""
    return min(budget / 10, 0.05)
