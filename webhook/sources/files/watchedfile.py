"""Reload a file when its content changes.

Polls rather than using inotify: Kubernetes updates mounted ConfigMaps and Secrets by swapping
a symlink, which inotify on the file itself misses; a content hash catches every real change
and ignores touches.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable
from pathlib import Path

from webhook.sources.errors import ConfigError

logger = logging.getLogger(__name__)

POLL_INTERVAL_SECONDS = 1.0

ReloadHook = Callable[[str, bool], None]  # (source name, success)


class WatchedFile:
    """Calls `load(content)` at start and whenever the file's bytes change.

    `load` raises ConfigError for content it rejects; the previous config then stays in force.
    """

    def __init__(
        self,
        path: Path,
        load: Callable[[bytes], None],
        *,
        name: str,
        on_reload: ReloadHook | None = None,
        absent_content: bytes | None = None,
    ) -> None:
        """`absent_content`: load this while the file does not exist, instead of failing."""
        self.path = path
        self.name = name
        self._load = load
        self._absent_content = absent_content
        self._on_reload = on_reload
        self._digest: bytes | None = None
        self.last_error = ""

    def load_now(self) -> None:
        """First load: raises ConfigError so start-up fails with the file, field and reason."""
        content = self._read()
        self._load(content)
        self._digest = hashlib.sha256(content).digest()
        self.last_error = ""

    def poll(self) -> bool:
        """Reload if the content changed; True when a new config was taken."""
        try:
            content = self._read()
        except ConfigError as exc:
            self._failed(exc)
            return False
        digest = hashlib.sha256(content).digest()
        if digest == self._digest:
            return False
        try:
            self._load(content)
        except ConfigError as exc:
            self._digest = digest  # report a bad version once, not every poll
            self._failed(exc)
            return False
        except Exception as exc:  # a bug in a parser must not end the reloads
            self._digest = digest
            # The type only: the message may quote a value from the file.
            self._failed(ConfigError(self.path, "", f"cannot be loaded: {type(exc).__name__}"))
            return False
        self._digest = digest
        self.last_error = ""
        logger.info("reloaded %s from %s", self.name, self.path)
        if self._on_reload:
            self._on_reload(self.name, True)
        return True

    async def watch(self, interval: float = POLL_INTERVAL_SECONDS) -> None:
        while True:
            await asyncio.sleep(interval)
            self.poll()

    def _read(self) -> bytes:
        try:
            return self.path.read_bytes()
        except FileNotFoundError as exc:
            if self._absent_content is not None:
                return self._absent_content
            raise ConfigError(self.path, "", f"cannot read file: {exc.strerror or exc}") from exc
        except OSError as exc:
            raise ConfigError(self.path, "", f"cannot read file: {exc.strerror or exc}") from exc

    def _failed(self, exc: ConfigError) -> None:
        message = str(exc)
        if message != self.last_error:
            logger.error("rejected %s, keeping the previous one: %s", self.name, message)
        self.last_error = message
        if self._on_reload:
            self._on_reload(self.name, False)
