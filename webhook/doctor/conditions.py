"""IAM condition operators as STS evaluates a trust policy's `Condition` block.

Semantics (IAM User Guide, "Condition operators" and "Multivalued context keys"):
- several values for one key in one operator: OR; several keys or operators: AND;
- a key missing from the request: the positive operators are false, the negated ones
  (StringNot...) true, `...IfExists` true, `ForAnyValue:` false, `ForAllValues:` true;
- `StringLike` matches `*` (any run of characters, empty included) and `?` (one character);
  `StringEquals` compares literally, so a `*` in its value matches only a `*`.
An operator not listed here is reported as unknown (None), never guessed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

SET_PREFIXES = ("ForAnyValue", "ForAllValues")
IF_EXISTS = "IfExists"


def _equals(value: str, pattern: str) -> bool:
    return value == pattern


def _equals_ignore_case(value: str, pattern: str) -> bool:
    return value.casefold() == pattern.casefold()


@lru_cache(maxsize=256)
def _like_regex(pattern: str) -> re.Pattern[str]:
    parts = (".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern)
    return re.compile("".join(parts), re.DOTALL)


def _like(value: str, pattern: str) -> bool:
    return _like_regex(pattern).fullmatch(value) is not None


# base operator -> (matcher, negated)
MATCHERS: dict[str, tuple[Callable[[str, str], bool], bool]] = {
    "StringEquals": (_equals, False),
    "StringNotEquals": (_equals, True),
    "StringEqualsIgnoreCase": (_equals_ignore_case, False),
    "StringNotEqualsIgnoreCase": (_equals_ignore_case, True),
    "StringLike": (_like, False),
    "StringNotLike": (_like, True),
}


@dataclass(frozen=True, slots=True)
class Operator:
    text: str  # as written in the policy, e.g. "ForAnyValue:StringLike"
    base: str
    set_prefix: str  # "", "ForAnyValue" or "ForAllValues"
    if_exists: bool

    @property
    def known(self) -> bool:
        return self.base in MATCHERS or (self.base == "Null" and not self.set_prefix)


def parse_operator(text: str) -> Operator:
    prefix, _, base = text.rpartition(":")
    if_exists = base.endswith(IF_EXISTS) and base != IF_EXISTS
    base = base.removesuffix(IF_EXISTS) if if_exists else base
    if prefix and prefix not in SET_PREFIXES:
        base = text  # an unknown prefix makes the whole operator unknown
        prefix = ""
    return Operator(text, base, prefix, if_exists)


@dataclass(frozen=True, slots=True)
class Clause:
    """One key under one operator: `"StringLike": {"KEY": ["v1", "v2"]}`."""

    operator: Operator
    key: str
    values: tuple[str, ...]


def clauses_of(condition: object) -> list[Clause]:
    """The clauses of a `Condition` block; a malformed block raises ValueError naming the part."""
    if condition is None:
        return []
    if not isinstance(condition, Mapping):
        raise ValueError(f"Condition is a {type(condition).__name__}; expected an object")
    clauses = []
    for operator_text, keys in condition.items():
        if not isinstance(keys, Mapping):
            raise ValueError(f"Condition.{operator_text} is not an object of key: value(s)")
        operator = parse_operator(str(operator_text))
        for key, raw in keys.items():
            values = raw if isinstance(raw, list) else [raw]
            clauses.append(Clause(operator, str(key), tuple(_text(value) for value in values)))
    return clauses


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def evaluate(clause: Clause, context: Mapping[str, Sequence[str]]) -> bool | None:
    """True or False as IAM decides; None for an operator or a policy variable we do not know.

    Condition keys are case-insensitive in IAM, values are not (except ...IgnoreCase).
    """
    operator = clause.operator
    if not operator.known or any("${" in value for value in clause.values):
        return None
    present = {key.casefold(): values for key, values in context.items()}
    seen = present.get(clause.key.casefold())
    if operator.base == "Null":
        wants_missing = [value.lower() == "true" for value in clause.values]
        return (not seen) in wants_missing
    matcher, negated = MATCHERS[operator.base]

    def admits(value: str) -> bool:
        return any(matcher(value, pattern) for pattern in clause.values) != negated

    if not seen:
        if operator.set_prefix == "ForAllValues" or operator.if_exists:
            return True
        return negated and operator.set_prefix != "ForAnyValue"
    if operator.set_prefix == "ForAllValues":
        return all(admits(value) for value in seen)
    if operator.set_prefix == "ForAnyValue" or not negated:
        return any(admits(value) for value in seen)
    return all(admits(value) for value in seen)
