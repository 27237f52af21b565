from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from webhook.sources.kubeapi import KubeApiError, Page, ResourceExpired
from webhook.sources.watching import (
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


def run(requests: CannedRequests, *, resync: float = 0.0, clock: Any = None) -> list[Any]:
    kwargs = {"clock": clock} if clock else {}
    return list(continuous_watch(requests, resync_period=resync, stop=threading.Event(), **kwargs))


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
    run(requests)
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


def test_resync_period_over_returns_to_relist() -> None:
    now = [0.0]

    def clock() -> float:
        return now[0]

    def stream() -> list[dict[str, Any]]:
        now[0] = 100.0  # the watch took longer than the resync period
        return []

    requests = CannedRequests([Page([], "1", "")], [])
    requests.watch = lambda rv, *, timeout_seconds: iter(stream())  # type: ignore[method-assign]
    assert run(requests, resync=60, clock=clock)[-1] is Restart.RESYNC


def test_infinite_watch_backs_off_after_errors_and_relists() -> None:
    requests = CannedRequests(
        [KubeApiError("refused"), KubeApiError("refused"), Page([sa("a")], "5", "")],
        [ResourceExpired("gone", status=410)],
    )
    restarts: list[tuple[Restart, str]] = []
    waits: list[float] = []

    class RecordingStop(threading.Event):
        def wait(self, timeout: float | None = None) -> bool:
            waits.append(timeout or 0)
            return False

    backoff = Backoff(initial=1, maximum=1.5)
    items = list(
        infinite_watch(
            requests,
            resync_period=0,
            stop=RecordingStop(),
            on_restart=lambda reason, error: restarts.append((reason, error)),
            backoff=backoff,
            _iterations=3,
        )
    )
    assert [r for r, _ in restarts] == [Restart.ERROR, Restart.ERROR, Restart.EXPIRED]
    assert restarts[0][1] == "refused"
    assert 0.8 <= waits[0] <= 1.0 and 1.2 <= waits[1] <= 1.5  # doubled, then capped
    assert Event("LISTED", sa("a")) in items and items[-1] is Bookmark.LISTED
