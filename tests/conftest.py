from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.server import CertFiles, write_certs

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test of tests/e2e carries the `e2e` marker and every test of tests/upstream the
    `upstream` marker, before `-m` selects on them."""
    e2e = ROOT / "tests" / "e2e"
    upstream = ROOT / "tests" / "upstream"
    for item in items:
        parents = Path(str(item.path)).parents
        if e2e in parents:
            item.add_marker(pytest.mark.e2e)
        if upstream in parents:
            item.add_marker(pytest.mark.upstream)


@pytest.fixture(scope="session")
def cert_files(tmp_path_factory: pytest.TempPathFactory) -> CertFiles:
    return write_certs(tmp_path_factory.mktemp("certs"))
