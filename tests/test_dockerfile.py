"""The image, as far as it can be checked without a Docker engine: Dockerfile, lock, .dockerignore."""

from __future__ import annotations

import fnmatch
import importlib.metadata
import json
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
SERVE_PORTS = {8443, 9999}  # the manifests' --port and --metrics-port


@dataclass(frozen=True)
class Instruction:
    keyword: str
    value: str
    line: int


def parse_dockerfile(text: str) -> list[Instruction]:
    """Instructions with continuation lines joined and comments dropped, as BuildKit reads them."""
    instructions: list[Instruction] = []
    pending = ""
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        pending += stripped
        keyword, _, value = pending.partition(" ")
        instructions.append(Instruction(keyword.upper(), value.strip(), start))
        pending = ""
    assert not pending, "Dockerfile ends inside a continued line"
    return instructions


DOCKERFILE = parse_dockerfile((ROOT / "Dockerfile").read_text())


def stages() -> list[list[Instruction]]:
    found: list[list[Instruction]] = []
    for instruction in DOCKERFILE:
        if instruction.keyword == "FROM":
            found.append([])
        if found:
            found[-1].append(instruction)
    return found


def final(keyword: str) -> Instruction:
    matches = [i for i in stages()[-1] if i.keyword == keyword]
    assert matches, f"the final stage has no {keyword}"
    return matches[-1]


def lock() -> dict[str, str]:
    pins: dict[str, str] = {}
    for number, line in enumerate((ROOT / "requirements.lock").read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        requirement = Requirement(line)
        specs = list(requirement.specifier)
        assert len(specs) == 1 and specs[0].operator == "==", (
            f"requirements.lock line {number}: {line!r} is not pinned with =="
        )
        pins[canonicalize_name(requirement.name)] = specs[0].version
    return pins


def runtime_closure() -> dict[str, str]:
    """Every distribution the package needs at run time, walked through the installed metadata."""
    environment: dict[str, Any] = dict(default_environment())
    seen: dict[str, str] = {}
    walked: set[tuple[str, str]] = set()
    todo = [(Requirement(r), "") for r in PYPROJECT["project"]["dependencies"]]
    while todo:
        requirement, extra = todo.pop()
        if requirement.marker and not requirement.marker.evaluate({**environment, "extra": extra}):
            continue
        name = canonicalize_name(requirement.name)
        distribution = importlib.metadata.distribution(name)
        seen[name] = distribution.version
        for wanted in [*sorted(requirement.extras), ""]:
            if (name, wanted) in walked:
                continue
            walked.add((name, wanted))
            for dependency in distribution.requires or []:
                todo.append((Requirement(dependency), wanted))
    return seen


def test_no_syntax_directive_so_builds_need_no_registry() -> None:
    # BuildKit fetches a `# syntax=` frontend from Docker Hub: offline builds would fail
    first_lines = (ROOT / "Dockerfile").read_text().splitlines()[:5]
    assert not [
        line for line in first_lines if line.lower().replace(" ", "").startswith("#syntax=")
    ]


def test_build_then_trimmed_base_then_one_flattened_layer() -> None:
    froms = [i.value for i in DOCKERFILE if i.keyword == "FROM"]
    assert froms == ["${PYTHON_IMAGE} AS build", "${PYTHON_IMAGE} AS runtime", "scratch"]
    args = dict(i.value.split("=", 1) for i in DOCKERFILE if i.keyword == "ARG" and "=" in i.value)
    assert args["PYTHON_IMAGE"] == "python:3.11-slim"
    build, runtime, final_stage = stages()
    # the runtime stage gets the virtual environment only, never the sources or a compiler
    assert [i.value for i in runtime if i.keyword == "COPY"] == [
        "--from=build /opt/webhook /opt/webhook"
    ]
    (trim,) = [i.value for i in runtime if i.keyword == "RUN"]
    assert "compileall" in trim and "site-packages/pip*" in trim and "ensurepip" in trim
    # the final image is that stage as one layer: deleted files do not linger underneath
    assert [i.value for i in final_stage if i.keyword == "COPY"] == ["--from=runtime / /"]
    assert not [i for i in final_stage if i.keyword == "RUN"]
    build_runs = " ".join(i.value for i in build if i.keyword == "RUN")
    assert "pip uninstall --yes --quiet pip setuptools" in build_runs
    assert '"$site"/kubernetes/aio' in build_runs


def test_pip_settings_are_build_arguments_of_the_build_stage_only() -> None:
    build = stages()[0]
    declared = {i.value.split("=")[0] for i in build if i.keyword == "ARG"}
    assert {"PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_TRUSTED_HOST"} <= declared
    later = " ".join(i.value for stage in stages()[1:] for i in stage)
    assert "PIP_" not in later


def test_oci_labels_carry_version_revision_source_and_license() -> None:
    labels = " ".join(i.value for i in stages()[-1] if i.keyword == "LABEL")
    found = dict(re.findall(r'(org\.opencontainers\.image\.[a-z]+)="([^"]*)"', labels))
    assert found["org.opencontainers.image.version"] == "${VERSION}"
    assert found["org.opencontainers.image.revision"] == "${REVISION}"
    assert found["org.opencontainers.image.source"] == "${SOURCE}"
    assert found["org.opencontainers.image.licenses"] == PYPROJECT["project"]["license"]["text"]
    build = (ROOT / "hack/image/build.sh").read_text()
    assert '--build-arg "VERSION=$VERSION"' in build and '--build-arg "REVISION=$REVISION"' in build


def test_upstream_entry_point_runs_the_console_script() -> None:
    (script,) = PYPROJECT["project"]["scripts"]
    wrapper = (ROOT / "hack/image/webhook.sh").read_text()
    assert wrapper.startswith("#!/bin/sh\n")
    assert f'"$BIN/{script}" "$@"' in wrapper
    build, runtime, _ = stages()
    assert any(
        i.value == "hack/image/webhook.sh /opt/webhook/bin/webhook"
        for i in build
        if i.keyword == "COPY"
    )
    assert "ln -s /opt/webhook/bin/webhook /webhook" in " ".join(
        i.value for i in runtime if i.keyword == "RUN"
    )


def test_every_copy_source_exists_and_passes_dockerignore() -> None:
    ignore = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert ignore[0] == "*", ".dockerignore is an allowlist"
    allowed = [pattern[1:].rstrip("/") for pattern in ignore if pattern.startswith("!")]
    sources = []
    for instruction in DOCKERFILE:
        if instruction.keyword != "COPY" or instruction.value.startswith("--from="):
            continue
        *names, _destination = instruction.value.split()
        sources += names
    assert sources == [
        "requirements.lock",
        "pyproject.toml",
        "README.md",
        "webhook",
        "hack/image/webhook.sh",
    ]
    for source in sources:
        assert (ROOT / source).exists(), f"Dockerfile COPY {source}: no such file"
        assert any(fnmatch.fnmatch(source, pattern) for pattern in allowed), (
            f"Dockerfile COPY {source}: excluded by .dockerignore"
        )


def test_runs_as_a_numeric_non_root_user() -> None:
    user = final("USER").value
    assert re.fullmatch(r"\d+(:\d+)?", user), f"USER {user} must be numeric for runAsNonRoot"
    assert all(int(part) != 0 for part in user.split(":"))
    assert user.split(":")[0] == "65532"  # the manifests' runAsUser


def test_nothing_is_written_at_run_time() -> None:
    env = final("ENV").value
    assert "PYTHONDONTWRITEBYTECODE=1" in env
    build = " ".join(i.value for i in stages()[0] if i.keyword == "RUN")
    assert "compileall" in build  # bytecode exists already, so a read-only root costs nothing


def test_entrypoint_is_the_packages_console_script_serving_by_default() -> None:
    (script,) = PYPROJECT["project"]["scripts"]
    assert json.loads(final("ENTRYPOINT").value) == [script]
    entry = {ep.name: ep for ep in importlib.metadata.entry_points(group="console_scripts")}
    assert entry[script].value == PYPROJECT["project"]["scripts"][script]
    cmd = json.loads(final("CMD").value)
    assert cmd[0] == "serve"
    from webhook.cli import build_parser
    from webhook.flags.shared import settings_from_args

    settings = settings_from_args(build_parser().parse_args(cmd))
    exposed = {int(port.split("/")[0]) for port in final("EXPOSE").value.split()}
    assert exposed == {settings.port, settings.metrics_port} == SERVE_PORTS


def test_dependencies_install_from_the_lock_without_resolving() -> None:
    build = [i.value for i in stages()[0] if i.keyword == "RUN"]
    assert any("--no-deps --requirement requirements.lock" in run for run in build)
    assert any("pip check" in run for run in build)


def test_lock_pins_every_runtime_dependency_and_nothing_else() -> None:
    pins = lock()
    closure = runtime_closure()
    for declared in PYPROJECT["project"]["dependencies"]:
        name = canonicalize_name(Requirement(declared).name)
        assert name in pins, f"requirements.lock does not pin {declared}"
        assert Requirement(declared).specifier.contains(pins[name]), (
            f"requirements.lock pins {name}=={pins[name]}, outside pyproject's {declared}"
        )
    assert sorted(closure) == sorted(pins), (
        f"missing from the lock: {sorted(closure.keys() - pins.keys())}; "
        f"not needed: {sorted(pins.keys() - closure.keys())}; run make lock"
    )


def test_lock_matches_what_the_tests_run_against() -> None:
    installed = runtime_closure()
    differing = {
        name: (pinned, installed[name])
        for name, pinned in lock().items()
        if installed.get(name) != pinned
    }
    assert not differing, f"(lock, .venv) versions differ: {differing}; run make lock"


def test_parser_joins_continuations_and_skips_comments_inside_them() -> None:
    parsed = parse_dockerfile("# top\nFROM a\nRUN x \\\n  # note\n  y\n")
    assert parsed == [Instruction("FROM", "a", 2), Instruction("RUN", "x  y", 3)]


def test_parser_rejects_a_dangling_continuation() -> None:
    with pytest.raises(AssertionError, match="continued line"):
        parse_dockerfile("RUN x \\\n")
