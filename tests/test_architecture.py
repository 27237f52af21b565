"""The package picture of docs/architecture.md holds for every import in webhook/.

The picture lists the packages top to bottom; a module may import its own package, the packages
below it and the leaves the document names, never a package above it. The core
(webhook/mutation/) imports only itself and the leaves, and nothing that does I/O, reads the
clock or belongs to a framework. Imports inside functions and under TYPE_CHECKING count too."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "webhook"
ARCHITECTURE = ROOT / "docs" / "architecture.md"

# What "no I/O, no clock, no framework" rules out in the core, by top-level module name.
NOT_IN_THE_CORE = frozenset(
    {
        "asyncio",
        "datetime",
        "fastapi",
        "http",
        "httpx",
        "io",
        "kubernetes",
        "logging",
        "os",
        "pathlib",
        "shutil",
        "socket",
        "ssl",
        "starlette",
        "subprocess",
        "sys",
        "tempfile",
        "threading",
        "time",
        "urllib3",
        "uvicorn",
    }
)
# urllib.parse is pure; urllib.request is I/O.
NOT_IN_THE_CORE_DOTTED = frozenset({"urllib.request", "urllib.error"})


def picture() -> tuple[list[str], set[str]]:
    """(the packages top to bottom, the leaves) as docs/architecture.md names them."""
    text = ARCHITECTURE.read_text()
    block = text.split("```", 2)[1]
    order = [m.group(1) for m in re.finditer(r"^webhook/(\w+)(?:/|\.py)", block, re.M)]
    beside = text.split("Beside them", 1)[1].split("\n\n", 1)[0]
    leaves = set(re.findall(r"`webhook/(\w+)\.py`", beside))
    return order, leaves


def unit_of(path: Path) -> str:
    """The picture's name for a module: its top-level package, or the module at the top."""
    relative = path.relative_to(PACKAGE)
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


def imported(path: Path) -> list[tuple[int, str]]:
    """(line, module) for every import in the file, relative ones resolved."""
    tree = ast.parse(path.read_text(), str(path))
    package = ".".join(("webhook", *path.relative_to(PACKAGE).parent.parts))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, module] if module else base)
            found.append((node.lineno, module))
    return found


MODULES = sorted(PACKAGE.rglob("*.py"))


def test_the_picture_names_every_package_and_module_at_the_top() -> None:
    order, leaves = picture()
    assert order[-1] == "mutation", "the core is the bottom of the picture: it imports only itself"
    units = {unit_of(path) for path in MODULES} - {"__init__", "__main__"}
    assert units - set(order) - leaves == set(), "add these to docs/architecture.md's picture"
    assert set(order) - units == set(), "the picture names packages that do not exist"
    assert len(order) == len(set(order))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_run_down_the_picture(path: Path) -> None:
    order, leaves = picture()
    rank = {name: index for index, name in enumerate(order)}
    unit = unit_of(path)
    upward = []
    for line, module in imported(path):
        parts = module.split(".")
        if parts[0] != "webhook" or len(parts) == 1:
            continue
        target = parts[1]
        if target == unit:
            continue
        if unit in leaves:
            upward.append(f"line {line}: {module} (a leaf imports nothing of the webhook)")
        elif target in leaves:
            continue
        elif unit == "__init__":
            upward.append(f"line {line}: {module}")
        elif unit == "__main__":
            continue  # `python -m webhook` starts the command line, above everything
        elif rank[target] < rank[unit]:
            upward.append(f"line {line}: {module} ({target} is above {unit})")
    assert upward == []


@pytest.mark.parametrize("path", sorted((PACKAGE / "mutation").rglob("*.py")), ids=lambda p: p.name)
def test_the_core_does_no_io_reads_no_clock_and_uses_no_framework(path: Path) -> None:
    banned = [
        f"line {line}: {module}"
        for line, module in imported(path)
        if module.split(".")[0] in NOT_IN_THE_CORE
        or any(module == name or module.startswith(name + ".") for name in NOT_IN_THE_CORE_DOTTED)
    ]
    assert banned == []
