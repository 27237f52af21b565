"""The ConfigMap mode source: the watched pod-identity-webhook ConfigMap as an identity lookup."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from webhook.mutation.serviceaccount import IdentityDefaults, ServiceAccountIdentity
from webhook.sources.errors import ConfigError
from webhook.sources.files.watchedfile import ReloadHook
from webhook.sources.serviceaccounts.configmap import (
    CONFIG_KEY,
    EMPTY,
    ConfigMapIdentities,
    parse_config_map,
)
from webhook.types import JsonObject

logger = logging.getLogger(__name__)

SOURCE_NAME = "configmap"


@dataclass(frozen=True, slots=True)
class ConfigMapVersion:
    text: str
    parsed: ConfigMapIdentities | None
    error: str


class ConfigMapSource:
    """Answers `get(namespace, name)` from the last good ConfigMap; a bad one is logged and kept out."""

    def __init__(self, defaults: IdentityDefaults, *, on_reload: ReloadHook) -> None:
        self.defaults = defaults
        self.current: ConfigMapIdentities = EMPTY
        self.last_error = ""
        self._on_reload = on_reload
        self._applied: str | None = None
        self._rejected: str | None = None

    def get(self, namespace: str, name: str) -> ServiceAccountIdentity | None:
        return self.current.get(namespace, name)

    # thread side

    def begin_list(self) -> None:
        return None

    def convert(self, namespace: str, name: str, obj: JsonObject) -> ConfigMapVersion:
        source = f"ConfigMap {namespace}/{name}"
        data = obj.get("data")
        text = data.get(CONFIG_KEY) if isinstance(data, dict) else None
        text = text if isinstance(text, str) else repr(data)
        try:
            return ConfigMapVersion(text, parse_config_map(obj, self.defaults, source=source), "")
        except ConfigError as exc:
            return ConfigMapVersion(text, None, str(exc))

    # loop side

    def replace_all(self, entries: dict[str, ConfigMapVersion]) -> None:
        if not entries:
            self._apply(ConfigMapVersion("", EMPTY, ""), absent=True)
        for version in entries.values():
            self._apply(version)

    def put(self, key: str, value: ConfigMapVersion) -> None:
        self._apply(value)

    def delete(self, key: str) -> None:
        self._apply(ConfigMapVersion("", EMPTY, ""), absent=True)

    def _apply(self, version: ConfigMapVersion, *, absent: bool = False) -> None:
        if version.parsed is None:
            if version.text != self._rejected:
                logger.error(
                    "rejected ConfigMap identities, keeping the previous ones: %s", version.error
                )
                self._on_reload(SOURCE_NAME, False)
            self._rejected = version.text
            self.last_error = version.error
            return
        self._rejected = None
        self.last_error = ""
        if version.text == self._applied:
            return
        self._applied = version.text
        self.current = version.parsed
        if absent:
            logger.info("ConfigMap identities: none (the ConfigMap is absent)")
        else:
            logger.info("ConfigMap identities: %d entries", len(version.parsed))
        self._on_reload(SOURCE_NAME, True)
