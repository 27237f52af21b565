"""Polling files by content: the mechanism under WatchedFile and the TLS certificate reloader.

Polls rather than using inotify: Kubernetes updates mounted ConfigMaps and Secrets by swapping
a symlink, which inotify on the file itself misses; a content hash catches every real change
and ignores touches.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable

POLL_INTERVAL_SECONDS = 1.0

Content = tuple[bytes, ...]  # the bytes of each file polled together, in a fixed order


class Refused(Exception):
    """Raised by `load` for a version it will not take: not offered again until it changes."""


def digest_of(content: Content) -> bytes:
    return hashlib.sha256(b"\0".join(content)).digest()


class ContentPoll:
    """Hands `load` what `read` returns whenever it changed since the version last taken or refused.

    What `read` or `load` raise goes to the caller, which reports it. A version `load` refuses
    (Refused) is remembered and not offered again; after any other error the next poll retries.
    `retake_after_refusal`: going back to the version in force after a refused one loads it
    again (a config file's loader then clears its error); otherwise that is no change.
    """

    def __init__(
        self,
        read: Callable[[], Content],
        load: Callable[[Content], None],
        *,
        retake_after_refusal: bool = False,
    ) -> None:
        self._read = read
        self._load = load
        self._retake_after_refusal = retake_after_refusal
        self._taken: bytes | None = None
        self._refused: bytes | None = None

    def took(self, content: Content) -> None:
        """Record `content` as the version in force (loaded by the caller)."""
        self._taken = digest_of(content)
        self._refused = None

    def poll(self) -> bool:
        """True when `load` took a new version; False when nothing changed."""
        content = self._read()
        digest = digest_of(content)
        if digest == self._taken or digest == self._refused:
            return False
        try:
            self._load(content)
        except Refused:
            self._refused = digest
            if self._retake_after_refusal:
                self._taken = None
            raise
        self._taken = digest
        self._refused = None
        return True


async def poll_forever(poll: Callable[[], object], interval: float) -> None:
    """Call `poll` every `interval` seconds until cancelled; `poll` must not raise."""
    while True:
        await asyncio.sleep(interval)
        poll()
