from __future__ import annotations

import threading
from collections.abc import Iterator
from random import Random
from typing import Any

import pytest

from webhook.sources.kube.client import KubeApiError, Page, ResourceExpired
from webhook.sources.kube.watching import (
    Backoff,
    Bookmark,
    Event,
    Restart,
    WatchError,
    continuous_watch,
    infinite_watch,
)


def sa(name: str, rv: str = "1") -> dict[str, Any]:
    return {"metadata": {"namespace": "ns", "name": name, "resourceVersion": rv}}


class CannedRequests:
    """List pages and watch streams from tables; records the resourceVersion of each watch."""

    what = "serviceaccounts (test)"

    def __init__(
        self, pages: list[Page | Exception], streams: list[list[dict[str, Any]] | Exception]
    ) -> None:
        self.pages = pages
        self.streams = streams
        self.continue_tokens: list[str | None] = []
        self.watched_from: list[str] = []

    def list_page(self, continue_token: str | None) -> Page:
        self.continue_tokens.append(continue_token)
        page = self.pages.pop(0)
        if isinstance(page, Exception):
            raise page
        return page

    def watch(self, resource_version: str, *, timeout_seconds: int) -> Iterator[dict[str, Any]]:
        self.watched_from.append(resource_version)
        stream = self.streams.pop(0)
        if isinstance(stream, Exception):
            raise stream
        return iter(stream)


def run(requests: CannedRequests, *, clock: Any = None) -> list[Any]:
    kwargs = {"clock": clock} if clock else {}
    return list(continuous_watch(requests, stop=threading.Event(), **kwargs))


class Ticking:
    """A clock that moves `step` seconds each time it is read."""

    def __init__(self, step: float) -> None:
        self.now = 0.0
        self.step = step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def test_list_pages_are_followed_then_watch_starts_from_list_resource_version() -> None:
    requests = CannedRequests(
        [Page([sa("a")], "10", "next"), Page([sa("b")], "10", "")],
        [[{"type": "ADDED", "object": sa("c", "11")}], ResourceExpired("gone", status=410)],
    )
    items = run(requests)
    assert items == [
        Bookmark.LISTING,
        Event("LISTED", sa("a")),
        Event("LISTED", sa("b")),
        Bookmark.LISTED,
        Event("ADDED", sa("c", "11")),
        Restart.EXPIRED,
    ]
    assert requests.continue_tokens == [None, "next"]
    assert requests.watched_from == ["10", "11"]


@pytest.mark.parametrize(
    ("stream", "expected_tail"),
    [
        (
            [{"type": "ERROR", "object": {"kind": "Status", "code": 410, "message": "too old"}}],
            [Restart.EXPIRED],
        ),
        (
            [
                {"type": "DELETED", "object": sa("a", "12")},
                {"type": "ERROR", "object": {"code": 410}},
            ],
            [Event("DELETED", sa("a", "12")), Restart.EXPIRED],
        ),
        (
            [
                {"type": "SURPRISE", "object": sa("x", "12")},
                {"type": "ERROR", "object": {"code": 410}},
            ],
            [Restart.EXPIRED],
        ),
    ],
    ids=["error-event-410-relists", "delete-then-410", "unknown-type-skipped"],
)
def test_watch_events_become_changes_and_410_forces_relist(
    stream: list[dict[str, Any]], expected_tail: list[Any]
) -> None:
    requests = CannedRequests([Page([], "10", "")], [stream])
    assert run(requests)[2:] == expected_tail


def test_bookmark_moves_resource_version_without_yielding() -> None:
    bookmark = {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "50"}}}
    requests = CannedRequests(
        [Page([], "10", "")], [[bookmark], ResourceExpired("gone", status=410)]
    )
    assert run(requests) == [Bookmark.LISTING, Bookmark.LISTED, Restart.EXPIRED]
    assert requests.watched_from == ["10", "50"]


def test_watch_ending_normally_rewatches_from_last_seen_version() -> None:
    requests = CannedRequests(
        [Page([], "10", "")],
        [[{"type": "MODIFIED", "object": sa("a", "15")}], [], ResourceExpired("gone", status=410)],
    )
    run(requests, clock=Ticking(400))  # each watch lived its full timeout
    assert requests.continue_tokens == [None]  # no list between the watches
    assert requests.watched_from == ["10", "15", "15"]


def test_expired_continue_token_relists_from_scratch() -> None:
    requests = CannedRequests(
        [Page([sa("a")], "10", "next"), ResourceExpired("gone", status=410)], []
    )
    assert run(requests)[-1] is Restart.EXPIRED


@pytest.mark.parametrize(
    ("pages", "streams"),
    [
        ([KubeApiError("list: HTTP 500", status=500)], []),
        ([Page([], "1", "")], [KubeApiError("stream broken")]),
        (
            [Page([], "1", "")],
            [[{"type": "ERROR", "object": {"code": 500, "message": "etcd down"}}]],
        ),
    ],
    ids=["list-5xx", "dropped-connection", "error-event-5xx"],
)
def test_other_failures_raise_watch_error(pages: list[Any], streams: list[Any]) -> None:
    with pytest.raises(WatchError):
        run(CannedRequests(pages, streams))


def test_a_watch_that_ends_at_once_with_no_event_returns_to_relist() -> None:
    requests = CannedRequests([Page([], "5", "")], [[]])
    assert run(requests, clock=Ticking(0.01))[-1] is Restart.CLOSED


def test_watch_timeout_is_five_to_ten_minutes_as_client_go() -> None:
    timeouts: list[int] = []

    def watch(rv: str, *, timeout_seconds: int) -> Iterator[dict[str, Any]]:
        timeouts.append(timeout_seconds)
        raise KubeApiError("refused")

    for _ in range(20):
        requests = CannedRequests([Page([], "5", "")], [])
        requests.watch = watch  # type: ignore[method-assign,assignment]
        with pytest.raises(WatchError):
            run(requests)
    assert all(300 <= t <= 600 for t in timeouts) and len(set(timeouts)) > 1


def test_backoff_doubles_with_jitter_up_to_the_cap_as_client_go() -> None:
    now = [0.0]
    backoff = Backoff(rng=Random(1), clock=lambda: now[0])
    delays = []
    for _ in range(8):
        delays.append(backoff.next())
        now[0] += delays[-1] + 0.01  # each attempt fails at once
    steps = [0.8, 1.6, 3.2, 6.4, 12.8, 25.6, 30.0, 30.0]
    for delay, step in zip(delays, steps, strict=True):
        assert step <= delay <= min(2 * step, 30.0)


def test_backoff_starts_over_only_after_an_attempt_lived_two_minutes() -> None:
    now = [0.0]
    backoff = Backoff(rng=Random(1), clock=lambda: now[0])
    for _ in range(5):
        backoff.next()
        now[0] += 100.0  # lived 100 s: not long enough
    assert backoff.next() >= 12.8
    now[0] += 121.0
    assert backoff.next() < 1.6


def test_infinite_watch_backs_off_before_every_restart_whatever_the_reason() -> None:
    requests = CannedRequests(
        [
            KubeApiError("refused"),
            KubeApiError("refused"),
            Page([sa("a")], "5", ""),
            Page([], "6", ""),
        ],
        [ResourceExpired("gone", status=410), []],
    )
    restarts: list[tuple[Restart, str, float]] = []
    waits: list[float] = []

    class RecordingStop(threading.Event):
        def wait(self, timeout: float | None = None) -> bool:
            waits.append(timeout or 0)
            return False

    backoff = Backoff(initial=1, maximum=100, rng=Random(2))
    items = list(
        infinite_watch(
            requests,
            stop=RecordingStop(),
            on_restart=lambda reason, error, delay: restarts.append((reason, error, delay)),
            backoff=backoff,
            _iterations=4,
        )
    )
    assert [r for r, _, _ in restarts] == [
        Restart.ERROR,
        Restart.ERROR,
        Restart.EXPIRED,
        Restart.CLOSED,
    ]
    assert restarts[0][1] == "refused"
    assert waits == [delay for _, _, delay in restarts]
    # a successful list does not reset the back-off: it keeps growing
    for wait, step in zip(waits, [1, 2, 4, 8], strict=True):
        assert step <= wait < 2 * step
    assert Event("LISTED", sa("a")) in items
