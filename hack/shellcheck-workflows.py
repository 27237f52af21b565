"""shellcheck every `run:` step of the forge's workflow files, as the runner executes it.

    python hack/shellcheck-workflows.py .github/workflows/*.yml

A step runs as `bash --noprofile --norc -eo pipefail {file}` unless it names another shell;
GitHub expressions (`${{ }}`) never appear inside a script (they would be pasted into it as
code), only in `env:`, which is where the scripts read them from.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml


def scripts(workflow: Path) -> list[tuple[str, str, str]]:
    """(where, shell, script) of each run step."""
    document = yaml.safe_load(workflow.read_text())
    defaults = (document.get("defaults") or {}).get("run", {})
    found = []
    for job_id, job in (document.get("jobs") or {}).items():
        job_shell = (job.get("defaults") or {}).get("run", {}).get("shell")
        for number, step in enumerate(job.get("steps") or [], start=1):
            if "run" not in step:
                continue
            shell = step.get("shell") or job_shell or defaults.get("shell") or "bash"
            where = f"{workflow}: job {job_id}, step {number} ({step.get('name', 'unnamed')})"
            found.append((where, shell, step["run"]))
    return found


def main(paths: list[str]) -> int:
    shellcheck = shutil.which("shellcheck") or shutil.which(
        "shellcheck", path=str(Path(sys.executable).parent)
    )
    if shellcheck is None:
        print("shellcheck is not installed (make tools installs it)", file=sys.stderr)
        return 2
    failed = 0
    checked = 0
    for path in map(Path, paths):
        for where, shell, script in scripts(path):
            checked += 1
            if "${{" in script:
                print(f"{where}: a GitHub expression inside the script; pass it in env:")
                failed += 1
                continue
            if shell.split()[0] not in ("bash", "sh"):
                print(f"{where}: shell {shell!r} is not checked")
                failed += 1
                continue
            with tempfile.NamedTemporaryFile("w", suffix=".sh") as handle:
                handle.write(f"#!/usr/bin/env {shell.split()[0]}\nset -eo pipefail\n{script}")
                handle.flush()
                result = subprocess.run(
                    [shellcheck, "--severity=style", handle.name],
                    capture_output=True,
                    text=True,
                    check=False,
                )
            if result.returncode != 0:
                print(f"{where}:\n{result.stdout.replace(handle.name, 'step')}")
                failed += 1
    print(f"shellcheck: {checked} workflow steps, {failed} with findings")
    return 1 if failed or not checked else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
