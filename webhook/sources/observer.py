"""What the sources report while they run, to one observer (the webhook counts it as metrics).

Every source takes this one object instead of a callback per event; the assembly
(webhook/assembly/) hands them the observer that feeds the metrics (docs/architecture.md).
"""

from __future__ import annotations

from typing import Protocol


class SourceObserver(Protocol):
    def config_reloaded(self, source: str, success: bool) -> None:
        """A file or ConfigMap was (re)loaded, or its new content was refused."""

    def cache_reported(self, size: int) -> None:
        """The ServiceAccount cache now holds `size` entries, with a role or not."""

    def watch_restarted(self, resource: str, reason: str) -> None:
        """A cluster watch of `resource` started again from a fresh list, for `reason`."""

    def object_skipped(self, source: str) -> None:
        """An object of `source` could not be read and was left out."""

    def annotations_invalid(self, annotations: tuple[str, ...]) -> None:
        """One ServiceAccount's annotations (without the prefix) were ignored or adjusted."""

    def task_restarted(self, name: str) -> None:
        """A background task (a watch, a file reload loop) died and was started again."""
