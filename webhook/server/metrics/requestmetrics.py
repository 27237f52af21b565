"""The per-request series, kept as plain numbers and turned into metric families at scrape time.

Every admission updates four series (upstream's request counter, latency histogram and latency
summary, and our seconds histogram). With prometheus_client's metric objects that is four
locked updates per request, about 2.7 µs (docs/performance.md); here it is a few additions on numbers
that only the event loop thread touches (requests and scrapes both run on it), and the
exposition is upstream's (pkg/handler/middleware.go): names, help, types, labels and buckets,
written by exposition.go_text in Go's number format.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator

from prometheus_client.metrics_core import HistogramMetricFamily, Metric, SummaryMetricFamily
from prometheus_client.registry import Collector

from webhook.server.metrics.exposition import go_float

# upstream: prometheus.ExponentialBuckets(125000, 2.0, 7), in microseconds
UPSTREAM_LATENCY_BUCKETS_US = tuple(125000.0 * 2**i for i in range(7))
SECONDS_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


def _le_labels(bounds: tuple[float, ...]) -> tuple[str, ...]:
    """Bucket bounds as Go's client prints them in `le` ("125000", "1e+06", "+Inf")."""
    return tuple(go_float(bound) for bound in (*bounds, float("inf")))


_LATENCY_LE = _le_labels(UPSTREAM_LATENCY_BUCKETS_US)
_SECONDS_LE = _le_labels(SECONDS_BUCKETS)


class _Histogram:
    """Counts per bucket (not cumulative; the last is +Inf) and the sum."""

    __slots__ = ("counts", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.counts = [0] * (len(bounds) + 1)
        self.total = 0.0

    def cumulative(self, le_labels: tuple[str, ...]) -> list[tuple[str, float]]:
        buckets: list[tuple[str, float]] = []
        running = 0
        for le, count in zip(le_labels, self.counts, strict=True):
            running += count
            buckets.append((le, float(running)))
        return buckets


class _Series:
    """What one (verb, path, code) updates: its count, and the histograms it feeds."""

    __slots__ = ("count", "latencies", "seconds")

    def __init__(self, latencies: _Histogram, seconds: _Histogram) -> None:
        self.count = 0
        self.latencies = latencies  # shared by every code of a (verb, path)
        self.seconds = seconds  # shared by every verb of a (path, code)


class RequestMetrics(Collector):
    def __init__(self) -> None:
        self._series: dict[tuple[str, str, int], _Series] = {}
        self._latencies: dict[tuple[str, str], _Histogram] = {}
        self._seconds: dict[tuple[str, str], _Histogram] = {}

    def observe(self, verb: str, path: str, code: int, seconds: float) -> None:
        series = self._series.get((verb, path, code))
        if series is None:
            series = self._add_series(verb, path, code)
        series.count += 1
        # upstream: float64(time.Since(start) / time.Microsecond), whole microseconds
        microseconds = float(int(seconds * 1e6))
        latencies = series.latencies
        latencies.counts[bisect_left(UPSTREAM_LATENCY_BUCKETS_US, microseconds)] += 1
        latencies.total += microseconds
        in_seconds = series.seconds
        in_seconds.counts[bisect_left(SECONDS_BUCKETS, seconds)] += 1
        in_seconds.total += seconds

    def _add_series(self, verb: str, path: str, code: int) -> _Series:
        latencies = self._latencies.get((verb, path))
        if latencies is None:
            latencies = self._latencies[(verb, path)] = _Histogram(UPSTREAM_LATENCY_BUCKETS_US)
        seconds = self._seconds.get((path, str(code)))
        if seconds is None:
            seconds = self._seconds[(path, str(code))] = _Histogram(SECONDS_BUCKETS)
        series = self._series[(verb, path, code)] = _Series(latencies, seconds)
        return series

    def collect(self) -> Iterator[Metric]:
        # Go's client names a counter without `_total`; exposition.go_text keeps that name.
        name = "http_request_count"
        count = Metric(
            name,
            "Counter of requests broken out for each verb, path, and response code.",
            "counter",
        )
        for (verb, path, code), series in self._series.items():
            count.add_sample(
                name, {"verb": verb, "path": path, "code": str(code)}, float(series.count)
            )
        yield count

        latencies = HistogramMetricFamily(
            "http_request_latencies",
            "Response latency distribution in microseconds for each verb and path",
            labels=["verb", "path"],
        )
        duration = SummaryMetricFamily(
            "http_request_duration_microseconds",
            "Response latency summary in microseconds for each verb and path.",
            labels=["verb", "path"],
        )
        for (verb, path), histogram in self._latencies.items():
            buckets = histogram.cumulative(_LATENCY_LE)
            latencies.add_metric([verb, path], buckets, histogram.total)
            duration.add_metric([verb, path], sum(histogram.counts), histogram.total)
        yield latencies
        yield duration

        in_seconds = HistogramMetricFamily(
            "pod_identity_webhook_request_duration_seconds",
            "Admission request latency in seconds by path and status code.",
            labels=["path", "code"],
        )
        for (path, code_text), histogram in self._seconds.items():
            in_seconds.add_metric(
                [path, code_text], histogram.cumulative(_SECONDS_LE), histogram.total
            )
        yield in_seconds
