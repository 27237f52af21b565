"""Talking to the API server: client configuration and the raw list, watch and get requests.

Responses are read with `_preload_content=False` and parsed with orjson: the generated
`V1ServiceAccount` models would cost kilobytes per object, and a list of 100,000 of them
would have to exist at once. Lists are paged (`limit`/`continue`) so one page at a time is
in memory. Client errors are wrapped here, at the edge, into `KubeApiError`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import urllib3
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.config.config_exception import ConfigException

from webhook.flags.settings import Settings
from webhook.types import JsonObject

logger = logging.getLogger(__name__)

LIST_PAGE_SIZE = 500  # client-go's pager default
CONNECT_TIMEOUT_SECONDS = 5.0
LIST_READ_TIMEOUT_SECONDS = 60.0
# A watch ends itself after timeoutSeconds; allow this much more before calling the stream dead.
WATCH_READ_SLACK_SECONDS = 30.0
GET_TIMEOUT_SECONDS = 2.0
MAX_BODY_IN_MESSAGE = 256
_LINE_READ_BYTES = 64 * 1024


class ClusterConfigError(RuntimeError):
    """No usable API server configuration; the message says which flags to pass."""


class KubeApiError(Exception):
    """A failed API request: `status` is the HTTP status, None when no response arrived."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        self.status = status
        super().__init__(message)


class ResourceExpired(KubeApiError):
    """410 Gone: the resourceVersion or continue token is too old; list again from scratch."""


@dataclass(frozen=True, slots=True)
class Page:
    items: list[JsonObject]
    resource_version: str
    continue_token: str


def cluster_configuration(settings: Settings) -> Any:
    """A kubernetes.client.Configuration from --kubeconfig / --kube-api, else in-cluster."""
    configuration = k8s.Configuration()
    try:
        if settings.kubeconfig is not None:
            k8s_config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=str(settings.kubeconfig), client_configuration=configuration
            )
        elif not settings.kube_api:
            k8s_config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    except ConfigException as exc:
        where = (
            f"--kubeconfig {settings.kubeconfig}"
            if settings.kubeconfig is not None
            else "in-cluster config"
        )
        raise ClusterConfigError(
            f"cannot load {where}: {exc}; pass --kubeconfig PATH or --kube-api URL, "
            "or --service-accounts-file PATH to run without a cluster"
        ) from exc
    except OSError as exc:
        raise ClusterConfigError(f"cannot read --kubeconfig {settings.kubeconfig}: {exc}") from exc
    if settings.kube_api:
        configuration.host = settings.kube_api.rstrip("/")
    configuration.retries = 0  # our watch loop backs off and retries; urllib3 need not
    return configuration


def new_core_api(configuration: Any) -> Any:
    return k8s.CoreV1Api(k8s.ApiClient(configuration))


def _get(what: str, read: Any, namespace: str, name: str) -> JsonObject | None:
    """One object by name through `read` (a CoreV1Api read_namespaced_* method), or None when
    it does not exist."""
    try:
        response = _call(
            what,
            lambda: read(
                name,
                namespace,
                _preload_content=False,
                _request_timeout=(CONNECT_TIMEOUT_SECONDS, GET_TIMEOUT_SECONDS),
            ),
        )
    except KubeApiError as exc:
        if exc.status == 404:
            return None
        raise
    return _read_json(what, response)


def get_pod(core: Any, namespace: str, name: str) -> JsonObject | None:
    """One Pod by name, or None when it does not exist."""
    return _get(f"get pod {namespace}/{name}", core.read_namespaced_pod, namespace, name)


def request_token(
    core: Any,
    namespace: str,
    service_account: str,
    *,
    audience: str,
    seconds: int,
    pod: tuple[str, str] | None = None,
) -> str:
    """A token of the TokenRequest API for the ServiceAccount, as kubelet asks for a pod's
    projected token: this audience, this lifetime, bound to the pod (name, uid) when given."""
    what = f"create token for serviceaccount {namespace}/{service_account}"
    spec: JsonObject = {"audiences": [audience], "expirationSeconds": seconds}
    if pod is not None:
        spec["boundObjectRef"] = {"apiVersion": "v1", "kind": "Pod", "name": pod[0], "uid": pod[1]}
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}
    response = _call(
        what,
        lambda: core.create_namespaced_service_account_token(
            service_account,
            namespace,
            body,
            _preload_content=False,
            _request_timeout=(CONNECT_TIMEOUT_SECONDS, GET_TIMEOUT_SECONDS),
        ),
    )
    token = (_read_json(what, response).get("status") or {}).get("token")
    if not isinstance(token, str) or not token:
        raise KubeApiError(f"{what}: the answer has no status.token")
    return token


def _truncate(text: str) -> str:
    text = text.strip()
    return text if len(text) <= MAX_BODY_IN_MESSAGE else text[:MAX_BODY_IN_MESSAGE] + "..."


def _message_of(body: bytes | str | None) -> str:
    if not body:
        return ""
    try:
        status = orjson.loads(body)
    except orjson.JSONDecodeError:
        return _truncate(body if isinstance(body, str) else body.decode("utf-8", "replace"))
    if isinstance(status, dict) and isinstance(status.get("message"), str):
        return _truncate(status["message"])
    return _truncate(body if isinstance(body, str) else body.decode("utf-8", "replace"))


def _call(what: str, request: Callable[[], Any]) -> Any:
    try:
        return request()
    except k8s.ApiException as exc:
        status = int(exc.status) if exc.status else None
        message = f"{what}: HTTP {status} {_message_of(exc.body) or exc.reason or ''}".rstrip()
        error = ResourceExpired if status == 410 else KubeApiError
        raise error(message, status=status) from exc
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise KubeApiError(f"{what}: {type(exc).__name__}: {_truncate(str(exc))}") from exc


def _read_json(what: str, response: Any) -> JsonObject:
    try:
        data = response.read()
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise KubeApiError(f"{what}: reading the response failed: {exc}") from exc
    finally:
        response.release_conn()
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise KubeApiError(f"{what}: response is not JSON: {_truncate(repr(data[:100]))}") from exc
    if not isinstance(document, dict):
        raise KubeApiError(f"{what}: expected a JSON object, found {type(document).__name__}")
    return document


def iter_json_lines(what: str, response: Any) -> Iterator[JsonObject]:
    """One JSON object per line of a streamed watch response, parsed as it arrives."""
    buffer = b""
    try:
        for chunk in response.stream(_LINE_READ_BYTES, decode_content=True):
            buffer += chunk
            if b"\n" not in buffer:
                continue
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                if line.strip():
                    yield _watch_line(what, line)
        if buffer.strip():
            yield _watch_line(what, buffer)
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise KubeApiError(
            f"{what}: stream broken: {type(exc).__name__}: {_truncate(str(exc))}"
        ) from exc
    finally:
        response.release_conn()


def _watch_line(what: str, line: bytes) -> JsonObject:
    try:
        event = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise KubeApiError(
            f"{what}: watch event is not JSON: {_truncate(repr(line[:100]))}"
        ) from exc
    if not isinstance(event, dict):
        raise KubeApiError(f"{what}: watch event is not an object")
    return event


class ResourceRequests:
    """List pages and watch streams of one collection, through one generated list method.

    `list_method` is a CoreV1Api method such as `list_service_account_for_all_namespaces`;
    `scope` keyword arguments (namespace, field_selector) are passed to every call.
    """

    def __init__(self, list_method: Callable[..., Any], *, what: str, **scope: Any) -> None:
        self._list = list_method
        self.what = what
        self._scope = scope

    def list_page(self, continue_token: str | None) -> Page:
        extra: dict[str, Any] = {"_continue": continue_token} if continue_token else {}
        response = _call(
            f"list {self.what}",
            lambda: self._list(
                **self._scope,
                limit=LIST_PAGE_SIZE,
                _preload_content=False,
                _request_timeout=(CONNECT_TIMEOUT_SECONDS, LIST_READ_TIMEOUT_SECONDS),
                **extra,
            ),
        )
        document = _read_json(f"list {self.what}", response)
        metadata = document.get("metadata") or {}
        items = document.get("items") or []
        if not isinstance(items, list):
            raise KubeApiError(f"list {self.what}: items is not a list")
        return Page(
            items=items,
            resource_version=str(metadata.get("resourceVersion") or ""),
            continue_token=str(metadata.get("continue") or ""),
        )

    def watch(self, resource_version: str, *, timeout_seconds: int) -> Iterator[JsonObject]:
        what = f"watch {self.what} from resourceVersion {resource_version}"
        response = _call(
            what,
            lambda: self._list(
                **self._scope,
                watch=True,
                resource_version=resource_version,
                allow_watch_bookmarks=True,
                timeout_seconds=timeout_seconds,
                _preload_content=False,
                _request_timeout=(
                    CONNECT_TIMEOUT_SECONDS,
                    timeout_seconds + WATCH_READ_SLACK_SECONDS,
                ),
            ),
        )
        return iter_json_lines(what, response)


def get_service_account(core: Any, namespace: str, name: str) -> JsonObject | None:
    """One ServiceAccount by name, or None when it does not exist."""
    return _get(
        f"get serviceaccount {namespace}/{name}",
        core.read_namespaced_service_account,
        namespace,
        name,
    )
