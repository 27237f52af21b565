"""Aliases for JSON at the edges: the decoded pod stays a plain dict so unknown fields survive."""

from __future__ import annotations

from typing import Any, Literal, TypedDict

JsonObject = dict[str, Any]


class PatchOp(TypedDict):
    op: Literal["add"]
    path: str
    value: Any
