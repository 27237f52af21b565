"""Keep a background task (a watch, a file reload loop) running: restart it with back-off.

Such a task is meant to run until cancelled. If it returns or raises, that is a bug or a
broken environment; it is logged, counted and started again after a back-off. A task that
keeps failing right after each start is reported by `health_reason`, which /healthz turns
into a failure so that kubelet restarts the process (docs/cluster.md, "Restarts").
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from webhook.sources.kube.watching import Backoff

logger = logging.getLogger(__name__)

RESTART_BACKOFF_INITIAL_SECONDS = 1.0
RESTART_BACKOFF_MAX_SECONDS = 30.0
# A run that lived this long was healthy: failures counted before it are forgiven.
HEALTHY_RUN_SECONDS = 60.0
# This many failures in a row, none of them after a healthy run: the task cannot be kept up.
MAX_FAILURES_IN_A_ROW = 5


class Supervised:
    def __init__(
        self,
        run: Callable[[], Awaitable[None]],
        *,
        name: str,
        on_restart: Callable[[str], None] | None = None,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self._run = run
        self._on_restart = on_restart
        self._backoff = backoff or Backoff(
            RESTART_BACKOFF_INITIAL_SECONDS,
            RESTART_BACKOFF_MAX_SECONDS,
            reset_after=HEALTHY_RUN_SECONDS + RESTART_BACKOFF_MAX_SECONDS,
        )
        self._clock = clock
        self.failures = 0
        self.last_error = ""
        self._running_since: float | None = None

    async def run(self) -> None:
        while True:
            self._running_since = started = self._clock()
            try:
                await self._run()
                error = "it stopped by itself"
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
                logger.exception("%s failed", self.name)
            self._running_since = None
            if self._clock() - started >= HEALTHY_RUN_SECONDS:
                self.failures = 0
            self.failures += 1
            self.last_error = error
            delay = self._backoff.next()
            logger.error(
                "%s stopped (%s); restarting in %.1fs (failure %d in a row)",
                self.name,
                error,
                delay,
                self.failures,
            )
            if self._on_restart is not None:
                self._on_restart(self.name)
            await asyncio.sleep(delay)

    def health_reason(self) -> str:
        """Empty while the task is kept running; else why it cannot be."""
        if self.failures < MAX_FAILURES_IN_A_ROW:
            return ""
        since = self._running_since
        if since is not None and self._clock() - since >= HEALTHY_RUN_SECONDS:
            return ""
        return f"{self.name} failed {self.failures} times in a row: {self.last_error}"
