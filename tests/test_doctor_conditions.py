"""IAM condition operators as STS evaluates them in a trust policy: one behaviour per row."""

from __future__ import annotations

import pytest

from webhook.doctor.conditions import Clause, clauses_of, evaluate, parse_operator

KEY = "oidc.example.com:aud"


def judge(operator: str, values: list[str], context: list[str] | None) -> bool | None:
    clause = Clause(parse_operator(operator), KEY, tuple(values))
    return evaluate(clause, {} if context is None else {KEY: context})


@pytest.mark.parametrize(
    ("operator", "values", "context", "expected"),
    [
        ("StringEquals", ["a"], ["a"], True),
        ("StringEquals", ["a", "b"], ["b"], True),  # several values: OR
        ("StringEquals", ["a*"], ["abc"], False),  # literal: * is only a *
        ("StringEquals", ["a*"], ["a*"], True),
        ("StringEquals", ["A"], ["a"], False),
        ("StringEqualsIgnoreCase", ["A"], ["a"], True),
        ("StringNotEquals", ["a"], ["b"], True),
        ("StringNotEquals", ["a", "b"], ["b"], False),
        ("StringNotEqualsIgnoreCase", ["A"], ["a"], False),
        ("StringLike", ["a*"], ["abc"], True),
        ("StringLike", ["a*"], ["a"], True),  # * matches the empty string
        ("StringLike", ["a?c"], ["abc"], True),
        ("StringLike", ["a?c"], ["ac"], False),  # ? is exactly one character
        ("StringLike", ["a.c"], ["abc"], False),  # regex characters are literal
        ("StringNotLike", ["a*"], ["b"], True),
        ("StringNotLike", ["a*"], ["ab"], False),
        ("ForAnyValue:StringEquals", ["a"], ["x", "a"], True),
        ("ForAnyValue:StringEquals", ["a"], ["x", "y"], False),
        ("ForAllValues:StringEquals", ["a", "b"], ["a", "b"], True),
        ("ForAllValues:StringEquals", ["a"], ["a", "b"], False),
        ("ForAllValues:StringLike", ["a*"], ["ab", "ac"], True),
        ("StringEquals", ["a"], ["x", "a"], True),  # a multivalued key without a prefix: any
        # key missing from the request
        ("StringEquals", ["a"], None, False),
        ("StringNotEquals", ["a"], None, True),
        ("StringEqualsIfExists", ["a"], None, True),
        ("StringEqualsIfExists", ["a"], ["b"], False),
        ("StringNotLikeIfExists", ["a*"], ["ab"], False),
        ("ForAnyValue:StringEquals", ["a"], None, False),
        ("ForAllValues:StringEquals", ["a"], None, True),
        ("ForAnyValue:StringNotEquals", ["a"], None, False),
        ("Null", ["true"], None, True),
        ("Null", ["false"], None, False),
        ("Null", ["false"], ["a"], True),
        # never guessed
        ("ArnLike", ["a"], ["a"], None),
        ("NumericEquals", ["1"], ["1"], None),
        ("Sometimes:StringEquals", ["a"], ["a"], None),
        ("ForAnyValue:Null", ["true"], None, None),
        ("StringLike", ["${aws:username}"], ["a"], None),
    ],
)
def test_operator_semantics(
    operator: str, values: list[str], context: list[str] | None, expected: bool | None
) -> None:
    assert judge(operator, values, context) is expected


def test_condition_keys_are_case_insensitive_values_are_not() -> None:
    clause = Clause(parse_operator("StringEquals"), "OIDC.example.com:AUD", ("a",))
    assert evaluate(clause, {KEY: ["a"]}) is True
    assert evaluate(clause, {KEY: ["A"]}) is False


def test_a_condition_block_is_one_clause_per_operator_and_key() -> None:
    clauses = clauses_of({"StringEquals": {"k:sub": "s", "k:aud": ["a", "b"]}, "Null": {"x": True}})
    assert [(c.operator.text, c.key, c.values) for c in clauses] == [
        ("StringEquals", "k:sub", ("s",)),
        ("StringEquals", "k:aud", ("a", "b")),
        ("Null", "x", ("true",)),
    ]


@pytest.mark.parametrize("block", [["StringEquals"], {"StringEquals": "k:sub"}])
def test_a_malformed_condition_block_is_refused(block: object) -> None:
    with pytest.raises(ValueError, match="Condition"):
        clauses_of(block)
