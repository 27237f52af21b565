from __future__ import annotations

from pathlib import Path


class ConfigError(ValueError):
    """A config file or object that cannot be used: names the source, the field and the reason."""

    def __init__(self, source: str | Path, field: str, reason: str) -> None:
        self.source = str(source)
        self.field = field
        self.reason = reason
        where = f"{self.source}: {field}" if field else self.source
        super().__init__(f"{where}: {reason}")
