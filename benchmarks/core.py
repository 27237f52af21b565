"""Micro-benchmark of the pure core: one pod's identity lookup and patch, per body size.

Two figures per body, in microseconds per pod (min and median over repeats):
- core: PodMutator.mutate_now on the decoded pod (lookup in 10,000 ServiceAccounts, patch);
- request: the decode /mutate runs (parse_body, review_of) + mutate_now + the encoded
  response, i.e. /mutate without HTTP.
Run: python -m benchmarks core [--number N] [--repeat R]
"""

from __future__ import annotations

import statistics
import timeit
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from random import Random

from benchmarks.accounts import BODY_NAMES, body_path, service_accounts_yaml
from webhook.assembly.podmutator import PodMutator
from webhook.assembly.settingsmap import identity_defaults
from webhook.flags.settings import Settings
from webhook.server.admission.codec import parse_body, patched, review_of
from webhook.sources.serviceaccounts.file import parse_service_accounts
from webhook.sources.serviceaccounts.store import ServiceAccountStore

TARGET_TYPICAL_CORE_US = 50.0


@dataclass(frozen=True)
class CoreTiming:
    body: str
    what: str
    min_us: float
    median_us: float
    ops: int


def build_mutator(accounts: int = 10_000) -> PodMutator:
    settings = Settings(aws_default_region="us-west-2")
    store = ServiceAccountStore()
    content = service_accounts_yaml(accounts).encode()
    store.replace_all(
        parse_service_accounts(content, identity_defaults(settings), source="benchmark")
    )
    return PodMutator.from_settings(settings, store, rng=Random(0))


def _time(function: Callable[[], object], number: int, repeat: int) -> tuple[float, float]:
    runs = timeit.repeat(function, number=number, repeat=repeat)
    per_call = [run / number * 1e6 for run in runs]
    return min(per_call), statistics.median(per_call)


def _request(mutator: PodMutator, body: bytes) -> bytes:
    decoded = review_of(parse_body(body))
    assert decoded.pod is not None
    mutation = mutator.mutate_now(decoded.pod, decoded.namespace)
    return patched(decoded, mutation.ops, mutation.warnings)


def measure(
    bodies: tuple[str, ...] = BODY_NAMES,
    *,
    number: int = 2000,
    repeat: int = 5,
    mutator: PodMutator | None = None,
) -> list[CoreTiming]:
    mutator = mutator or build_mutator()
    timings: list[CoreTiming] = []
    for name in bodies:
        body = body_path(name).read_bytes()
        review = review_of(parse_body(body))
        assert review.pod is not None, f"{name}.json is not a pod CREATE"
        pod, namespace = review.pod, review.namespace
        result = mutator.mutate_now(pod, namespace)
        if not result.ops:
            raise SystemExit(f"{name}.json: no mutation; is its ServiceAccount in the source?")

        for what, function in (
            ("core", partial(mutator.mutate_now, pod, namespace)),
            ("request", partial(_request, mutator, body)),
        ):
            low, median = _time(function, number, repeat)
            timings.append(CoreTiming(name, what, low, median, len(result.ops)))
    return timings


def format_table(timings: list[CoreTiming]) -> str:
    lines = [f"{'body':<8} {'what':<8} {'ops':>4} {'min µs':>9} {'median µs':>10}"]
    for t in timings:
        lines.append(f"{t.body:<8} {t.what:<8} {t.ops:>4} {t.min_us:>9.1f} {t.median_us:>10.1f}")
    return "\n".join(lines)
