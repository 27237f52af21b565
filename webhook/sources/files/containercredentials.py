"""The EKS Pod Identity (container credentials) file: which ServiceAccounts use that mode."""

from __future__ import annotations

from pathlib import Path

import orjson

from webhook.objectkeys import key_of
from webhook.sources.errors import ConfigError


def parse_container_credentials(content: bytes, *, source: str | Path) -> frozenset[str]:
    """Keys "namespace/name" of the listed ServiceAccounts; an empty file lists none."""
    if not content.strip():
        return frozenset()
    try:
        document = orjson.loads(content)
    except orjson.JSONDecodeError as exc:
        raise ConfigError(source, "", f"not valid JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise ConfigError(source, "", 'expected an object {"identities": [...]}')
    identities = document.get("identities")
    if identities is None:
        identities = []
    if not isinstance(identities, list):
        raise ConfigError(source, "identities", "expected a list")
    keys: set[str] = set()
    for index, item in enumerate(identities):
        where = f"identities[{index}]"
        if not isinstance(item, dict):
            raise ConfigError(source, where, 'expected {"namespace": ..., "serviceAccount": ...}')
        namespace = item.get("namespace")
        account = item.get("serviceAccount")
        if not isinstance(namespace, str) or not namespace:
            raise ConfigError(source, f"{where}.namespace", "missing or not a string")
        if not isinstance(account, str) or not account:
            raise ConfigError(source, f"{where}.serviceAccount", "missing or not a string")
        keys.add(key_of(namespace, account))
    return frozenset(keys)
