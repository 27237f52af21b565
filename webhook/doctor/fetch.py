"""Fetching the issuer's discovery document and JWKS as STS would: HTTPS only, small, quick."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

FETCH_TIMEOUT_SECONDS = 5.0
# a JWKS of a handful of keys is a few KiB: anything past this cap is not an issuer document
MAX_DOCUMENT_BYTES = 256 * 1024


class FetchError(Exception):
    pass


def fetch_json(url: str, *, ca_file: Path | None = None) -> Any:
    """The JSON object at an https:// URL; FetchError says what went wrong, as one line."""
    if not url.startswith("https://"):
        raise FetchError(f"{url}: not https://; STS fetches only over HTTPS")
    context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(
            request, timeout=FETCH_TIMEOUT_SECONDS, context=context
        ) as response:
            data = response.read(MAX_DOCUMENT_BYTES + 1)
    except urllib.error.HTTPError as exc:
        raise FetchError(f"{url}: HTTP {exc.code} {exc.reason}") from exc
    except urllib.error.URLError as exc:
        raise FetchError(f"{url}: {exc.reason}") from exc
    except (OSError, ValueError) as exc:
        raise FetchError(f"{url}: {type(exc).__name__}: {exc}") from exc
    if len(data) > MAX_DOCUMENT_BYTES:
        raise FetchError(f"{url}: larger than {MAX_DOCUMENT_BYTES} bytes")
    try:
        document = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise FetchError(f"{url}: not JSON") from exc
    if not isinstance(document, dict):
        raise FetchError(f"{url}: expected a JSON object")
    return document
