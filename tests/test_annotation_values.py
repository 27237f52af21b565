"""Annotation values are untrusted: each one parses as upstream's Go does, or is ignored with a
warning; none raises."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from webhook.mutation.csvrecord import CsvError, read_first_record
from webhook.mutation.defaults import MIN_TOKEN_EXPIRATION_SECONDS
from webhook.mutation.podidentity import parse_skip_containers
from webhook.mutation.serviceaccount import (
    MAX_TOKEN_EXPIRATION_SECONDS,
    IdentityDefaults,
    identity_from_annotations,
    parse_expiration,
    parse_int64,
)

P = "eks.amazonaws.com/"
DEFAULTS = IdentityDefaults(
    annotation_prefix="eks.amazonaws.com",
    audience="sts.amazonaws.com",
    regional_sts=False,
    token_expiration=86400,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("3600", 3600),
        ("+3600", 3600),
        ("-5", -5),
        ("0003600", 3600),
        ("9223372036854775807", 2**63 - 1),
        ("-9223372036854775808", -(2**63)),
        ("9223372036854775808", None),
        ("99999999999999999999", None),
        ("9" * 5000, None),
        ("0" * 5000 + "1", 1),
        ("3600\n", None),
        (" 3600", None),
        ("3_600", None),
        ("3600s", None),
        ("", None),
        ("+", None),
        ("٣٦٠٠", None),  # Arabic-Indic digits: int() takes them, Go does not
    ],
    ids=[
        "plain",
        "plus-sign",
        "negative",
        "leading-zeros",
        "int64-max",
        "int64-min",
        "int64-max-plus-one",
        "twenty-digits",
        "five-thousand-digits",
        "zeros-then-one",
        "trailing-newline",
        "leading-space",
        "underscore",
        "unit",
        "empty",
        "sign-only",
        "non-ascii-digits",
    ],
)
def test_parse_int64_matches_go_parseint(value: str, expected: int | None) -> None:
    assert parse_int64(value) == expected


@pytest.mark.parametrize(
    ("value", "seconds", "warning"),
    [
        ("3600", 3600, None),
        ("99999999999999999999", None, "is not a whole number of seconds; ignored"),
        ("9" * 5000, None, "(5000 characters)"),
        ("3600\n", None, "is not a whole number"),
        ("-5", MIN_TOKEN_EXPIRATION_SECONDS, "below the minimum"),
        ("4294967296", MAX_TOKEN_EXPIRATION_SECONDS, None),
        ("4294967297", MAX_TOKEN_EXPIRATION_SECONDS, "above kube-apiserver's limit"),
        ("9223372036854775807", MAX_TOKEN_EXPIRATION_SECONDS, "capped to 4294967296"),
    ],
    ids=[
        "fine",
        "twenty-digits",
        "five-thousand-digits",
        "trailing-newline",
        "negative",
        "at-limit",
        "over-limit",
        "int64-max",
    ],
)
def test_parse_expiration_never_raises(
    value: str, seconds: int | None, warning: str | None
) -> None:
    got, message = parse_expiration(value, what="x")
    assert got == seconds
    if warning is None:
        assert message is None
    else:
        assert message is not None and warning in message
        assert len(message) < 200


def test_service_account_with_a_giant_expiration_keeps_the_default_and_names_it_invalid() -> None:
    identity = identity_from_annotations(
        {P + "role-arn": "arn:aws:iam::111122223333:role/a", P + "token-expiration": "9" * 5000},
        DEFAULTS,
        source="ServiceAccount ns/sa",
    )
    assert identity.token_expiration == 86400
    assert identity.invalid == ("token-expiration",)
    assert "9" * 100 not in identity.warnings[0]


@pytest.mark.parametrize(
    ("value", "record"),
    [
        ("a,b", ["a", "b"]),
        ('"a,b",c', ["a,b", "c"]),
        ('"a""b"', ['a"b']),
        ("a,", ["a", ""]),
        (" a, b", [" a", " b"]),
        ("\n\na,b\nc", ["a", "b"]),
        ("a,b\r\n", ["a", "b"]),
        ("a\r", ["a"]),
        ('"a\nb",c', ["a\nb", "c"]),
        ('"a",', ["a", ""]),
    ],
    ids=[
        "two",
        "quoted-comma",
        "escaped-quote",
        "trailing-comma",
        "spaces-kept",
        "blank-lines-then-first-record",
        "crlf",
        "final-cr-dropped",
        "quoted-newline",
        "quoted-then-empty",
    ],
)
def test_read_first_record_as_go(value: str, record: list[str]) -> None:
    assert read_first_record(value) == record


@pytest.mark.parametrize(
    "value",
    ['a"b', 'a,b"c', '"a"b', '"abc', "", "\n\n", 'x,"y'],
    ids=[
        "bare-quote",
        "bare-quote-second-field",
        "text-after-closing-quote",
        "unterminated",
        "empty",
        "blank-lines-only",
        "unterminated-second",
    ],
)
def test_read_first_record_refuses_what_go_refuses(value: str) -> None:
    with pytest.raises(CsvError):
        read_first_record(value)


def test_skip_containers_with_a_bare_quote_skips_nothing_with_a_warning() -> None:
    skipped, warning = parse_skip_containers('app,side"car')
    assert skipped == frozenset()
    assert warning is not None and "no container skipped" in warning


def test_empty_skip_containers_skips_nothing_without_a_warning() -> None:
    assert parse_skip_containers("") == (frozenset(), None)


def test_mutate_prints_a_value_kube_apiserver_accepts_for_a_twenty_digit_expiration(
    tmp_path: Path,
) -> None:
    sa_file = tmp_path / "sa.yaml"
    sa_file.write_text(
        "kind: ServiceAccount\nmetadata: {name: app, namespace: ns, annotations: "
        "{eks.amazonaws.com/role-arn: 'arn:aws:iam::111122223333:role/a', "
        "eks.amazonaws.com/token-expiration: '99999999999999999999'}}\n"
    )
    pod_file = tmp_path / "pod.yaml"
    pod_file.write_text(
        "kind: Pod\nmetadata: {name: p, namespace: ns}\n"
        "spec: {serviceAccountName: app, containers: [{name: c, image: i}]}\n"
    )
    command = [sys.executable, "-m", "webhook", "mutate", "-f", str(pod_file), "-o", "json"]
    done = subprocess.run(
        [*command, "--service-accounts-file", str(sa_file)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    assert '"expirationSeconds": 86400' in done.stdout.replace(":86400", ": 86400")
    assert "is not a whole number of seconds; ignored" in done.stderr
