"""Background work survives what it is fed: one bad object is skipped, a dead task is restarted
with back-off, and a task that cannot be kept up says so (for /healthz)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest

from tests.support.fakeapi import FakeApiServer
from webhook.flags.settings import Settings
from webhook.mutation.serviceaccount import IdentityDefaults, identity_of_service_account
from webhook.sources.files.watchedfile import WatchedFile
from webhook.sources.kube.client import ResourceRequests, cluster_configuration, new_core_api
from webhook.sources.kube.resourcewatch import ResourceWatch
from webhook.sources.kube.watching import Backoff
from webhook.sources.serviceaccounts import file as serviceaccountfile
from webhook.sources.serviceaccounts.file import parse_service_accounts
from webhook.sources.supervisor import HEALTHY_RUN_SECONDS, MAX_FAILURES_IN_A_ROW, Supervised
from webhook.types import JsonObject

DEFAULTS = IdentityDefaults("eks.amazonaws.com", "sts.amazonaws.com", False, 86400)
QUICK: dict[str, Any] = {"initial": 0.01, "maximum": 0.02}


def test_supervised_task_is_restarted_and_unhealthy_only_after_failing_in_a_row() -> None:
    runs: list[int] = []
    restarts: list[str] = []
    healths: list[str] = []

    async def flaky() -> None:
        runs.append(1)
        healths.append(supervised.health_reason())
        if len(runs) <= MAX_FAILURES_IN_A_ROW:
            raise RuntimeError("boom")
        await asyncio.sleep(3600)

    supervised = Supervised(
        flaky, name="test task", on_restart=restarts.append, backoff=Backoff(**QUICK)
    )

    async def scenario() -> str:
        task = asyncio.create_task(supervised.run())
        while len(runs) <= MAX_FAILURES_IN_A_ROW:
            await asyncio.sleep(0.01)
        reason = supervised.health_reason()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return reason

    reason = asyncio.run(asyncio.wait_for(scenario(), 10))
    assert restarts == ["test task"] * MAX_FAILURES_IN_A_ROW
    assert healths[:MAX_FAILURES_IN_A_ROW] == [""] * MAX_FAILURES_IN_A_ROW
    assert reason == f"test task failed {MAX_FAILURES_IN_A_ROW} times in a row: RuntimeError: boom"


def test_supervised_task_that_runs_a_while_is_healthy_again() -> None:
    now = [0.0]

    async def quick_failure() -> None:
        raise RuntimeError("boom")

    supervised = Supervised(quick_failure, name="t", backoff=Backoff(**QUICK), clock=lambda: now[0])
    supervised.failures = MAX_FAILURES_IN_A_ROW
    assert supervised.health_reason() != ""
    supervised._running_since = 0.0
    now[0] = HEALTHY_RUN_SECONDS
    assert supervised.health_reason() == ""


def test_supervised_task_that_returns_is_restarted_too() -> None:
    runs: list[int] = []

    async def returns() -> None:
        runs.append(1)
        if len(runs) > 2:
            await asyncio.sleep(3600)

    supervised = Supervised(returns, name="t", backoff=Backoff(**QUICK))

    async def scenario() -> None:
        task = asyncio.create_task(supervised.run())
        while len(runs) < 3:
            await asyncio.sleep(0.01)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(asyncio.wait_for(scenario(), 10))
    assert supervised.failures == 2 and supervised.last_error == "it stopped by itself"


class RecordingSink:
    """Keeps names; refuses to convert "bad"; `begin_list` raises while `crashes` is above 0."""

    def __init__(self, crashes: int = 0) -> None:
        self.crashes = crashes
        self.entries: dict[str, str] = {}

    def convert(self, namespace: str, name: str, obj: JsonObject) -> str:
        if name == "bad":
            raise ValueError("secret-value-123")
        return name

    def begin_list(self) -> None:
        if self.crashes > 0:
            self.crashes -= 1
            raise RuntimeError("bug in begin_list")

    def replace_all(self, entries: dict[str, str]) -> None:
        self.entries = dict(entries)

    def put(self, key: str, value: str) -> None:
        self.entries[key] = value

    def delete(self, key: str) -> None:
        self.entries.pop(key, None)


def watch_of(api: FakeApiServer, sink: RecordingSink, skips: list[str]) -> ResourceWatch[str]:
    configuration = cluster_configuration(Settings(kube_api=api.url))
    core = new_core_api(configuration)
    requests = ResourceRequests(core.list_service_account_for_all_namespaces, what="sa (test)")
    return ResourceWatch(
        requests,
        sink,
        resource="serviceaccounts",
        resync_period=0,
        count_restart=lambda resource, reason: None,
        count_skip=skips.append,
    )


async def until(predicate: Any, timeout: float = 10) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)


def test_watch_skips_an_object_it_cannot_convert_logs_it_once_and_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sink = RecordingSink()
    skips: list[str] = []
    with FakeApiServer() as api:
        api.put_service_account("ns", "bad")
        api.put_service_account("ns", "good")
        watch = watch_of(api, sink, skips)

        async def scenario() -> None:
            task = asyncio.create_task(watch.run())
            await until(lambda: watch.listed)
            api.put_service_account("ns", "bad", {"x": "changed"})
            api.put_service_account("ns", "later")
            await until(lambda: "ns/later" in sink.entries)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

        with caplog.at_level(logging.INFO):
            asyncio.run(asyncio.wait_for(scenario(), 20))
    assert sink.entries == {"ns/good": "good", "ns/later": "later"}
    assert skips == ["serviceaccounts", "serviceaccounts"]
    skipped = [r for r in caplog.records if "skipped" in r.getMessage()]
    assert len(skipped) == 1 and "ns/bad" in skipped[0].getMessage()
    assert "secret-value-123" not in caplog.text  # an exception message may quote a value


def test_a_crashed_watch_thread_is_restarted_by_its_supervisor() -> None:
    sink = RecordingSink(crashes=2)
    with FakeApiServer() as api:
        api.put_service_account("ns", "good")
        watch = watch_of(api, sink, [])
        supervised = Supervised(watch.run, name=watch.name, backoff=Backoff(**QUICK))

        async def scenario() -> None:
            task = asyncio.create_task(supervised.run())
            await until(lambda: watch.listed)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

        asyncio.run(asyncio.wait_for(scenario(), 20))
    assert sink.entries == {"ns/good": "good"}
    assert supervised.failures == 2
    assert "RuntimeError: bug in begin_list" in supervised.last_error


def test_service_accounts_file_skips_an_object_that_cannot_be_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = identity_of_service_account

    def failing(namespace: str, name: str, annotations: Any, defaults: Any) -> Any:
        if name == "bad":
            raise ValueError("bug")
        return real(namespace, name, annotations, defaults)

    monkeypatch.setattr(serviceaccountfile, "identity_of_service_account", failing)
    content = b"kind: List\nitems:\n- {kind: ServiceAccount, metadata: {name: bad}}\n- {kind: ServiceAccount, metadata: {name: good}}\n"
    skipped: list[str] = []
    entries = parse_service_accounts(content, DEFAULTS, source="f", on_skip=skipped.append)
    assert list(entries) == ["default/good"] and skipped == ["default/bad"]


def test_file_absent_loads_the_absent_content_until_it_appears_and_after_it_goes(
    tmp_path: Path,
) -> None:
    path = tmp_path / "cc.json"
    loaded: list[bytes] = []
    watched = WatchedFile(path, loaded.append, name="cc", absent_content=b"")
    watched.load_now()
    path.write_bytes(b"{}")
    assert watched.poll() is True
    path.unlink()
    assert watched.poll() is True
    assert loaded == [b"", b"{}", b""]


def test_a_loader_bug_is_a_failed_reload_not_the_end_of_reloads(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"one")
    results: list[bool] = []

    def load(content: bytes) -> None:
        if content == b"two":
            raise KeyError("secret-value-123")

    watched = WatchedFile(path, load, name="f", on_reload=lambda n, ok: results.append(ok))
    watched.load_now()
    path.write_bytes(b"two")
    assert watched.poll() is False
    assert "cannot be loaded: KeyError" in watched.last_error
    assert "secret-value-123" not in watched.last_error
    path.write_bytes(b"three")
    assert watched.poll() is True
    assert results == [False, True]
