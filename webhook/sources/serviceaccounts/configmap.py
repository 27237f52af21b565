"""ConfigMap mode: identities from ConfigMap pod-identity-webhook, key `config`.

The value is JSON mapping "namespace/name" to {"RoleARN", "Audience", "UseRegionalSTS",
"TokenExpiration"}. The namespace may be `*` or a pattern with `*` and `?`. An exact key
wins over patterns; among patterns the one with the most literal characters wins, then the
one with fewer `*`, then the key in sort order, so the answer never depends on JSON key order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import orjson

from webhook.mutation.serviceaccount import (
    IdentityDefaults,
    ServiceAccountIdentity,
    checked_role_arn,
    parse_expiration,
)
from webhook.mutation.wildcards import WILDCARDS, compile_wildcard, has_wildcard
from webhook.objectkeys import key_of
from webhook.sources.errors import ConfigError
from webhook.types import JsonObject

CONFIG_MAP_NAME = "pod-identity-webhook"
CONFIG_KEY = "config"
_FIELDS = {
    "rolearn": "RoleARN",
    "audience": "Audience",
    "useregionalsts": "UseRegionalSTS",
    "tokenexpiration": "TokenExpiration",
}


@dataclass(frozen=True, slots=True)
class _Pattern:
    key: str
    namespace: re.Pattern[str]
    literal_chars: int
    identity: ServiceAccountIdentity


class ConfigMapIdentities:
    """An immutable parsed mapping; `get` answers exact keys first, then namespace patterns."""

    def __init__(
        self, exact: dict[str, ServiceAccountIdentity], patterns: dict[str, list[_Pattern]]
    ) -> None:
        self._exact = exact
        self._patterns = patterns  # by ServiceAccount name, most specific first

    def __len__(self) -> int:
        return len(self._exact) + sum(len(p) for p in self._patterns.values())

    def get(self, namespace: str, name: str) -> ServiceAccountIdentity | None:
        found = self._exact.get(key_of(namespace, name))
        if found is not None:
            return found
        for pattern in self._patterns.get(name, ()):
            if pattern.namespace.fullmatch(namespace):
                return pattern.identity
        return None

    def entries(self) -> dict[str, ServiceAccountIdentity]:
        merged = dict(self._exact)
        for patterns in self._patterns.values():
            merged.update((p.key, p.identity) for p in patterns)
        return merged


EMPTY = ConfigMapIdentities({}, {})


def parse_config_map(
    obj: JsonObject, defaults: IdentityDefaults, *, source: str
) -> ConfigMapIdentities:
    data = obj.get("data") or {}
    if not isinstance(data, dict):
        raise ConfigError(source, "data", "expected a mapping of strings")
    config = data.get(CONFIG_KEY)
    if config is None or (isinstance(config, str) and not config.strip()):
        return EMPTY
    if not isinstance(config, str):
        raise ConfigError(source, f"data.{CONFIG_KEY}", "expected a string holding JSON")
    try:
        document = orjson.loads(config)
    except orjson.JSONDecodeError as exc:
        raise ConfigError(source, f"data.{CONFIG_KEY}", f"not valid JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise ConfigError(
            source, f"data.{CONFIG_KEY}", 'expected an object {"namespace/name": {"RoleARN": ...}}'
        )
    exact: dict[str, ServiceAccountIdentity] = {}
    patterns: dict[str, list[_Pattern]] = {}
    for key, value in document.items():
        where = f"data.{CONFIG_KEY}[{key!r}]"
        namespace, slash, name = key.partition("/")
        if not slash or not namespace or not name or "/" in name:
            raise ConfigError(
                source, where, "key must be NAMESPACE/NAME (NAMESPACE may use * and ?)"
            )
        if has_wildcard(name):
            raise ConfigError(
                source, where, "only the namespace may be a pattern, not the ServiceAccount name"
            )
        identity = _identity(value, defaults, where=f"{source}: {where}")
        regex = compile_wildcard(namespace)
        if regex is not None:
            literal = sum(c not in WILDCARDS for c in namespace)
            patterns.setdefault(name, []).append(_Pattern(key, regex, literal, identity))
        else:
            exact[key] = identity
    for found in patterns.values():
        found.sort(key=lambda p: (-p.literal_chars, p.key.count("*"), p.key))
    return ConfigMapIdentities(exact, patterns)


def _identity(value: object, defaults: IdentityDefaults, *, where: str) -> ServiceAccountIdentity:
    def fail(field: str, reason: str) -> ConfigError:
        return ConfigError(where, field, reason)

    if not isinstance(value, dict):
        raise fail("", 'expected an object {"RoleARN": ..., "Audience": ..., ...}')
    fields: dict[str, object] = {}
    for raw_field, field_value in value.items():
        canonical = _FIELDS.get(str(raw_field).lower())  # Go's encoding/json ignores case
        if canonical is None:
            raise fail(
                str(raw_field), f"unknown field; expected one of {', '.join(_FIELDS.values())}"
            )
        fields[canonical] = field_value
    role_arn = fields.get("RoleARN", "")
    if not isinstance(role_arn, str):
        raise fail("RoleARN", "expected a string")
    audience = fields.get("Audience") or defaults.audience
    if not isinstance(audience, str):
        raise fail("Audience", "expected a string")
    regional = fields.get("UseRegionalSTS", defaults.regional_sts)
    if not isinstance(regional, bool):
        raise fail("UseRegionalSTS", "expected true or false")
    expiration_value = fields.get("TokenExpiration") or 0
    if isinstance(expiration_value, bool) or not isinstance(expiration_value, int):
        raise fail("TokenExpiration", "expected a whole number of seconds")
    warnings: list[str] = []
    expiration = defaults.token_expiration
    if expiration_value:
        seconds, warning = parse_expiration(str(expiration_value), what=f"{where}: TokenExpiration")
        expiration = seconds if seconds is not None else expiration
        if warning:
            warnings.append(warning)
    if role_arn:
        role_arn, warning = checked_role_arn(role_arn, defaults, what=f"{where}: RoleARN")
        if warning:
            warnings.append(warning)
    # An entry has no field for an STS endpoint: --sts-endpoint-url applies, as to a
    # ServiceAccount without the annotation.
    endpoint = defaults.sts_endpoint_url
    return ServiceAccountIdentity(
        role_arn, audience, regional, expiration, tuple(warnings), sts_endpoint_url=endpoint
    )
