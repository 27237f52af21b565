"""`serve`'s background tasks (file reloads, cluster watches): started, kept running, stopped."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterable
from typing import Any

from webhook.sources.supervisor import Supervised

Run = Callable[[], Coroutine[Any, Any, None]]


class BackgroundTasks:
    def __init__(
        self, runs: Iterable[tuple[str, Run]], *, on_restart: Callable[[str], None]
    ) -> None:
        """`runs`: (name, run) of each task; `on_restart(name)` each time one is restarted."""
        self.supervised = [Supervised(run, name=name, on_restart=on_restart) for name, run in runs]
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        for supervised in self.supervised:
            self._tasks.append(asyncio.create_task(supervised.run()))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    def liveness(self) -> list[str]:
        """Why the process should be restarted (a background task cannot be kept running)."""
        return [reason for task in self.supervised if (reason := task.health_reason())]
