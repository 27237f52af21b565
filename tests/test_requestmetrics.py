"""RequestMetrics holds the numbers prometheus_client's own metric objects would."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Histogram, Summary, generate_latest

from webhook.server.metrics.exposition import go_text
from webhook.server.metrics.requestmetrics import (
    SECONDS_BUCKETS,
    UPSTREAM_LATENCY_BUCKETS_US,
    RequestMetrics,
)

observations = st.lists(
    st.tuples(
        st.sampled_from(["POST", "GET"]),
        st.sampled_from(["/mutate", "/mutate-fargate"]),
        st.sampled_from([200, 400, 405, 408, 500]),
        # bucket bounds themselves included: `le` means less than or equal
        st.one_of(
            st.floats(min_value=0, max_value=30, allow_nan=False),
            st.sampled_from([*SECONDS_BUCKETS, *(b / 1e6 for b in UPSTREAM_LATENCY_BUCKETS_US)]),
        ),
    ),
    max_size=40,
)


def _reference(seen: list[tuple[str, str, int, float]]) -> bytes:
    """The same observations through prometheus_client's Counter, Histogram and Summary."""
    registry = CollectorRegistry()
    count = Counter(
        "http_request_count",
        "Counter of requests broken out for each verb, path, and response code.",
        ["verb", "path", "code"],
        registry=registry,
    )
    latencies = Histogram(
        "http_request_latencies",
        "Response latency distribution in microseconds for each verb and path",
        ["verb", "path"],
        buckets=UPSTREAM_LATENCY_BUCKETS_US,
        registry=registry,
    )
    duration = Summary(
        "http_request_duration_microseconds",
        "Response latency summary in microseconds for each verb and path.",
        ["verb", "path"],
        registry=registry,
    )
    in_seconds = Histogram(
        "pod_identity_webhook_request_duration_seconds",
        "Admission request latency in seconds by path and status code.",
        ["path", "code"],
        buckets=SECONDS_BUCKETS,
        registry=registry,
    )
    for verb, path, code, seconds in seen:
        count.labels(verb, path, str(code)).inc()
        microseconds = float(int(seconds * 1e6))  # Go: Duration / time.Microsecond
        latencies.labels(verb, path).observe(microseconds)
        duration.labels(verb, path).observe(microseconds)
        in_seconds.labels(path, str(code)).observe(seconds)
    return generate_latest(registry)


_SAMPLE = re.compile(r"^(\w+)(?:\{(.*)\})? (\S+)$")
_LABEL = re.compile(r'(\w+)="([^"]*)"')


def _samples(exposition: bytes) -> list[tuple[str, tuple[tuple[str, float | str], ...], float]]:
    """Samples as numbers, whatever their spelling ("1e+06" or "1000000.0"); no `_created`,
    and the Go-style counter has no `_total`."""
    samples = []
    for line in exposition.decode().splitlines():
        match = _SAMPLE.match(line)
        if line.startswith("#") or "_created" in line or match is None:
            continue
        name, labels, value = match.groups()
        parsed = tuple(
            sorted(
                (key, float(text) if key == "le" else text)
                for key, text in _LABEL.findall(labels or "")
            )
        )
        samples.append(
            (name.replace("http_request_count_total", "http_request_count"), parsed, float(value))
        )
    return sorted(samples, key=repr)


@settings(max_examples=200, deadline=None)
@given(observations)
def test_exposition_matches_prometheus_client(seen: list[tuple[str, str, int, float]]) -> None:
    ours = RequestMetrics()
    registry = CollectorRegistry()
    registry.register(ours)
    for observation in seen:
        ours.observe(*observation)
    assert _samples(go_text([registry])) == _samples(_reference(seen))


def test_help_and_types() -> None:
    registry = CollectorRegistry()
    requests = RequestMetrics()
    registry.register(requests)
    assert go_text([registry]) == b""  # as a Go *Vec: no family before its first child
    requests.observe("POST", "/mutate", 200, 0.001)
    text = go_text([registry]).decode()
    assert "# TYPE http_request_count counter" in text
    assert "# TYPE http_request_latencies histogram" in text
    assert "# TYPE http_request_duration_microseconds summary" in text
    assert "# TYPE pod_identity_webhook_request_duration_seconds histogram" in text
    assert (
        "# HELP http_request_latencies Response latency distribution in microseconds "
        "for each verb and path" in text
    )
