from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.server import CertFiles, write_certs

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"


@pytest.fixture(scope="session")
def cert_files(tmp_path_factory: pytest.TempPathFactory) -> CertFiles:
    return write_certs(tmp_path_factory.mktemp("certs"))
