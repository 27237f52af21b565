"""RFC 6901 JSON Pointer helpers."""

from __future__ import annotations


def escape(token: str) -> str:
    """One reference token: `~` becomes `~0`, then `/` becomes `~1` (order matters)."""
    return token.replace("~", "~0").replace("/", "~1")


def join(*tokens: str | int) -> str:
    return "".join("/" + escape(str(token)) for token in tokens)
