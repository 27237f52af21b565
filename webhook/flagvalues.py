"""Flag values as Go's flag packages read them: durations ("1m30s") and booleans ("--flag=false")."""

from __future__ import annotations

import argparse
import re

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


def parse_bool(text: str) -> bool:
    """Booleans as Go's strconv.ParseBool reads them."""
    if text in ("1", "t", "T", "true", "TRUE", "True"):
        return True
    if text in ("0", "f", "F", "false", "FALSE", "False"):
        return False
    raise ValueError(f"not a boolean: {text!r} (expected true or false)")


def bool_flag(parser: argparse._ActionsContainer, flag: str, help_text: str) -> None:
    # Go's pflag accepts both `--flag` and `--flag=false`; so do we.
    parser.add_argument(flag, nargs="?", const=True, default=None, type=parse_bool, help=help_text)


def duration_flag(parser: argparse._ActionsContainer, flag: str, help_text: str) -> None:
    parser.add_argument(flag, default=None, type=parse_duration, help=help_text)
