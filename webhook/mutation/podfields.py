"""Reading pod fields and adding to them, shared by the identity patch and the Fargate patch."""

from __future__ import annotations

from typing import Any

from webhook.mutation.pointer import join
from webhook.types import JsonObject, PatchOp

CONTAINER_LISTS = ("initContainers", "containers")


def add_op(path: str, value: Any) -> PatchOp:
    return {"op": "add", "path": path, "value": value}


def label_ops(pod: JsonObject, key: str, value: str) -> list[PatchOp]:
    """Set label `key` to `value`: creates metadata or labels when absent, nothing when set."""
    metadata = pod.get("metadata")
    if metadata is None:
        return [add_op("/metadata", {"labels": {key: value}})]
    labels = metadata.get("labels") if isinstance(metadata, dict) else None
    if not isinstance(labels, dict):
        return [add_op("/metadata/labels", {key: value})]
    if labels.get(key) == value:
        return []
    return [add_op(join("metadata", "labels", key), value)]


def objects(value: Any) -> list[JsonObject]:
    """The objects of a list field; anything else counts as empty (the core never raises)."""
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, dict)]


def string_map(value: Any) -> dict[str, str]:
    """The string values of a map field (labels, annotations); anything else counts as empty."""
    if not isinstance(value, dict):
        return {}
    return {key: item for key, item in value.items() if isinstance(item, str)}
