"""Booleans as Go's strconv.ParseBool reads them: upstream parses its boolean flags and the
sts-regional-endpoints annotation with it, so both take exactly these spellings."""

from __future__ import annotations

TRUE = frozenset(("1", "t", "T", "true", "TRUE", "True"))
FALSE = frozenset(("0", "f", "F", "false", "FALSE", "False"))


def parse_bool(text: str) -> bool:
    if text in TRUE:
        return True
    if text in FALSE:
        return False
    raise ValueError(f"not a boolean: {text!r} (expected true or false)")
