"""Flag values as Go's flag packages read them: durations ("1m30s") and booleans ("--flag=false"),
and byte sizes as the docs write them ("6Mi", "6 MiB", "32KiB" or plain bytes).

The `*_flag` helpers and the `integer` type raise argparse.ArgumentTypeError, so a bad value is
reported as one line naming the value and the expected form (webhook/cli.py prints it).
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from typing import NamedTuple, TypeVar

from webhook.mutation.gostrconv import parse_bool

T = TypeVar("T")

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_DURATION_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}


def parse_duration(text: str) -> float:
    """Seconds from a Go-style duration ("500ms", "1m30s", "60s") or a bare number of seconds."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    pos = 0
    total = 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text:
        raise ValueError(f"not a duration: {text!r} (expected e.g. 500ms, 60s, 1m30s)")
    return total


# Binary units as docs/production.md writes them (6 MiB) and as Kubernetes quantities do (6Mi);
# SI units (k, M, G) as Kubernetes quantities mean them: powers of 1000.
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([A-Za-z]*)")
_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "m": 1000**2,
    "mb": 1000**2,
    "g": 1000**3,
    "gb": 1000**3,
    "ki": 1024,
    "kib": 1024,
    "mi": 1024**2,
    "mib": 1024**2,
    "gi": 1024**3,
    "gib": 1024**3,
}
SIZE_FORM = "a size in bytes such as 6291456, 6Mi, 6MiB, 32Ki or 32KiB"


def parse_size(text: str) -> int:
    """Bytes from a plain number or a number with a unit: Ki/KiB, Mi/MiB, Gi/GiB (powers of
    1024) or k/KB, M/MB, G/GB (powers of 1000); case and a space before the unit do not matter."""
    match = _SIZE.fullmatch(text.strip())
    unit = _SIZE_UNITS.get(match.group(2).lower()) if match else None
    if match is None or unit is None:
        raise ValueError(f"not a size: {text!r} (expected {SIZE_FORM})")
    size = float(match.group(1)) * unit
    if size != int(size):
        raise ValueError(f"not a whole number of bytes: {text!r} (expected {SIZE_FORM})")
    return int(size)


class RequiredLabel(NamedTuple):
    """--require-identity-label: the label that asks for an identity (webhook/assembly/strict.py)."""

    key: str
    value: str

    def __str__(self) -> str:
        return f"{self.key}={self.value}"


def parse_required_label(text: str) -> RequiredLabel:
    """KEY=VALUE, as the strict component's objectSelector matchLabels entry; ValueError if not."""
    key, equals, value = text.partition("=")
    if not equals or not key.strip() or key != key.strip() or value != value.strip():
        raise ValueError(f"not a label: {text!r} (expected KEY=VALUE)")
    return RequiredLabel(key, value)


def _argument_type(parse: Callable[[str], T]) -> Callable[[str], T]:
    """`parse` as an argparse type: its ValueError becomes the message argparse prints as is
    (a plain ValueError would print as "invalid parse_duration value")."""

    def convert(text: str) -> T:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from exc

    convert.__name__ = parse.__name__
    return convert


def _parse_integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"not a whole number: {text!r} (expected digits, e.g. 443)") from None


integer = _argument_type(_parse_integer)
duration = _argument_type(parse_duration)
size = _argument_type(parse_size)
boolean = _argument_type(parse_bool)


def bool_flag(parser: argparse._ActionsContainer, flag: str, help_text: str) -> None:
    # Go's pflag accepts both `--flag` and `--flag=false`; so do we.
    parser.add_argument(
        flag, nargs="?", const=True, default=None, type=boolean, metavar="BOOL", help=help_text
    )


def duration_flag(parser: argparse._ActionsContainer, flag: str, help_text: str) -> None:
    parser.add_argument(flag, default=None, type=duration, metavar="DURATION", help=help_text)


def size_flag(parser: argparse._ActionsContainer, flag: str, help_text: str) -> None:
    parser.add_argument(flag, default=None, type=size, metavar="SIZE", help=help_text)
