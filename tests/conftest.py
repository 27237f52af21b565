from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.server import CertFiles, write_certs

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"


@pytest.fixture(scope="session")
def cert_files(tmp_path_factory: pytest.TempPathFactory) -> CertFiles:
    return write_certs(tmp_path_factory.mktemp("certs"))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--shard",
        default="",
        metavar="K/N",
        help="run every Nth collected test from the Kth (0-based); `make test` runs 0/2 and 1/2 "
        "side by side",
    )


@pytest.hookimpl(trylast=True)  # after -m has deselected, so the shards come out even
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Test by test rather than module by module: a few modules hold most of the waiting, and
    # alternating tests splits it evenly; a module-scoped server then starts in both shards.
    shard = config.getoption("shard")
    if not shard:
        return
    index, count = (int(part) for part in shard.split("/"))
    if not 0 <= index < count:
        raise pytest.UsageError(f"--shard {shard}: expected K/N with 0 <= K < N")
    config.hook.pytest_deselected(items=[t for n, t in enumerate(items) if n % count != index])
    items[:] = [t for n, t in enumerate(items) if n % count == index]
