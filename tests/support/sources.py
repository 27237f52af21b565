"""For tests of the sources through the real server: send a pod, read a metric."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import jsonpatch
import orjson

from tests.support.admission import review


def admit(
    client: httpx.Client,
    namespace: str,
    service_account: str,
    *,
    annotations: dict[str, str] | None = None,
    containers: tuple[str, ...] = ("app",),
) -> tuple[dict[str, Any], list[str]]:
    """The pod as the webhook's patch leaves it, and the warnings; fails unless answered 200."""
    body = review(namespace, service_account)
    pod = body["request"]["object"]
    pod["metadata"]["annotations"] = annotations or {}
    pod["spec"]["containers"] = [{"name": name, "image": "x"} for name in containers]
    answer = client.post(
        "/mutate", content=orjson.dumps(body), headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 200, answer.text[:300]
    response = answer.json()["response"]
    patch = orjson.loads(base64.b64decode(response["patch"])) if "patch" in response else []
    return jsonpatch.apply_patch(pod, patch), response.get("warnings", [])


def metric_value(metrics_url: str, name: str, **labels: str) -> float:
    """One sample of /metrics, 0 when absent; labels as Prometheus writes them, sorted."""
    selector = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    wanted = f"{name}{{{selector}}} " if labels else f"{name} "
    for line in httpx.get(metrics_url + "/metrics").text.splitlines():
        if line.startswith(wanted):
            return float(line.rsplit(" ", 1)[1])
    return 0.0
