"""Releases: one version source, the license, the changelog and the forge's workflows."""

from __future__ import annotations

import importlib.metadata
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import yaml

from webhook import __version__

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / ".github/workflows"


def workflow(name: str) -> dict[Any, Any]:
    document: dict[Any, Any] = yaml.safe_load((WORKFLOWS / name).read_text())
    return document


def steps(document: dict[str, Any], job: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = document["jobs"][job]["steps"]
    return found


def test_the_version_has_one_source() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "version" not in project and project["dynamic"] == ["version"]
    assert importlib.metadata.version("pod-identity-webhook") == __version__
    base = yaml.safe_load((ROOT / "manifests/base/kustomization.yaml").read_text())
    (image,) = base["images"]
    assert image["newTag"] == __version__


def test_license_is_the_apache_2_text_pyproject_names() -> None:
    text = (ROOT / "LICENSE").read_text()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == {"text": "Apache-2.0"}
    assert "Apache License\n                           Version 2.0, January 2004" in text
    assert "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION" in text
    assert "END OF TERMS AND CONDITIONS" in text and "APPENDIX" in text
    assert len(text.splitlines()) == 202


def release_notes(version: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ROOT / "hack/release-notes.sh"), version], capture_output=True, text=True, check=False
    )


def test_changelog_has_notes_for_the_current_version() -> None:
    notes = release_notes(__version__)
    assert notes.returncode == 0, notes.stderr
    assert notes.stdout.startswith("### ") and "## [" not in notes.stdout
    assert "## [Unreleased]" in (ROOT / "CHANGELOG.md").read_text()


def test_release_notes_refuse_a_version_without_a_section() -> None:
    notes = release_notes("99.0.0")
    assert notes.returncode == 1
    assert "no notes for 99.0.0" in notes.stderr


def test_ci_runs_lint_tests_the_image_test_and_the_kind_e2e_on_every_push() -> None:
    ci = workflow("ci.yml")
    assert ci[True]["push"] == {"branches": ["**"]}  # YAML 1.1 reads `on` as True
    runs = [s.get("run", "") for s in steps(ci, "test")]
    assert [r for r in runs if r.startswith("make")] == ["make lint", "make test", "make test-slow"]
    e2e = " ".join(s.get("run", "") for s in steps(ci, "e2e"))
    assert "hack/kind/e2e.sh" in e2e
    assert ci["permissions"] == {"contents": "read"}


def test_a_version_tag_pushes_a_multi_arch_image_with_provenance_and_an_sbom() -> None:
    release = workflow("release.yml")
    assert release[True]["push"] == {"tags": ["v*"]}
    assert release["permissions"] == {}
    job = release["jobs"]["release"]
    assert job["permissions"] == {"contents": "write", "packages": "write"}
    (build,) = [s for s in job["steps"] if s.get("uses", "").startswith("docker/build-push")]
    options = build["with"]
    assert options["platforms"] == "linux/amd64,linux/arm64"
    assert options["push"] is True and options["sbom"] is True
    assert options["provenance"] == "mode=max"
    assert "VERSION=${{ steps.meta.outputs.version }}" in options["build-args"]
    scripts = " ".join(s.get("run", "") for s in job["steps"])
    assert 'hack/release-notes.sh "$version"' in scripts
    assert '"$GITHUB_REF_NAME" != "v$version"' in scripts
    assert "gh release create" in scripts


def test_every_action_is_pinned_by_commit_and_checkouts_keep_no_token() -> None:
    for path in sorted(WORKFLOWS.glob("*.yml")):
        for job in yaml.safe_load(path.read_text())["jobs"].values():
            for step in job["steps"]:
                if "uses" not in step:
                    continue
                ref = step["uses"].split("@", 1)[1]
                assert len(ref) == 40 and all(c in "0123456789abcdef" for c in ref), step
                if step["uses"].startswith("actions/checkout@"):
                    assert step["with"]["persist-credentials"] is False
