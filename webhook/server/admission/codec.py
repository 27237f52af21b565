"""AdmissionReview decoding and encoding. Response bodies are built only here."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any, NamedTuple

import orjson
import pybase64

from webhook.mutation.shape import InvalidPod, check_pod, oversized_warning
from webhook.types import JsonObject, PatchOp

API_VERSIONS = ("admission.k8s.io/v1", "admission.k8s.io/v1beta1")
# kube-apiserver shows warnings to users; it truncates long ones, so keep them readable.
MAX_WARNING_CHARS = 256
# Messages name a field and what was expected, never what the body holds; the cap is a second
# line of defence, so that no message can be huge in the answer or in the log.
MAX_MESSAGE_CHARS = 512
# orjson refuses deeper documents itself, at no cost per request; nothing downstream recurses
# into the pod, so this is the only depth limit needed.
MAX_JSON_DEPTH = 1024


class BadRequest(Exception):
    """Anything wrong with the incoming review; the server answers it with `status`."""

    def __init__(self, status: int = 400, message: str | None = None) -> None:
        self.status = status
        message = message or HTTPStatus(status).phrase
        if len(message) > MAX_MESSAGE_CHARS:
            message = message[: MAX_MESSAGE_CHARS - 1] + "…"
        self.message = message
        super().__init__(self.message)

    def __str__(self) -> str:
        return f"{self.status}: {self.message}"

    def __repr__(self) -> str:
        return f"BadRequest(status={self.status!r}, message={self.message!r})"


class Review(NamedTuple):
    api_version: str
    kind: str
    uid: str
    namespace: str
    operation: str
    pod: JsonObject | None  # None when the object is not a Pod or the operation is not CREATE
    # The pod's shape is checked once, here: its warning when it has more containers than the
    # webhook patches (webhook/mutation/shape.py), else "".
    oversized: str = ""


def _invalid_json(exc: orjson.JSONDecodeError) -> BadRequest:
    """400 for a body orjson cannot parse; nesting past its depth limit gets its own message."""
    if str(exc).startswith("depth limit exceeded"):
        return BadRequest(
            400, f"body is nested deeper than {MAX_JSON_DEPTH} levels; a Pod is never that deep"
        )
    return BadRequest(400, f"body is not valid JSON: {exc}")


class Echo(NamedTuple):
    """What an error answer repeats of the request: its apiVersion and uid, where readable."""

    api_version: str
    uid: str


NO_ECHO = Echo(API_VERSIONS[0], "")


def parse_body(body: bytes) -> Any:
    """The body as JSON, decoded once: the review and any error answer are read from it."""
    if not body:
        raise BadRequest(400, "empty body; expected an AdmissionReview")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise _invalid_json(exc) from exc


def review_of(document: Any) -> Review:
    if not isinstance(document, dict):
        raise BadRequest(400, "body is not a JSON object; expected an AdmissionReview")
    api_version = document.get("apiVersion")
    kind = document.get("kind")
    if kind != "AdmissionReview" or api_version not in API_VERSIONS:
        raise BadRequest(
            400,
            "body is not an AdmissionReview; expected kind AdmissionReview with apiVersion "
            f"{' or '.join(API_VERSIONS)}",
        )
    request = document.get("request")
    if not isinstance(request, dict):
        raise BadRequest(400, "request is missing; expected the AdmissionReview's request object")
    uid = request.get("uid")
    if not isinstance(uid, str) or not uid:
        raise BadRequest(400, "request.uid is missing; expected a string")
    namespace = request.get("namespace") or ""
    if not isinstance(namespace, str):
        raise BadRequest(400, "request.namespace must be a string")
    operation = request.get("operation") or "CREATE"
    if not isinstance(operation, str):
        raise BadRequest(400, "request.operation must be a string")
    obj = request.get("object")
    if not _is_pod(request, obj) or operation != "CREATE":
        return Review(api_version, kind, uid, namespace, operation, None)
    if obj is None:
        raise BadRequest(400, "request.object is missing; expected a Pod")
    try:
        pod = check_pod(obj)
    except InvalidPod as exc:
        raise BadRequest(400, str(exc)) from exc
    if not namespace:
        namespace = (pod.get("metadata") or {}).get("namespace") or ""
    if not namespace:
        raise BadRequest(400, "request.namespace is missing; expected the pod's namespace")
    return Review(api_version, kind, uid, namespace, operation, pod, oversized_warning(pod))


def _is_pod(request: JsonObject, obj: Any) -> bool:
    for kind in (request.get("kind"), request.get("requestKind")):
        if isinstance(kind, dict):
            return kind.get("kind") == "Pod" and kind.get("group", "") in ("", None)
    return not isinstance(obj, dict) or obj.get("kind", "Pod") == "Pod"


def _envelope(api_version: str, kind: str, response: JsonObject) -> bytes:
    return orjson.dumps({"apiVersion": api_version, "kind": kind, "response": response})


def patched(review: Review, ops: list[PatchOp], warnings: tuple[str, ...] = ()) -> bytes:
    """allowed: true, with patch and patchType only when there is a change, warnings only when any."""
    response: JsonObject = {"uid": review.uid, "allowed": True}
    if ops:
        response["patchType"] = "JSONPatch"
        # pybase64: SIMD base64, 1.9 -> 0.2 µs for a typical patch (docs/performance.md)
        response["patch"] = pybase64.b64encode(orjson.dumps(ops)).decode("ascii")
    if warnings:
        response["warnings"] = [_capped_warning(w) for w in warnings]
    return _envelope(review.api_version, review.kind, response)


def refused(review: Review, message: str, warnings: tuple[str, ...] = ()) -> bytes:
    """allowed: false for a pod the webhook will not let through; kube-apiserver shows `message`
    to the user as the reason the pod was not created."""
    response: JsonObject = {
        "uid": review.uid,
        "allowed": False,
        "status": {"code": 403, "reason": "Forbidden", "message": _capped(message)},
    }
    if warnings:
        response["warnings"] = [_capped_warning(w) for w in warnings]
    return _envelope(review.api_version, review.kind, response)


def _capped(message: str) -> str:
    return message if len(message) <= MAX_MESSAGE_CHARS else message[: MAX_MESSAGE_CHARS - 1] + "…"


def _capped_warning(warning: str) -> str:
    if len(warning) <= MAX_WARNING_CHARS:
        return warning
    return warning[: MAX_WARNING_CHARS - 1] + "…"


def echo_of(document: Any) -> Echo:
    """What can be read of the request's apiVersion and uid; `document` is None when undecoded."""
    if not isinstance(document, dict):
        return NO_ECHO
    api_version, uid = NO_ECHO
    if document.get("apiVersion") in API_VERSIONS:
        api_version = document["apiVersion"]
    request = document.get("request")
    if isinstance(request, dict) and isinstance(request.get("uid"), str):
        uid = request["uid"]
    return Echo(api_version, uid)


def errored(status: int, message: str, *, echo: Echo = NO_ECHO) -> bytes:
    """A failure in AdmissionReview form, echoing what can be read of the request."""
    response = {"uid": echo.uid, "allowed": False, "status": {"code": status, "message": message}}
    return _envelope(echo.api_version, "AdmissionReview", response)
