from __future__ import annotations

import json

import pytest

from webhook.mutation.serviceaccount import IdentityDefaults
from webhook.sources.errors import ConfigError
from webhook.sources.serviceaccounts.configmap import parse_config_map

DEFAULTS = IdentityDefaults(
    annotation_prefix="eks.amazonaws.com",
    audience="sts.amazonaws.com",
    regional_sts=False,
    token_expiration=86400,
)
ARN = "arn:aws:iam::111122223333:role/"


def config_map(config: object) -> dict[str, object]:
    return {
        "metadata": {"namespace": "eks", "name": "pod-identity-webhook"},
        "data": {"config": json.dumps(config)},
    }


MAPPING = {
    "payments/api": {"RoleARN": ARN + "exact"},
    "*/api": {"RoleARN": ARN + "any"},
    "team-*/api": {"RoleARN": ARN + "team"},
    "team-?/api": {"RoleARN": ARN + "team-one-char"},
}


@pytest.mark.parametrize(
    ("namespace", "name", "role"),
    [
        ("payments", "api", "exact"),
        ("team-a", "api", "team-one-char"),
        ("team-ab", "api", "team"),
        ("other", "api", "any"),
        ("payments", "web", None),
    ],
    ids=[
        "exact-wins",
        "most-literal-pattern-wins",
        "star-pattern",
        "star-namespace",
        "name-must-match",
    ],
)
def test_lookup_prefers_exact_key_then_most_specific_namespace_pattern(
    namespace: str, name: str, role: str | None
) -> None:
    found = parse_config_map(config_map(MAPPING), DEFAULTS, source="cm").get(namespace, name)
    assert (found.role_arn if found else None) == (ARN + role if role else None)


def test_missing_fields_take_flag_defaults_and_zero_expiration_means_default() -> None:
    parsed = parse_config_map(
        config_map(
            {
                "a/b": {"RoleARN": ARN + "r", "TokenExpiration": 0},
                "a/c": {
                    "rolearn": ARN + "c",
                    "Audience": "x",
                    "UseRegionalSTS": True,
                    "TokenExpiration": 3600,
                },
            }
        ),
        DEFAULTS,
        source="cm",
    )
    b, c = parsed.get("a", "b"), parsed.get("a", "c")
    assert b is not None and (b.audience, b.regional_sts, b.token_expiration) == (
        "sts.amazonaws.com",
        False,
        86400,
    )
    assert c is not None and (c.role_arn, c.audience, c.regional_sts, c.token_expiration) == (
        ARN + "c",
        "x",
        True,
        3600,
    )


def test_absent_config_key_means_no_entries() -> None:
    parsed = parse_config_map({"metadata": {}, "data": {}}, DEFAULTS, source="cm")
    assert len(parsed) == 0


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ("{not json", "not valid JSON"),
        (["a/b"], "expected an object"),
        ({"no-slash": {}}, "key must be NAMESPACE/NAME"),
        ({"ns/a*": {}}, "only the namespace may be a pattern"),
        ({"ns/a": {"RoleARN": 5}}, "RoleARN: expected a string"),
        ({"ns/a": {"UseRegionalSTS": "yes"}}, "UseRegionalSTS: expected true or false"),
        ({"ns/a": {"TokenExpiration": "1h"}}, "TokenExpiration: expected a whole number"),
        ({"ns/a": {"Role": "x"}}, "Role: unknown field"),
    ],
    ids=[
        "bad-json",
        "not-object",
        "bad-key",
        "pattern-name",
        "role-type",
        "regional-type",
        "expiration-type",
        "unknown-field",
    ],
)
def test_malformed_config_is_rejected_naming_the_field(config: object, message: str) -> None:
    cm = {
        "metadata": {},
        "data": {"config": config if isinstance(config, str) else json.dumps(config)},
    }
    with pytest.raises(ConfigError, match=message):
        parse_config_map(cm, DEFAULTS, source="ConfigMap eks/pod-identity-webhook")
