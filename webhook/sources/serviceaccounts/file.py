"""ServiceAccounts from a YAML file: one object, a multi-document stream, or a v1 List."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from webhook.mutation.serviceaccount import (
    IdentityDefaults,
    ServiceAccountIdentity,
    identity_of_service_account,
)
from webhook.objectkeys import key_of
from webhook.sources.errors import ConfigError

logger = logging.getLogger(__name__)

_LIST_KINDS = ("List", "ServiceAccountList")

SkipHook = Callable[[str], None]  # called with "namespace/name" of an object skipped


def parse_service_accounts(
    content: bytes,
    defaults: IdentityDefaults,
    *,
    source: str | Path,
    on_skip: SkipHook | None = None,
) -> dict[str, ServiceAccountIdentity]:
    """Every ServiceAccount in the file; a structural error rejects the file (ConfigError).

    One object whose annotations cannot be read (a bug: annotation values themselves never
    fail) is left out, logged and reported to `on_skip`; the others are loaded.
    """
    try:
        documents = list(yaml.safe_load_all(content))
    except yaml.YAMLError as exc:
        raise ConfigError(source, "", f"not valid YAML: {exc}") from exc
    entries: dict[str, ServiceAccountIdentity] = {}
    for doc_index, document in enumerate(documents):
        if document is None:
            continue
        where = f"document {doc_index + 1}"
        if not isinstance(document, dict):
            raise ConfigError(source, where, "expected a ServiceAccount or a List of them")
        kind = document.get("kind")
        if kind in _LIST_KINDS:
            items = document.get("items")
            if items is None:
                items = []
            if not isinstance(items, list):
                raise ConfigError(source, f"{where}.items", "expected a list")
            for item_index, item in enumerate(items):
                _add(entries, item, defaults, source, f"{where}.items[{item_index}]", on_skip)
        else:
            _add(entries, document, defaults, source, where, on_skip)
    return entries


def _add(
    entries: dict[str, ServiceAccountIdentity],
    obj: Any,
    defaults: IdentityDefaults,
    source: str | Path,
    where: str,
    on_skip: SkipHook | None,
) -> None:
    if not isinstance(obj, dict) or obj.get("kind") != "ServiceAccount":
        kind = obj.get("kind") if isinstance(obj, dict) else type(obj).__name__
        raise ConfigError(source, f"{where}.kind", f"expected ServiceAccount, found {kind!r}")
    metadata = obj.get("metadata")
    if not isinstance(metadata, dict):
        raise ConfigError(source, f"{where}.metadata", "missing; a ServiceAccount needs a name")
    name = metadata.get("name")
    namespace = metadata.get("namespace", "default")
    if not isinstance(name, str) or not name:
        raise ConfigError(source, f"{where}.metadata.name", "missing or not a string")
    if not isinstance(namespace, str) or not namespace:
        raise ConfigError(source, f"{where}.metadata.namespace", "not a string")
    annotations = metadata.get("annotations") or {}
    if not isinstance(annotations, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in annotations.items()
    ):
        raise ConfigError(
            source,
            f"{where}.metadata.annotations",
            'expected a mapping of strings to strings (quote values such as "true" and "3600")',
        )
    key = key_of(namespace, name)
    try:
        entries[key] = identity_of_service_account(namespace, name, annotations, defaults)
    except Exception as exc:  # one object must not cost the whole file
        logger.error(
            "%s: %s (ServiceAccount %s) skipped: %s", source, where, key, type(exc).__name__
        )
        if on_skip is not None:
            on_skip(key)
