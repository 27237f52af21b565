"""EKS-style wildcards: `*` is any run of characters, `?` is one character, nothing else is special.

Fargate profile selectors and ConfigMap namespace keys use the same rule; `[` is literal, which
is why this is not fnmatch (fnmatch would read it as a character class).
"""

from __future__ import annotations

import functools
import re

WILDCARDS = "*?"


def has_wildcard(pattern: str) -> bool:
    return "*" in pattern or "?" in pattern


def compile_wildcard(pattern: str) -> re.Pattern[str] | None:
    """The regex for `pattern` (match it with `fullmatch`), or None when it has no wildcard."""
    if not has_wildcard(pattern):
        return None
    regex = "".join(
        ".*" if char == "*" else "." if char == "?" else re.escape(char) for char in pattern
    )
    return re.compile(regex, re.DOTALL)


# Matching happens per admission: cached, as profiles and their patterns are few.
cached_wildcard = functools.lru_cache(maxsize=4096)(compile_wildcard)


def wildcard_matches(pattern: str, value: str) -> bool:
    regex = cached_wildcard(pattern)
    return pattern == value if regex is None else regex.fullmatch(value) is not None
