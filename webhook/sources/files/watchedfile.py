"""Reload a config file when its content changes (the poll itself is contentpoll.py's)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from webhook.sources.errors import ConfigError
from webhook.sources.files.contentpoll import (
    POLL_INTERVAL_SECONDS,
    Content,
    ContentPoll,
    Refused,
    poll_forever,
)

logger = logging.getLogger(__name__)

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
        self._content = ContentPoll(self._read, self._take, retake_after_refusal=True)
        self.last_error = ""

    @property
    def may_be_absent(self) -> bool:
        return self._absent_content is not None

    def load_now(self) -> None:
        """First load: raises ConfigError so start-up fails with the file, field and reason."""
        content = self._read()
        self._load(content[0])
        self._content.took(content)
        self.last_error = ""

    def poll(self) -> bool:
        """Reload if the content changed; True when a new config was taken."""
        try:
            if not self._content.poll():
                return False
        except (ConfigError, Refused) as exc:  # unreadable (retried), or a rejected version
            self._failed(str(exc))
            return False
        self.last_error = ""
        logger.info("reloaded %s from %s", self.name, self.path)
        if self._on_reload:
            self._on_reload(self.name, True)
        return True

    async def watch(self, interval: float = POLL_INTERVAL_SECONDS) -> None:
        await poll_forever(self.poll, interval)

    def _take(self, content: Content) -> None:
        try:
            self._load(content[0])
        except ConfigError as exc:
            raise Refused(str(exc)) from exc
        except Exception as exc:  # a bug in a parser must not end the reloads
            # The type only: the message may quote a value from the file.
            error = ConfigError(self.path, "", f"cannot be loaded: {type(exc).__name__}")
            raise Refused(str(error)) from exc

    def _read(self) -> Content:
        try:
            return (self.path.read_bytes(),)
        except FileNotFoundError as exc:
            if self._absent_content is not None:
                return (self._absent_content,)
            raise ConfigError(self.path, "", f"cannot read file: {exc.strerror or exc}") from exc
        except OSError as exc:
            raise ConfigError(self.path, "", f"cannot read file: {exc.strerror or exc}") from exc

    def _failed(self, message: str) -> None:
        if message != self.last_error:
            logger.error("rejected %s, keeping the previous one: %s", self.name, message)
        self.last_error = message
        if self._on_reload:
            self._on_reload(self.name, False)
