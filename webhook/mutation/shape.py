"""Checks that the parts of a pod the core reads have the types a Pod has.

kube-apiserver only sends valid pods, but a webhook must answer anything with a clear
message instead of a crash: this names the first field that is wrong.
"""

from __future__ import annotations

from typing import Any

from webhook.types import JsonObject


class InvalidPod(ValueError):
    def __init__(self, path: str, expected: str) -> None:
        self.path = path
        self.expected = expected
        super().__init__(f"{path} must be {expected}")


def _check_map_of_strings(value: Any, path: str) -> None:
    if value is None:
        return
    if not isinstance(value, dict):
        raise InvalidPod(path, "an object of strings")
    for item in value.values():
        if not isinstance(item, str):
            # the key is the client's: named by where it is, not quoted
            raise InvalidPod(path, "an object of strings")


def _check_named_list(value: Any, path: str, *, name_required: bool) -> None:
    if value is None:
        return
    if not isinstance(value, list):
        raise InvalidPod(path, "a list")
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            raise InvalidPod(f"{path}[{index}]", "an object")
        name = item.get("name")
        if not isinstance(name, str) and (name_required or name is not None):
            raise InvalidPod(f"{path}[{index}].name", "a string")


def _all_named(entries: list[Any]) -> bool:
    """The hot path's check of an env or volumeMounts list: every entry an object with a name."""
    for entry in entries:
        if type(entry) is not dict or type(entry.get("name")) is not str:
            return False
    return True


def check_pod(pod: Any, path: str = "request.object") -> JsonObject:
    """Return the pod unchanged when its shape is usable, else raise InvalidPod."""
    if not isinstance(pod, dict):
        raise InvalidPod(path, "an object (a Pod)")
    metadata = pod.get("metadata")
    if metadata is not None:
        if not isinstance(metadata, dict):
            raise InvalidPod(f"{path}.metadata", "an object")
        _check_map_of_strings(metadata.get("annotations"), f"{path}.metadata.annotations")
        _check_map_of_strings(metadata.get("labels"), f"{path}.metadata.labels")
        for key in ("name", "generateName", "namespace"):
            if metadata.get(key) is not None and not isinstance(metadata[key], str):
                raise InvalidPod(f"{path}.metadata.{key}", "a string")
    spec = pod.get("spec")
    if not isinstance(spec, dict):
        raise InvalidPod(f"{path}.spec", "an object (the pod spec)")
    account = spec.get("serviceAccountName")
    if account is not None and not isinstance(account, str):
        raise InvalidPod(f"{path}.spec.serviceAccountName", "a string")
    _check_map_of_strings(spec.get("nodeSelector"), f"{path}.spec.nodeSelector")
    _check_named_list(spec.get("volumes"), f"{path}.spec.volumes", name_required=False)
    for list_name in ("initContainers", "containers"):
        containers = spec.get(list_name)
        _check_named_list(containers, f"{path}.spec.{list_name}", name_required=True)
        for index, container in enumerate(containers or ()):
            for key in ("env", "volumeMounts"):
                entries = container.get(key)
                if entries is not None and (type(entries) is not list or not _all_named(entries)):
                    # something is wrong: the careful check names it
                    _check_named_list(
                        entries, f"{path}.spec.{list_name}[{index}].{key}", name_required=True
                    )
    return pod


# Most containers (init and regular) a pod may have and still be given credentials. Each one
# grows by ~460 bytes of patch (env entries and a volume mount), and the mutated pod must fit
# etcd's 1.5 MiB object limit: past ~4,500 containers kube-apiserver could not store it anyway,
# and real pods have a handful. Under this cap a patch costs at most ~15 ms of CPU; a pod of
# 100,000 tiny containers (3 MB) would hold the event loop for seconds (docs/production.md).
MAX_MUTATED_CONTAINERS = 1000


def oversized_warning(pod: JsonObject) -> str:
    """A warning for a pod with more containers than the webhook patches; "" for any other."""
    spec = pod["spec"]  # check_pod made sure it is an object
    count = len(spec.get("containers") or ()) + len(spec.get("initContainers") or ())
    if count <= MAX_MUTATED_CONTAINERS:
        return ""
    return (
        f"pod-identity-webhook: not mutated, the pod has {count} containers, more than the "
        f"{MAX_MUTATED_CONTAINERS} it patches; the pod has no AWS credentials from the webhook"
    )
