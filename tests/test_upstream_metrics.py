"""/metrics reads as upstream's for the same admissions: the families upstream defines, written
as its Go client (client_golang v1.12.2, text format 0.0.4) writes them.

The expected text is derived by hand from upstream's definitions:
- pkg/handler/middleware.go: http_request_count (CounterVec verb/path/code),
  http_request_latencies (HistogramVec verb/path, ExponentialBuckets(125000, 2.0, 7), in whole
  microseconds), http_request_duration_microseconds (SummaryVec, no objectives: _sum and
  _count only), pod_identity_webhook_pod_count (CounterVec method),
  pod_identity_webhook_missing_sa_count (CounterVec, no labels);
- pkg/handler/handler.go buildPodPatchConfig: pod_count once per pod with an identity
  (container credentials first), patched or already patched; missing_sa_count when the
  ServiceAccount is in neither cache;
- pkg/cache/cache.go: pod_identity_webhook_used (Gauge) set to 1 by addSA, for any
  ServiceAccount, with a role annotation or not.
Go's text: families sorted by name, HELP then TYPE, labels sorted by name with `le` last,
buckets then _sum then _count, numbers as strconv.FormatFloat(f, 'g', -1, 64).
"""

from __future__ import annotations

import base64
import re
from pathlib import Path

import jsonpatch
import orjson
import pytest

from tests.support.admission import review
from tests.support.inprocess import InProcessWebhook, serve_in_process
from tests.test_observability import SERVICE_ACCOUNTS as OBSERVED_SERVICE_ACCOUNTS
from webhook.server.metrics.exposition import go_float
from webhook.server.metrics.registry import Metrics

UPSTREAM_FAMILIES = (
    "http_request_count",
    "http_request_duration_microseconds",
    "http_request_latencies",
    "pod_identity_webhook_missing_sa_count",
    "pod_identity_webhook_pod_count",
    "pod_identity_webhook_used",
)

# After: app (patched), app again on the already-patched pod, plain (no role), ghost (not
# cached), pi (container credentials). Every request took under 125 ms (checked separately).
EXPECTED_AFTER_ADMISSIONS = """\
# HELP http_request_count Counter of requests broken out for each verb, path, and response code.
# TYPE http_request_count counter
http_request_count{code="200",path="/mutate",verb="POST"} 5
# HELP http_request_duration_microseconds Response latency summary in microseconds for each verb and path.
# TYPE http_request_duration_microseconds summary
http_request_duration_microseconds_sum{path="/mutate",verb="POST"} SUM
http_request_duration_microseconds_count{path="/mutate",verb="POST"} 5
# HELP http_request_latencies Response latency distribution in microseconds for each verb and path
# TYPE http_request_latencies histogram
http_request_latencies_bucket{path="/mutate",verb="POST",le="125000"} 5
http_request_latencies_bucket{path="/mutate",verb="POST",le="250000"} 5
http_request_latencies_bucket{path="/mutate",verb="POST",le="500000"} 5
http_request_latencies_bucket{path="/mutate",verb="POST",le="1e+06"} 5
http_request_latencies_bucket{path="/mutate",verb="POST",le="2e+06"} 5
http_request_latencies_bucket{path="/mutate",verb="POST",le="4e+06"} 5
http_request_latencies_bucket{path="/mutate",verb="POST",le="8e+06"} 5
http_request_latencies_bucket{path="/mutate",verb="POST",le="+Inf"} 5
http_request_latencies_sum{path="/mutate",verb="POST"} SUM
http_request_latencies_count{path="/mutate",verb="POST"} 5
# HELP pod_identity_webhook_missing_sa_count Service account did not have the right annotations or was not found in the cache.
# TYPE pod_identity_webhook_missing_sa_count counter
pod_identity_webhook_missing_sa_count 1
# HELP pod_identity_webhook_pod_count Indicator to how many pods are using sts web identity or container credentials
# TYPE pod_identity_webhook_pod_count counter
pod_identity_webhook_pod_count{method="container_credentials"} 1
pod_identity_webhook_pod_count{method="sts_web_identity"} 2
# HELP pod_identity_webhook_used Indicator to know pod identity webhook is used
# TYPE pod_identity_webhook_used gauge
pod_identity_webhook_used 1
"""

# Before any admission, Go's registry has only the unlabelled gauge: a *Vec shows nothing
# until its first child, and the cache has not been filled (no ServiceAccount file here).
EXPECTED_AT_START = """\
# HELP pod_identity_webhook_used Indicator to know pod identity webhook is used
# TYPE pod_identity_webhook_used gauge
pod_identity_webhook_used 0
"""

# team-a/app with a role, team-a/plain without, and team-a/pi listed for container credentials
SERVICE_ACCOUNTS = (
    OBSERVED_SERVICE_ACCOUNTS
    + """- apiVersion: v1
  kind: ServiceAccount
  metadata: {name: pi, namespace: team-a}
"""
)
CONTAINER_CREDENTIALS = '{"identities": [{"namespace": "team-a", "serviceAccount": "pi"}]}'
JSON = {"Content-Type": "application/json"}


def upstream_families(exposition: str) -> str:
    """The blocks (HELP, TYPE, samples) of upstream's families, in the order served."""
    kept: list[str] = []
    keep = False
    for line in exposition.splitlines(keepends=True):
        if line.startswith("# HELP "):
            keep = line.split(" ", 3)[2] in UPSTREAM_FAMILIES
        if keep:
            kept.append(line)
    return "".join(kept)


def _post(webhook: InProcessWebhook, body: dict[str, object]) -> dict[str, object]:
    with webhook.client() as client:
        answer = client.post("/mutate", content=orjson.dumps(body), headers=JSON)
    assert answer.status_code == 200
    response: dict[str, object] = answer.json()["response"]
    return response


def _sums_replaced(text: str) -> str:
    sums = re.findall(r"_sum\{[^}]*\} (\S+)\n", text)
    assert len(sums) == 2 and sums[0] == sums[1], sums
    # whole microseconds, in Go's format: digits, or d.ddde+NN from a million on
    assert re.fullmatch(r"\d+|\d(\.\d+)?e\+\d\d", sums[0]), sums[0]
    return re.sub(r"(_sum\{[^}]*\}) \S+\n", r"\1 SUM\n", text)


def test_scrape_after_admissions_equals_upstreams_exposition(tmp_path: Path) -> None:
    accounts = tmp_path / "sa.yaml"
    accounts.write_text(SERVICE_ACCOUNTS)
    credentials = tmp_path / "cc.json"
    credentials.write_text(CONTAINER_CREDENTIALS)
    with serve_in_process(
        f"--service-accounts-file={accounts}",
        f"--watch-container-credentials-config={credentials}",
    ) as webhook:
        first = review("team-a", "app")
        response = _post(webhook, first)
        patch = orjson.loads(base64.b64decode(str(response["patch"])))
        again = review("team-a", "app")
        again["request"]["object"] = jsonpatch.apply_patch(first["request"]["object"], patch)
        assert "patch" not in _post(webhook, again)  # already patched: counted all the same
        for account in ("plain", "ghost", "pi"):
            _post(webhook, review("team-a", account))
        scrape = webhook.metrics("/metrics")
    assert scrape.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    served = upstream_families(scrape.text)
    finite = re.findall(r'le="[^+][^"]*"\} (\d+)', served)
    if finite[0] != "5":  # a request slower than 125 ms on a loaded machine: still monotonic
        assert finite == sorted(finite, key=int), served
        served = re.sub(r'(le="[^+][^"]*"\}) \d+', r"\1 5", served)
    assert _sums_replaced(served) == EXPECTED_AFTER_ADMISSIONS


def test_before_any_admission_only_the_usage_gauge_is_exposed() -> None:
    assert upstream_families(Metrics().exposition().decode()) == EXPECTED_AT_START


def test_bucket_bounds_sums_and_counts_print_as_go_does() -> None:
    metrics = Metrics()
    for seconds in (0.0001, 0.2, 3.0000009):  # 100 µs, 200000 µs, 3000000 µs (truncated)
        metrics.observe_request("POST", "/mutate", 200, seconds)
    metrics.service_account_missing()
    lines = upstream_families(metrics.exposition().decode()).splitlines()
    latencies = [line for line in lines if line.startswith("http_request_latencies_")]
    assert latencies == [
        'http_request_latencies_bucket{path="/mutate",verb="POST",le="125000"} 1',
        'http_request_latencies_bucket{path="/mutate",verb="POST",le="250000"} 2',
        'http_request_latencies_bucket{path="/mutate",verb="POST",le="500000"} 2',
        'http_request_latencies_bucket{path="/mutate",verb="POST",le="1e+06"} 2',
        'http_request_latencies_bucket{path="/mutate",verb="POST",le="2e+06"} 2',
        'http_request_latencies_bucket{path="/mutate",verb="POST",le="4e+06"} 3',
        'http_request_latencies_bucket{path="/mutate",verb="POST",le="8e+06"} 3',
        'http_request_latencies_bucket{path="/mutate",verb="POST",le="+Inf"} 3',
        'http_request_latencies_sum{path="/mutate",verb="POST"} 3.2001e+06',
        'http_request_latencies_count{path="/mutate",verb="POST"} 3',
    ]
    assert "pod_identity_webhook_missing_sa_count 1" in lines


@pytest.mark.parametrize(
    ("value", "go"),
    [
        # what strconv.FormatFloat(value, 'g', -1, 64) returns
        (125000.0, "125000"),
        (1e6, "1e+06"),
        (3.0, "3"),
        (0.0005, "0.0005"),
        (0.00005, "5e-05"),
        (123456.0, "123456"),
        (1234567.0, "1.234567e+06"),
        (1700000000.25, "1.70000000025e+09"),
        (-2.5, "-2.5"),
        (0.0, "0"),
        (float("inf"), "+Inf"),
        (float("-inf"), "-Inf"),
        (float("nan"), "NaN"),
    ],
)
def test_numbers_print_as_gos_strconv(value: float, go: str) -> None:
    assert go_float(value) == go
