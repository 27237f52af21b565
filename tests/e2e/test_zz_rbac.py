"""The webhook's RBAC in manifests/base against what it did to the real API server: a refused
request means a missing permission; a granted one it never used is one too many.

Named to run last: it reads the audit log of every case before it (pytest runs a folder's
files in name order)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.e2e import deployment
from tests.e2e.controlplane import ControlPlane


def test_no_request_of_the_webhook_was_refused(plane: ControlPlane) -> None:
    events = deployment.requests_of(plane)
    assert events, "the audit log holds no request of the webhook's ServiceAccount"
    assert deployment.refused(events) == [], "permissions missing from manifests/base"


def test_every_permission_granted_was_used(
    plane: ControlPlane, base_manifests: list[dict[str, Any]], request: pytest.FixtureRequest
) -> None:
    here = Path(__file__).parent
    ran = {Path(str(item.path)).name for item in request.session.items}
    whole = {p.name for p in here.glob("test_*.py")}
    if not whole <= ran:
        pytest.skip(f"needs the whole suite; this run has only {sorted(ran & whole)}")
    granted = deployment.granted_permissions(base_manifests)
    used = deployment.used_permissions(deployment.requests_of(plane))
    never = sorted(granted - used)
    assert never == [], (
        f"granted by manifests/base but never needed (apiGroup, resource, verb): {never}"
    )
