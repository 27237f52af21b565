"""`pod-identity-webhook mutate`: the offline preview."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
import yaml

from tests.conftest import ROOT
from webhook.cli import main

EXAMPLES = ROOT / "examples"
FIXTURES = Path(__file__).parent / "fixtures"
SA_FILE = str(EXAMPLES / "serviceaccounts.yaml")


def env_names(container: dict[str, object]) -> list[str]:
    return [e["name"] for e in container.get("env") or []]  # type: ignore[attr-defined]


def test_mutate_prints_the_mutated_pod_as_yaml(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["mutate", "-f", str(EXAMPLES / "pod.yaml"), "--service-accounts-file", SA_FILE]) == 0
    )
    pod = yaml.safe_load(capsys.readouterr().out)
    assert env_names(pod["spec"]["containers"][0]) == [
        "AWS_ROLE_ARN",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
    ]
    assert (
        pod["spec"]["volumes"][0]["projected"]["sources"][0]["serviceAccountToken"][
            "expirationSeconds"
        ]
        == 3600
    )


def test_mutate_output_patch_prints_the_json_patch(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "mutate",
            "-f",
            str(EXAMPLES / "pod.yaml"),
            "--service-accounts-file",
            SA_FILE,
            "-o",
            "patch",
            "--aws-default-region",
            "us-east-2",
        ]
    )
    assert code == 0
    ops = orjson.loads(capsys.readouterr().out)
    assert ops[0] == {
        "op": "add",
        "path": "/spec/volumes",
        "value": [
            {
                "name": "aws-iam-token",
                "projected": {
                    "sources": [
                        {
                            "serviceAccountToken": {
                                "audience": "sts.amazonaws.com",
                                "expirationSeconds": 3600,
                                "path": "token",
                            }
                        }
                    ]
                },
            }
        ],
    }
    assert {
        "op": "add",
        "path": "/spec/containers/0/env",
        "value": [
            {"name": "AWS_DEFAULT_REGION", "value": "us-east-2"},
            {"name": "AWS_REGION", "value": "us-east-2"},
            {"name": "AWS_ROLE_ARN", "value": "arn:aws:iam::111122223333:role/s3-reader"},
            {
                "name": "AWS_WEB_IDENTITY_TOKEN_FILE",
                "value": "/var/run/secrets/eks.amazonaws.com/serviceaccount/token",
            },
        ],
    } in ops


@pytest.mark.parametrize(
    ("fixture", "template_path"),
    [
        ("deployment.yaml", ["spec", "template"]),
        ("cronjob.yaml", ["spec", "jobTemplate", "spec", "template"]),
    ],
)
def test_mutate_workloads_mutates_their_pod_template(
    capsys: pytest.CaptureFixture[str], fixture: str, template_path: list[str]
) -> None:
    assert main(["mutate", "-f", str(FIXTURES / fixture), "--service-accounts-file", SA_FILE]) == 0
    obj = yaml.safe_load(capsys.readouterr().out)
    for key in template_path:
        obj = obj[key]
    assert "AWS_ROLE_ARN" in env_names(obj["spec"]["containers"][0])


def test_mutate_reads_service_accounts_from_the_input_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "both.yaml"
    source.write_text(
        "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: s3-reader, namespace: default, annotations: {eks.amazonaws.com/role-arn: 'arn:aws:iam::111122223333:role/inline'}}\n---\n"
        + (EXAMPLES / "pod.yaml").read_text()
    )
    assert main(["mutate", "-f", str(source), "-o", "json"]) == 0
    pod = orjson.loads(capsys.readouterr().out)
    assert pod["spec"]["containers"][0]["env"][0] == {
        "name": "AWS_ROLE_ARN",
        "value": "arn:aws:iam::111122223333:role/inline",
    }


def test_mutate_prints_warnings_on_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pod = yaml.safe_load((EXAMPLES / "pod.yaml").read_text())
    pod["metadata"]["annotations"] = {"eks.amazonaws.com/token-expiration": "60"}
    source = tmp_path / "pod.yaml"
    source.write_text(yaml.safe_dump(pod))
    assert main(["mutate", "-f", str(source), "--service-accounts-file", SA_FILE]) == 0
    assert (
        "warning: pod annotation eks.amazonaws.com/token-expiration 60 is below the minimum; raised to 600"
        in capsys.readouterr().err
    )


def test_mutate_warns_about_a_half_wired_container(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pod = yaml.safe_load((EXAMPLES / "pod.yaml").read_text())
    container = pod["spec"]["containers"][0]
    container["env"] = [{"name": "AWS_WEB_IDENTITY_TOKEN_FILE", "value": "/token"}]
    source = tmp_path / "pod.yaml"
    source.write_text(yaml.safe_dump(pod))
    assert main(["mutate", "-f", str(source), "--service-accounts-file", SA_FILE]) == 0
    assert (
        f"warning: container {container['name']!r} sets AWS_WEB_IDENTITY_TOKEN_FILE but not "
        "AWS_ROLE_ARN, and the webhook adds neither to it: remove AWS_WEB_IDENTITY_TOKEN_FILE "
        "or set both\n"
    ) in capsys.readouterr().err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
            "kind 'ConfigMap' cannot be mutated; expected one of Pod, Deployment",
        ),
        (
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {}\n",
            "Deployment has no pod template at /spec/template",
        ),
        ("- just\n- a list\n", "document 1 is not an object"),
        ("key: [unclosed\n", "not valid YAML or JSON"),
        (
            "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec: {containers: oops}\n",
            "Pod.spec.containers must be a list",
        ),
        ("", "no Pod or workload found"),
    ],
    ids=["configmap", "no-template", "not-an-object", "bad-yaml", "bad-pod", "empty"],
)
def test_mutate_rejects_input_it_cannot_mutate_with_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, message: str
) -> None:
    source = tmp_path / "input.yaml"
    source.write_text(content)
    assert main(["mutate", "-f", str(source), "--service-accounts-file", SA_FILE]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_mutate_missing_file_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["mutate", "-f", "/nonexistent/pod.yaml"]) == 2
    assert (
        "/nonexistent/pod.yaml: cannot read: No such file or directory" in capsys.readouterr().err
    )


def test_mutate_bad_service_accounts_file_names_file_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "sa.yaml"
    bad.write_text("apiVersion: v1\nkind: ServiceAccount\nmetadata: {namespace: x}\n")
    assert (
        main(["mutate", "-f", str(EXAMPLES / "pod.yaml"), "--service-accounts-file", str(bad)]) == 2
    )
    assert f"{bad}: document 1.metadata.name: missing or not a string" in capsys.readouterr().err


def test_mutate_container_credentials_mode(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "cc.json"
    config.write_text('{"identities": [{"namespace": "default", "serviceAccount": "s3-reader"}]}')
    code = main(
        [
            "mutate",
            "-f",
            str(EXAMPLES / "pod.yaml"),
            "--service-accounts-file",
            SA_FILE,
            "--watch-container-credentials-config",
            str(config),
        ]
    )
    assert code == 0
    pod = yaml.safe_load(capsys.readouterr().out)
    assert pod["metadata"]["labels"] == {"eks.amazonaws.com/pod-identity": "enabled"}
    assert env_names(pod["spec"]["containers"][0]) == [
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    ]


def test_mutate_composes_bare_role_names_with_account_flags(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sa = tmp_path / "sa.yaml"
    sa.write_text(
        "kind: ServiceAccount\nmetadata: {name: s3-reader, namespace: default, annotations: {eks.amazonaws.com/role-arn: team/reader}}\n"
    )
    argv = [
        "mutate",
        "-f",
        str(EXAMPLES / "pod.yaml"),
        "--service-accounts-file",
        str(sa),
        "--compose-role-arn",
        "-o",
        "json",
    ]
    assert main([*argv, "--aws-account-id", "111122223333", "--aws-partition", "aws-cn"]) == 0
    pod = orjson.loads(capsys.readouterr().out)
    assert (
        pod["spec"]["containers"][0]["env"][0]["value"]
        == "arn:aws-cn:iam::111122223333:role/team/reader"
    )
    assert main(argv) == 2
    assert "--compose-role-arn needs --aws-account-id here" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("service_accounts", "warning"),
    [
        (
            None,
            "warning: ServiceAccount default/s3-reader not found: no --service-accounts-file was "
            "given and the input holds no ServiceAccount; the pod is unchanged\n",
        ),
        (
            SA_FILE,
            "warning: ServiceAccount default/default has no role-arn annotation; "
            "the pod is unchanged\n",
        ),
    ],
    ids=["serviceaccount-missing", "no-role"],
)
def test_mutate_warns_when_the_pod_comes_back_unchanged(
    service_accounts: str | None,
    warning: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    pod = yaml.safe_load((EXAMPLES / "pod.yaml").read_text())
    if service_accounts is not None:
        del pod["spec"]["serviceAccountName"]  # runs as "default", which has no role
    source = tmp_path / "pod.yaml"
    source.write_text(yaml.safe_dump(pod))
    argv = ["mutate", "-f", str(source)]
    if service_accounts is not None:
        argv += ["--service-accounts-file", service_accounts]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert yaml.safe_load(captured.out) == pod
    assert captured.err == warning


def test_mutate_names_the_sources_it_read_when_the_serviceaccount_is_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pod = yaml.safe_load((EXAMPLES / "pod.yaml").read_text())
    pod["spec"]["serviceAccountName"] = "nobody"
    other = {"kind": "ServiceAccount", "metadata": {"name": "other", "namespace": "default"}}
    source = tmp_path / "pod.yaml"
    source.write_text(yaml.safe_dump_all([other, pod]))
    assert main(["mutate", "-f", str(source)]) == 0
    assert capsys.readouterr().err == (
        f"warning: ServiceAccount default/nobody not found in -f {source}; the pod is unchanged\n"
    )
    assert main(["mutate", "-f", str(source), "--service-accounts-file", SA_FILE]) == 0
    assert capsys.readouterr().err == (
        f"warning: ServiceAccount default/nobody not found in --service-accounts-file {SA_FILE} "
        f"or -f {source}; the pod is unchanged\n"
    )


@pytest.mark.parametrize("flag", ["-n", "--namespace", "--pod-namespace"])
def test_mutate_takes_the_namespace_as_kubectl_spells_it(
    flag: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pod = yaml.safe_load((EXAMPLES / "pod.yaml").read_text())
    pod["metadata"].pop("namespace", None)
    account = {
        "kind": "ServiceAccount",
        "metadata": {
            "name": pod["spec"]["serviceAccountName"],
            "namespace": "team-a",
            "annotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::111122223333:role/a"},
        },
    }
    source = tmp_path / "pod.yaml"
    source.write_text(yaml.safe_dump_all([account, pod]))
    assert main(["mutate", "-f", str(source), flag, "team-a", "-o", "json"]) == 0
    mutated = orjson.loads(capsys.readouterr().out)
    assert "AWS_ROLE_ARN" in env_names(mutated["spec"]["containers"][0])


def help_of(capsys: pytest.CaptureFixture[str], *command: str) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    assert exit_info.value.code == 0
    return capsys.readouterr().out


def test_only_serve_help_promises_reloads(capsys: pytest.CaptureFixture[str]) -> None:
    # only serve watches its files; mutate and doctor read each once
    assert "reloaded" not in help_of(capsys, "mutate")
    assert "reloaded" not in help_of(capsys, "doctor")
    assert "reloaded when it changes" in help_of(capsys, "serve")
