"""The issuer the local STS trusts: its name and JWKS, from files or fetched from --issuer-url.

This is the IAM OIDC provider of a real account: the issuer URL, the audiences it accepts
(its client IDs) and, fetched as STS fetches them, the discovery document and JWKS. Reading and
fetching are doctor's (webhook/doctor/inputs.py, webhook/doctor/fetch.py).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from webhook.doctor.inputs import published_documents
from webhook.doctor.issuer import Published

# How long fetched documents are used before they are fetched again, and how soon a failed
# fetch or a token with an unknown kid (a rotated key) may fetch again.
REFRESH_SECONDS = 300.0
RETRY_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class IssuerSource:
    issuer_url: str | None
    discovery: Path | None
    jwks: Path | None
    ca_file: Path | None = None


class IssuerDocuments:
    """Published documents, read once from files; with --issuer-url (and a document not given
    as a file), fetched again after REFRESH_SECONDS, or sooner when asked to (kid not found)."""

    def __init__(self, source: IssuerSource, *, clock: Callable[[], float] = time.monotonic):
        self._source = source
        self._clock = clock
        self._lock = threading.Lock()
        self._fetches = source.issuer_url is not None and (
            source.discovery is None or source.jwks is None
        )
        self._published = self._read()
        self._read_at = clock()

    def _read(self) -> Published:
        s = self._source
        return published_documents(
            discovery=s.discovery, jwks=s.jwks, issuer_url=s.issuer_url, ca_file=s.ca_file
        )

    def current(self, *, stale: bool = False) -> Published:
        """`stale`: the caller found the documents wanting (a kid not in the JWKS)."""
        if not self._fetches:
            return self._published
        with self._lock:
            age = self._clock() - self._read_at
            failed = bool(self._published.discovery_error or self._published.jwks_error)
            if age >= REFRESH_SECONDS or ((failed or stale) and age >= RETRY_SECONDS):
                self._published = self._read()
                self._read_at = self._clock()
            return self._published
