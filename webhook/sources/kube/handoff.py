"""Messages from a watch thread to the event loop, and the one path they take.

The kubernetes client is synchronous, so each watch runs in a thread; whatever it learns
reaches the loop only as one of these messages, sent through `Handoff`.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class Listed(Generic[V]):
    entries: dict[str, V]  # a full list, keyed "namespace/name"


@dataclass(frozen=True, slots=True)
class Put(Generic[V]):
    key: str
    value: V


@dataclass(frozen=True, slots=True)
class Deleted:
    key: str


@dataclass(frozen=True, slots=True)
class Failed:
    error: str
    at: float  # time.monotonic() when it failed


@dataclass(frozen=True, slots=True)
class Crashed:
    error: str  # the exception that ended the thread
    at: float


Message = Listed[V] | Put[V] | Deleted | Failed | Crashed


class Handoff(Generic[V]):
    """Thread side: the one path from a watch thread to the loop.

    Once the loop is closed (the server is shutting down) it sets `stop` instead.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        receive: Callable[[Message[V]], None],
        stop: threading.Event,
    ) -> None:
        self._loop = loop
        self._receive = receive
        self._stop = stop

    def __call__(self, message: Message[V]) -> None:
        if self._loop.is_closed():
            self._stop.set()
            return
        try:
            self._loop.call_soon_threadsafe(self._receive, message)
        except RuntimeError:  # the loop closed meanwhile
            self._stop.set()
