"""Strict mode: a pod carrying --require-identity-label that gets no identity is refused.

The policy (webhook/assembly/strict.py) for each reason, the endpoint for the over-budget
answer, and the real server run with the strict overlay's own container args."""

# ruff: noqa: F811 - `built` and `workspace` are test_manifests' module-scoped fixtures

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.support.admission import APP_FLAGS
from tests.support.fakeapi import FakeApiServer
from tests.support.inprocess import serve_in_process
from tests.support.server import CertFiles, RunningWebhook, run_webhook
from tests.test_manifests import (  # noqa: F401 - fixtures are used by name
    ALL_BUILDS,
    IDENTITY_WEBHOOK,
    STRICT,
    Objects,
    built,
    container,
    one,
    serve_settings,
    webhook_named,
    workspace,
)
from webhook.assembly.strict import UNIDENTIFIED, Limits, refuse_unidentified
from webhook.cli import build_parser
from webhook.flags.settings import SettingsError
from webhook.flags.shared import settings_from_args
from webhook.flags.values import RequiredLabel, parse_required_label
from webhook.mutation.answer import Answer, Outcome
from webhook.mutation.shape import MAX_MUTATED_CONTAINERS
from webhook.server.admission.codec import Review
from webhook.server.admission.endpoint import AdmissionEndpoint
from webhook.server.admission.outcomes import ServingOutcome

LABEL = RequiredLabel("eks.amazonaws.com/pod-identity-webhook", "enabled")
LIMITS = Limits(annotation_prefix="eks.amazonaws.com", grace_period=2.0, time_budget=5.0)
ROLE = "eks.amazonaws.com/role-arn"
ARN = "arn:aws:iam::111122223333:role/checkout"
STRICT_OVERLAY = "manifests/overlays/strict"


def pod(labels: dict[str, str] | None = None, *, containers: int = 1) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "shop", "labels": labels or {}},
        "spec": {
            "serviceAccountName": "checkout",
            "containers": [{"name": f"c{i}", "image": "x"} for i in range(containers)],
        },
    }


LABELLED = pod({LABEL.key: LABEL.value, "app": "checkout"})


# -- the core --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("outcome", "reason", "fix"),
    [
        (Outcome.NOT_FOUND, "ServiceAccount shop/checkout was not found within the 2s", "create"),
        (
            Outcome.NO_ROLE,
            "ServiceAccount shop/checkout has no eks.amazonaws.com/role-arn annotation",
            "annotate the ServiceAccount with eks.amazonaws.com/role-arn",
        ),
        (
            Outcome.TOO_MANY_CONTAINERS,
            f"more than the {MAX_MUTATED_CONTAINERS} containers",
            "split",
        ),
        (
            ServingOutcome.OVER_BUDGET,
            "did not decide within its 5s time budget",
            "create the pod again",
        ),
    ],
)
def test_a_labelled_pod_without_its_identity_is_refused_naming_reason_and_fix(
    outcome: Outcome | ServingOutcome, reason: str, fix: str
) -> None:
    detail = (
        ""
        if outcome in (Outcome.TOO_MANY_CONTAINERS, ServingOutcome.OVER_BUDGET)
        else "shop/checkout"
    )
    answer = Answer([], ("a warning",), outcome, detail)
    refused = refuse_unidentified(LABELLED, answer, LABEL, LIMITS)
    assert refused.refusal.startswith(
        "pod-identity-webhook: refused, the pod carries "
        "eks.amazonaws.com/pod-identity-webhook=enabled but gets no AWS identity: "
    )
    assert reason in refused.refusal
    assert f"Fix: {fix}" in refused.refusal
    assert refused.refusal.endswith(
        "or remove the label eks.amazonaws.com/pod-identity-webhook from the pod"
    )
    assert (refused.outcome, refused.warnings, refused.ops) == (outcome, ("a warning",), [])


def test_every_outcome_without_an_identity_is_covered() -> None:
    given = {Outcome.MUTATED, Outcome.ALREADY_PRESENT}
    outcomes = {*Outcome, *ServingOutcome}
    fargate_or_envelope = {o for o in outcomes if "fargate" in o.value or o is Outcome.NOT_A_POD}
    fargate_or_envelope |= {Outcome.OWN_SCHEDULER, Outcome.DAEMONSET, Outcome.BOUND}
    assert outcomes - given - fargate_or_envelope == UNIDENTIFIED


def test_without_a_grace_period_the_message_says_none_was_waited() -> None:
    answer = Answer([], (), Outcome.NOT_FOUND, "shop/checkout")
    refused = refuse_unidentified(LABELLED, answer, LABEL, LIMITS._replace(grace_period=0))
    assert "was not found (no --service-account-lookup-grace-period)" in refused.refusal


@pytest.mark.parametrize(
    "labels",
    [{}, {LABEL.key: "disabled"}, {"other": "enabled"}],
    ids=["no-label", "other-value", "other-key"],
)
def test_a_pod_without_the_label_keeps_its_answer(labels: dict[str, str]) -> None:
    answer = Answer([], (), Outcome.NOT_FOUND, "shop/checkout")
    assert refuse_unidentified(pod(labels), answer, LABEL, LIMITS) is answer


@pytest.mark.parametrize("outcome", [Outcome.MUTATED, Outcome.ALREADY_PRESENT, Outcome.NOT_A_POD])
def test_a_labelled_pod_that_has_its_identity_is_not_refused(outcome: Outcome) -> None:
    answer = Answer([{"op": "add", "path": "/x", "value": 1}], (), outcome, "shop/checkout")
    assert refuse_unidentified(LABELLED, answer, LABEL, LIMITS) is answer


def test_required_label_reads_key_equals_value() -> None:
    assert parse_required_label("eks.amazonaws.com/pod-identity-webhook=enabled") == LABEL
    assert parse_required_label("team=") == RequiredLabel("team", "")
    for bad in ("enabled", "=x", " a=b", "a =b", "a= b"):
        with pytest.raises(ValueError, match="expected KEY=VALUE"):
            parse_required_label(bad)


def test_a_malformed_required_label_stops_start_up_naming_the_flag() -> None:
    args = build_parser().parse_args(["serve", "--require-identity-label", "enabled"])
    with pytest.raises(SettingsError, match="--require-identity-label='enabled' is invalid"):
        settings_from_args(args)


# -- the endpoint: the over-budget answer is refused too -------------------------------------


def _review_body(document: dict[str, Any]) -> bytes:
    return orjson.dumps(
        {
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": str(uuid.uuid4()),
                "kind": {"group": "", "version": "v1", "kind": "Pod"},
                "namespace": "shop",
                "operation": "CREATE",
                "object": document,
            },
        }
    )


async def _call(endpoint: AdmissionEndpoint, body: bytes) -> dict[str, Any]:
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/mutate"}
    await endpoint({**scope, "headers": [(b"content-type", b"application/json")]}, receive, send)
    assert sent[0]["status"] == 200
    response: dict[str, Any] = orjson.loads(sent[1]["body"])["response"]
    return response


def test_an_over_budget_answer_for_a_labelled_pod_is_a_refusal() -> None:
    async def slow(review: Review) -> Answer:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    def enforce(review: Review, answer: Answer) -> Answer:
        return refuse_unidentified(review.pod, answer, LABEL, LIMITS._replace(time_budget=0.1))

    endpoint = AdmissionEndpoint(
        "/mutate",
        slow,
        max_body_bytes=1 << 20,
        observe=lambda o: None,
        time_budget=0.1,
        enforce=enforce,
    )
    labelled = asyncio.run(_call(endpoint, _review_body(LABELLED)))
    assert labelled["allowed"] is False
    assert labelled["status"]["code"] == 403
    assert "did not decide within its 0.1s time budget" in labelled["status"]["message"]
    assert "took longer than 0.1s" in labelled["warnings"][0]
    unlabelled = asyncio.run(_call(endpoint, _review_body(pod())))
    assert unlabelled["allowed"] is True and "status" not in unlabelled


def test_outside_strict_mode_a_labelled_pod_is_allowed_unchanged() -> None:
    with serve_in_process(*APP_FLAGS) as webhook, webhook.client() as client:
        answer = client.post(
            "/mutate", content=_review_body(LABELLED), headers={"Content-Type": "application/json"}
        )
    response = answer.json()["response"]
    assert response["allowed"] is True and "patch" not in response and "status" not in response


# -- the manifests ---------------------------------------------------------------------------


@pytest.mark.parametrize("build", ALL_BUILDS)
def test_only_strict_builds_refuse_and_they_refuse_what_their_webhook_selects(
    build: str, built: dict[str, Objects]
) -> None:
    settings = serve_settings(built[build])
    if build not in STRICT:
        assert settings.require_identity_label == ""
        return
    webhook = webhook_named(built[build], IDENTITY_WEBHOOK)
    (selected,) = webhook["objectSelector"]["matchLabels"].items()
    assert parse_required_label(settings.require_identity_label) == selected
    # the lookup waits, and the refusal still leaves before the time budget is spent
    assert 0 < settings.service_account_lookup_grace_period <= settings.request_time_budget / 2
    assert webhook["failurePolicy"] == "Fail"


# -- the real server, with the strict overlay's own args ---------------------------------------


def strict_command(
    objects: Objects, kubeconfig: Path, *extra: str
) -> Any:  # the command_line callable run_webhook takes
    deployment = one(objects, "Deployment")
    namespace = deployment["metadata"]["namespace"]
    replaced = (
        "--port=",
        "--metrics-port=",
        "--metrics-bind-address=",
        "--tls-cert=",
        "--tls-key=",
    )
    args = [
        arg.replace("$(POD_NAMESPACE)", namespace)
        for arg in container(objects)["args"]
        if not arg.startswith(replaced)
    ]
    assert "$(" not in " ".join(args), args

    def command(port: int, metrics_port: int, certs: CertFiles) -> list[str]:
        return [
            sys.executable,
            "-m",
            "webhook",
            *args,
            "--bind-address=127.0.0.1",
            f"--port={port}",
            f"--metrics-port={metrics_port}",
            f"--tls-cert={certs.cert}",
            f"--tls-key={certs.key}",
            f"--kubeconfig={kubeconfig}",
            *extra,
        ]

    return command


@pytest.fixture(scope="module")
def strict_api() -> Iterator[FakeApiServer]:
    with FakeApiServer() as api:
        api.put_service_account("shop", "checkout", {ROLE: ARN})
        api.put_service_account("shop", "no-role", {})
        yield api


@pytest.fixture(scope="module")
def strict_server(
    tmp_path_factory: pytest.TempPathFactory,
    built: dict[str, Objects],
    strict_api: FakeApiServer,
    cert_files: CertFiles,
) -> Iterator[RunningWebhook]:
    tmp_path = tmp_path_factory.mktemp("strict")
    kubeconfig = strict_api.write_kubeconfig(tmp_path / "kubeconfig")
    command = strict_command(built[STRICT_OVERLAY], kubeconfig)
    with run_webhook(tmp_path, certs=cert_files, command_line=command) as server:
        yield server


def admit(server: RunningWebhook, document: dict[str, Any]) -> dict[str, Any]:
    with server.client() as client:
        answer = client.post(
            "/mutate", content=_review_body(document), headers={"Content-Type": "application/json"}
        )
    answer.raise_for_status()
    response: dict[str, Any] = answer.json()["response"]
    return response


def with_account(document: dict[str, Any], name: str) -> dict[str, Any]:
    return {**document, "spec": {**document["spec"], "serviceAccountName": name}}


def test_strict_server_mutates_a_labelled_pod_whose_account_has_a_role(
    strict_server: RunningWebhook,
) -> None:
    response = admit(strict_server, LABELLED)
    assert response["allowed"] is True and response["patchType"] == "JSONPatch"


def test_strict_server_refuses_a_labelled_pod_whose_account_has_no_role(
    strict_server: RunningWebhook,
) -> None:
    response = admit(strict_server, with_account(LABELLED, "no-role"))
    assert response["allowed"] is False and "patch" not in response
    assert response["status"]["code"] == 403
    message = response["status"]["message"]
    assert "ServiceAccount shop/no-role has no eks.amazonaws.com/role-arn annotation" in message
    assert "Fix: annotate the ServiceAccount" in message
    metrics = httpx.get(strict_server.metrics_url + "/metrics", timeout=5).text
    assert 'pod_identity_webhook_pods_refused_total{outcome="no role"} 1' in metrics
    # the overlay logs JSON (--log-format=json)
    assert '"outcome":"no role","allowed":false' in strict_server.log()


def test_strict_server_refuses_a_missing_account_after_the_overlays_grace_period(
    strict_server: RunningWebhook,
) -> None:
    started = time.monotonic()
    response = admit(strict_server, with_account(LABELLED, "never-created"))
    waited = time.monotonic() - started
    assert response["allowed"] is False
    message = response["status"]["message"]
    assert "ServiceAccount shop/never-created was not found within the 2s lookup grace period" in (
        message
    )
    assert 1.9 <= waited < 5  # the overlay's grace period, inside its time budget


def test_strict_server_refuses_a_labelled_pod_with_too_many_containers(
    strict_server: RunningWebhook,
) -> None:
    many = pod({LABEL.key: LABEL.value}, containers=MAX_MUTATED_CONTAINERS + 1)
    response = admit(strict_server, many)
    assert response["allowed"] is False
    assert f"more than the {MAX_MUTATED_CONTAINERS} containers" in response["status"]["message"]


def test_strict_server_leaves_an_unlabelled_pod_as_before(strict_server: RunningWebhook) -> None:
    response = admit(strict_server, with_account(pod(), "no-role"))
    assert response == {"uid": response["uid"], "allowed": True}


def test_strict_server_refuses_a_labelled_pod_it_could_not_decide_in_time(
    tmp_path: Path, built: dict[str, Objects], strict_api: FakeApiServer, cert_files: CertFiles
) -> None:
    # the overlay's args with a grace period longer than a shortened budget: the lookup is cut off
    kubeconfig = strict_api.write_kubeconfig(tmp_path / "kubeconfig")
    command = strict_command(
        built[STRICT_OVERLAY],
        kubeconfig,
        "--request-time-budget=1s",
        "--service-account-lookup-grace-period=3s",
    )
    with run_webhook(tmp_path, certs=cert_files, command_line=command) as server:
        response = admit(server, with_account(LABELLED, "never-created"))
        unlabelled = admit(server, with_account(pod(), "never-created"))
    assert response["allowed"] is False
    assert "did not decide within its 1s time budget" in response["status"]["message"]
    assert unlabelled["allowed"] is True and "took longer than 1s" in unlabelled["warnings"][0]
