"""The Prometheus text format as Go's client (expfmt, format 0.0.4) writes it.

Upstream serves /metrics with client_golang; dashboards, alerts and recording rules were
written against that text. prometheus_client writes the same format with other habits: a
counter's TYPE line names `<name>_total`, numbers read `125000.0` where Go writes `125000`,
and `_created` series appear. Here families are sorted by name, a family's metrics by label
values, labels by name (`le` and `quantile` last), histograms and summaries end with `_sum`
then `_count`, numbers follow strconv.FormatFloat(f, 'g', -1, 64), and families without
samples are left out, as Go's registry does.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from decimal import Decimal

from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_TEXT_TYPES = {
    "counter": "counter",
    "gauge": "gauge",
    "histogram": "histogram",
    "summary": "summary",
    "unknown": "untyped",
    "untyped": "untyped",
    "info": "gauge",
    "stateset": "gauge",
    "gaugehistogram": "histogram",
}
_LAST_LABELS = ("le", "quantile")
_TAIL_SUFFIXES = {"_sum": 1, "_count": 2, "_gsum": 1, "_gcount": 2}


def go_float(value: float) -> str:
    """strconv.FormatFloat(value, 'g', -1, 64), with expfmt's +Inf, -Inf and NaN."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    sign, digit_tuple, exponent = Decimal(repr(value)).as_tuple()
    if not isinstance(exponent, int):  # "n", "N" or "F": NaN and infinities, answered above
        raise ValueError(f"not a finite number: {value!r}")
    digits = "".join(map(str, digit_tuple))  # repr is the shortest round-trip, as Go's -1
    stripped = digits.rstrip("0")
    exponent += len(digits) - len(stripped)
    return ("-" if sign else "") + _go_g(stripped, len(stripped) + exponent)


def _go_g(digits: str, decimal_point: int) -> str:
    # strconv/ftoa.go, 'g' with the shortest precision: %e when the decimal exponent is
    # below -4 or at least 6 (eprec = 6), with a two-digit exponent; else plain digits.
    exp10 = decimal_point - 1
    if exp10 < -4 or exp10 >= 6:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{mantissa}e{'-' if exp10 < 0 else '+'}{abs(exp10):02d}"
    if decimal_point <= 0:
        return "0." + "0" * -decimal_point + digits
    if decimal_point >= len(digits):
        return digits + "0" * (decimal_point - len(digits))
    return digits[:decimal_point] + "." + digits[decimal_point:]


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _exposed_name(metric: Metric) -> str:
    if metric.type == "counter" and not any(s.name == metric.name for s in metric.samples):
        return metric.name + "_total"
    if metric.type == "info":
        return metric.name + "_info"
    return metric.name


def _sample_line(sample: Sample) -> str:
    labels = sorted(sample.labels.items(), key=lambda item: (item[0] in _LAST_LABELS, item[0]))
    text = ",".join(f'{name}="{_escape_label(value)}"' for name, value in labels)
    return (
        f"{sample.name}{{{text}}} {go_float(sample.value)}\n"
        if text
        else (f"{sample.name} {go_float(sample.value)}\n")
    )


def _ordered(metric: Metric) -> list[Sample]:
    kept = [s for s in metric.samples if not s.name.endswith("_created")]

    def key(sample: Sample) -> tuple[tuple[str, ...], int]:
        identity = tuple(
            value for name, value in sorted(sample.labels.items()) if name not in _LAST_LABELS
        )
        tail = _TAIL_SUFFIXES.get(sample.name[len(metric.name) :], 0)
        return identity, tail

    return sorted(kept, key=key)  # stable: buckets keep their order


def go_text(collectors: Iterable[Collector]) -> bytes:
    families: list[tuple[str, Metric]] = []
    for collector in collectors:
        for metric in collector.collect():
            if metric.samples:
                families.append((_exposed_name(metric), metric))
    families.sort(key=lambda item: item[0])
    out: list[str] = []
    for name, metric in families:
        out.append(f"# HELP {name} {_escape_help(metric.documentation)}\n")
        out.append(f"# TYPE {name} {_TEXT_TYPES.get(metric.type, 'untyped')}\n")
        out.extend(_sample_line(sample) for sample in _ordered(metric))
    return "".join(out).encode()
