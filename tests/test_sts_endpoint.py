"""AWS_ENDPOINT_URL_STS: `--sts-endpoint-url`, the `sts-endpoint-url` annotation, their checks,
and what `mutate` and `doctor` show."""

from __future__ import annotations

import json
from pathlib import Path
from random import Random
from typing import Any

import jsonpatch
import pytest
import yaml

from tests.test_doctor import World, diagnose
from tests.test_mutation import CC, ROLE, P, env_of, pod
from webhook.cli import build_parser, main
from webhook.flags.settings import SettingsError
from webhook.flags.shared import settings_from_args
from webhook.mutation.patch import build_identity_patch
from webhook.mutation.podidentity import resolve_pod_identity
from webhook.mutation.serviceaccount import IdentityDefaults, identity_from_annotations
from webhook.mutation.stsendpoint import MAX_STS_ENDPOINT_URL_CHARS, sts_endpoint_problem

LOCAL = "http://sts.sts-test.svc:8080"
TOKEN_FILE = "/var/run/secrets/eks.amazonaws.com/serviceaccount/token"


@pytest.mark.parametrize(
    "url",
    [
        "https://sts.example.com",
        "https://sts.example.com:8443/",
        "https://10.0.0.7",
        "http://localhost:4566",
        "http://LOCALHOST:4566",
        "http://127.0.0.1:8080",
        "http://127.8.9.10",
        "http://[::1]:8080",
        "http://sts.sts-test.svc:8080",
        "http://sts.sts-test.svc.cluster.local",
        "http://sts.sts-test.svc.cluster.local.:80",
        "http://anything.cluster.local",
    ],
)
def test_accepted_sts_endpoints(url: str) -> None:
    assert sts_endpoint_problem(url) is None


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("sts.example.com", "is not an absolute https URL"),
        ("ftp://sts.example.com", "is not an absolute https URL"),
        ("http://sts.example.com", "uses http to a host that is neither loopback nor"),
        ("http://10.0.0.7:8080", "uses http to a host that is neither loopback nor"),
        ("http://svc", "uses http to a host that is neither loopback nor"),
        ("http://evil.svc.example.com", "uses http to a host that is neither loopback nor"),
        ("https://user:pw@sts.example.com", "has user info"),
        ("https://sts.example.com/?Action=x", "has a query"),
        ("https://sts.example.com/#x", "has a fragment"),
        ("https://", "has no host"),
        ("https://sts.example.com:0", "has port 0"),
        ("https://sts.example.com:99999", "is not a URL"),
        ("https://sts.example.com/\nX-Injected: 1", "contains a space, a control"),
        ("https://sts.example.com/ a", "contains a space, a control"),
        ("https://stś.example.com", "contains a space, a control or a non-ASCII"),
        ("https://" + "a" * MAX_STS_ENDPOINT_URL_CHARS, "is longer than 512 characters"),
    ],
)
def test_refused_sts_endpoints_say_why(url: str, problem: str) -> None:
    found = sts_endpoint_problem(url)
    assert found is not None and found.startswith(problem), found


def defaults(flag: str = "") -> IdentityDefaults:
    return IdentityDefaults(
        "eks.amazonaws.com", "sts.amazonaws.com", False, 86400, sts_endpoint_url=flag
    )


def mutated_pod(
    the_pod: dict[str, Any], *, flag: str = "", annotation: str | None = None, cc: bool = False
) -> tuple[dict[str, Any], tuple[str, ...], tuple[str, ...]]:
    """(pod after the patch, every warning, the invalid annotations)"""
    annotations = {P + "role-arn": ROLE}
    if annotation is not None:
        annotations[P + "sts-endpoint-url"] = annotation
    identity = identity_from_annotations(annotations, defaults(flag), source="ServiceAccount ns/sa")
    resolution = resolve_pod_identity(
        the_pod,
        service_account=identity,
        config_map=None,
        container_credentials=CC if cc else None,
        annotation_prefix="eks.amazonaws.com",
        mount_path="/var/run/secrets/eks.amazonaws.com/serviceaccount",
        region="",
        rng=Random(0),
    )
    assert resolution.identity is not None
    mutation = build_identity_patch(the_pod, resolution.identity)
    return (
        jsonpatch.apply_patch(the_pod, mutation.ops),
        resolution.warnings + mutation.warnings,
        resolution.invalid,
    )


@pytest.mark.parametrize(
    ("flag", "annotation", "expected"),
    [
        ("", None, None),
        (LOCAL, None, LOCAL),
        ("", "https://sts.test.example", "https://sts.test.example"),
        (LOCAL, "https://sts.test.example", "https://sts.test.example"),
        (LOCAL, "", None),
    ],
    ids=["none", "flag", "annotation", "annotation-beats-flag", "empty-annotation-opts-out"],
)
def test_sts_endpoint_from_annotation_else_flag(
    flag: str, annotation: str | None, expected: str | None
) -> None:
    mutated, warnings, _ = mutated_pod(pod(), flag=flag, annotation=annotation)
    env = env_of(mutated)
    if expected is None:
        assert "AWS_ENDPOINT_URL_STS" not in dict(env)
    else:
        # after the pair it belongs to
        assert env == [
            ("AWS_ROLE_ARN", ROLE),
            ("AWS_WEB_IDENTITY_TOKEN_FILE", TOKEN_FILE),
            ("AWS_ENDPOINT_URL_STS", expected),
        ]
    assert warnings == ()


@pytest.mark.parametrize("flag", ["", LOCAL])
def test_an_invalid_annotation_injects_no_endpoint_and_warns(flag: str) -> None:
    mutated, warnings, _ = mutated_pod(pod(), flag=flag, annotation="http://sts.example.com")
    assert env_of(mutated) == [
        ("AWS_ROLE_ARN", ROLE),
        ("AWS_WEB_IDENTITY_TOKEN_FILE", TOKEN_FILE),
    ]
    assert warnings == (
        "ServiceAccount ns/sa: eks.amazonaws.com/sts-endpoint-url 'http://sts.example.com' uses "
        "http to a host that is neither loopback nor cluster-local (localhost, 127.0.0.0/8, ::1, "
        "*.svc, *.svc.cluster.local, *.cluster.local); use https; AWS_ENDPOINT_URL_STS not set",
    )
    identity = identity_from_annotations(
        {P + "role-arn": ROLE, P + "sts-endpoint-url": "http://sts.example.com"},
        defaults(flag),
        source="sa",
    )
    assert identity.invalid == ("sts-endpoint-url",)


def test_a_container_that_sets_its_own_endpoint_keeps_it() -> None:
    own = {"name": "app", "image": "x", "env": [{"name": "AWS_ENDPOINT_URL_STS", "value": "mine"}]}
    mutated, _, _ = mutated_pod(pod(own, {"name": "side", "image": "x"}), flag=LOCAL)
    assert env_of(mutated, 0) == [
        ("AWS_ENDPOINT_URL_STS", "mine"),
        ("AWS_ROLE_ARN", ROLE),
        ("AWS_WEB_IDENTITY_TOKEN_FILE", TOKEN_FILE),
    ]
    assert ("AWS_ENDPOINT_URL_STS", LOCAL) in env_of(mutated, 1)


def test_a_container_that_wires_its_own_credentials_gets_no_endpoint() -> None:
    own = {
        "name": "app",
        "image": "x",
        "env": [
            {"name": "AWS_ROLE_ARN", "value": ROLE},
            {"name": "AWS_WEB_IDENTITY_TOKEN_FILE", "value": "/t"},
        ],
    }
    mutated, _, _ = mutated_pod(pod(own), flag=LOCAL)
    assert "AWS_ENDPOINT_URL_STS" not in dict(env_of(mutated))


def test_container_credentials_pods_get_no_endpoint() -> None:
    mutated, _, _ = mutated_pod(pod(), flag=LOCAL, annotation=LOCAL, cc=True)
    names = dict(env_of(mutated))
    assert "AWS_CONTAINER_CREDENTIALS_FULL_URI" in names
    assert "AWS_ENDPOINT_URL_STS" not in names


def test_a_mutated_pod_is_not_mutated_again() -> None:
    once, _, _ = mutated_pod(pod(), flag=LOCAL)
    twice, _, _ = mutated_pod(once, flag=LOCAL)
    assert twice == once


def test_the_flag_is_checked_at_start_up() -> None:
    args = build_parser().parse_args(["mutate", "-f", "x", "--sts-endpoint-url", LOCAL])
    assert settings_from_args(args).sts_endpoint_url == LOCAL
    args = build_parser().parse_args(["mutate", "-f", "x", "--sts-endpoint-url", "http://a.com"])
    with pytest.raises(SettingsError, match=r"--sts-endpoint-url='http://a.com' is invalid"):
        settings_from_args(args)


@pytest.mark.parametrize("command", ["serve", "mutate", "doctor"])
def test_every_command_that_mutates_takes_the_flag(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        main([command, "--help"])
    assert "--sts-endpoint-url" in capsys.readouterr().out


def write_pod_and_sa(tmp_path: Path, annotation: str | None) -> Path:
    annotations = {P + "role-arn": ROLE}
    if annotation is not None:
        annotations[P + "sts-endpoint-url"] = annotation
    docs = [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "sa", "namespace": "ns", "annotations": annotations},
        },
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "p", "namespace": "ns"},
            "spec": {"serviceAccountName": "sa", "containers": [{"name": "app", "image": "x"}]},
        },
    ]
    path = tmp_path / "pod.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    return path


def test_mutate_shows_the_endpoint_in_the_patch(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_pod_and_sa(tmp_path, None)
    assert main(["mutate", "-f", str(path), "-o", "patch", "--sts-endpoint-url", LOCAL]) == 0
    ops = json.loads(capsys.readouterr().out)
    assert {"name": "AWS_ENDPOINT_URL_STS", "value": LOCAL} in ops[-2]["value"]


def test_mutate_shows_the_warning_of_an_invalid_annotation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_pod_and_sa(tmp_path, "https://sts.test/?x")
    assert main(["mutate", "-f", str(path)]) == 0
    out = capsys.readouterr()
    assert "AWS_ENDPOINT_URL_STS" not in out.out
    assert "sts-endpoint-url 'https://sts.test/?x' has a query" in out.err


def test_a_url_with_user_info_is_not_repeated_in_the_warning() -> None:
    _, warnings, _ = mutated_pod(pod(), annotation="https://admin:hunter2@sts.example.com")
    assert warnings == (
        "ServiceAccount ns/sa: eks.amazonaws.com/sts-endpoint-url (value not shown) has user "
        "info (user@host); put no credentials in the URL; AWS_ENDPOINT_URL_STS not set",
    )


def test_doctor_names_the_endpoint_the_sdks_will_call(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world = World()
    world.flags += ["--sts-endpoint-url", LOCAL]
    code, checks = diagnose(world, tmp_path, capsys)
    assert code == 0
    check = checks["sdk.sts-endpoint"]
    assert check["status"] == "pass"
    assert check["summary"] == (
        f"AWS_ENDPOINT_URL_STS: the SDKs call STS at {LOCAL} (app, proxy), not AWS STS"
    )


def test_doctor_has_no_endpoint_check_for_aws_sts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, checks = diagnose(World(), tmp_path, capsys)
    assert "sdk.sts-endpoint" not in checks
