"""The benchmark's ServiceAccounts: the one the bodies run as, among thousands of others."""

from __future__ import annotations

from pathlib import Path

# The shared sample bodies beside the project when they are there; else the project's copy.
SHARED_BODIES = Path(__file__).resolve().parent.parent.parent / "shared" / "admission"
OWN_BODIES = Path(__file__).parent / "bodies"
BODIES = SHARED_BODIES if (SHARED_BODIES / "typical.json").is_file() else OWN_BODIES
BODY_NAMES = ("small", "typical", "large")


def service_accounts_yaml(count: int) -> str:
    """A multi-document stream of `count` ServiceAccounts, including bodies/serviceaccount.yaml."""
    documents = [(BODIES / "serviceaccount.yaml").read_text().strip()]
    for i in range(count - 1):
        namespace = f"team-{i % 200:03d}"
        role = f"  annotations:\n    eks.amazonaws.com/role-arn: arn:aws:iam::111122223333:role/{namespace}-app-{i}\n"
        documents.append(
            "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n"
            f"  name: app-{i}\n  namespace: {namespace}\n" + (role if i % 2 == 0 else "")
        )
    return "\n---\n".join(documents) + "\n"


def body_path(name: str) -> Path:
    path = BODIES / f"{name}.json"
    if not path.is_file():
        raise SystemExit(
            f"benchmark body {name!r}: {path} does not exist; choose from {BODY_NAMES}"
        )
    return path
