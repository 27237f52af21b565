"""ServiceAccount and container-credentials files: parsing, errors, reload."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from webhook.mutation.serviceaccount import IdentityDefaults
from webhook.sources.errors import ConfigError
from webhook.sources.files.containercredentials import parse_container_credentials
from webhook.sources.files.watchedfile import WatchedFile
from webhook.sources.serviceaccounts.file import parse_service_accounts
from webhook.sources.serviceaccounts.store import ServiceAccountStore

DEFAULTS = IdentityDefaults("eks.amazonaws.com", "sts.amazonaws.com", False, 86400)
ROLE = "arn:aws:iam::111122223333:role/a"
ONE = f"apiVersion: v1\nkind: ServiceAccount\nmetadata: {{name: a, namespace: n, annotations: {{eks.amazonaws.com/role-arn: '{ROLE}'}}}}\n"


@pytest.mark.parametrize(
    "content",
    [
        ONE,
        "---\n"
        + ONE
        + "---\napiVersion: v1\nkind: ServiceAccount\nmetadata: {name: b, namespace: n}\n",
        "apiVersion: v1\nkind: List\nitems:\n- " + ONE.replace("\n", "\n  "),
        "apiVersion: v1\nkind: ServiceAccountList\nitems:\n- " + ONE.replace("\n", "\n  "),
    ],
    ids=["one-object", "multi-document", "v1-list", "serviceaccount-list"],
)
def test_service_accounts_file_shapes(content: str) -> None:
    entries = parse_service_accounts(content.encode(), DEFAULTS, source="sa.yaml")
    assert entries["n/a"].role_arn == ROLE


def test_service_account_without_namespace_is_in_default() -> None:
    entries = parse_service_accounts(
        b"kind: ServiceAccount\nmetadata: {name: a}\n", DEFAULTS, source="f"
    )
    assert list(entries) == ["default/a"]


def test_service_accounts_without_our_annotations_share_one_entry() -> None:
    content = b"kind: List\nitems:\n- {kind: ServiceAccount, metadata: {name: a, annotations: {other/x: y}}}\n- {kind: ServiceAccount, metadata: {name: b}}\n"
    entries = parse_service_accounts(content, DEFAULTS, source="f")
    assert entries["default/a"] is entries["default/b"]
    assert entries["default/a"].role_arn == ""


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("key: [unclosed", "sa.yaml: not valid YAML"),
        ("- a\n", "sa.yaml: document 1: expected a ServiceAccount or a List of them"),
        (
            "kind: ConfigMap\nmetadata: {name: a}\n",
            "sa.yaml: document 1.kind: expected ServiceAccount, found 'ConfigMap'",
        ),
        (
            "kind: ServiceAccount\n",
            "sa.yaml: document 1.metadata: missing; a ServiceAccount needs a name",
        ),
        (
            "kind: ServiceAccount\nmetadata: {name: 5}\n",
            "sa.yaml: document 1.metadata.name: missing or not a string",
        ),
        ("kind: List\nitems: {a: 1}\n", "sa.yaml: document 1.items: expected a list"),
        (
            "kind: List\nitems:\n- {kind: ServiceAccount, metadata: {name: a, annotations: {eks.amazonaws.com/token-expiration: 3600}}}\n",
            "sa.yaml: document 1.items[0].metadata.annotations: expected a mapping of strings to strings",
        ),
    ],
    ids=[
        "bad-yaml",
        "not-a-mapping",
        "wrong-kind",
        "no-metadata",
        "name-not-string",
        "items-not-list",
        "unquoted-number",
    ],
)
def test_bad_service_accounts_file_names_file_field_and_reason(content: str, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_service_accounts(content.encode(), DEFAULTS, source="sa.yaml")
    assert str(error.value).startswith(message)


def test_container_credentials_file_lists_service_accounts() -> None:
    keys = parse_container_credentials(
        b'{"identities":[{"namespace":"a","serviceAccount":"b"}]}', source="cc.json"
    )
    assert keys == frozenset({"a/b"})


@pytest.mark.parametrize("content", [b"", b"  \n"])
def test_empty_container_credentials_file_clears_the_list(content: bytes) -> None:
    assert parse_container_credentials(content, source="cc.json") == frozenset()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{", "cc.json: not valid JSON"),
        (b"[]", 'cc.json: expected an object {"identities": [...]}'),
        (b'{"identities": {}}', "cc.json: identities: expected a list"),
        (
            b'{"identities": [{"namespace": "a"}]}',
            "cc.json: identities[0].serviceAccount: missing or not a string",
        ),
        (b'{"identities": [5]}', "cc.json: identities[0]: expected"),
    ],
)
def test_bad_container_credentials_file_is_rejected_with_field(
    content: bytes, message: str
) -> None:
    with pytest.raises(ConfigError) as error:
        parse_container_credentials(content, source="cc.json")
    assert str(error.value).startswith(message)


def test_watched_file_reloads_changes_and_keeps_last_good_config(tmp_path: Path) -> None:
    path = tmp_path / "sa.yaml"
    path.write_text(ONE)
    store = ServiceAccountStore()
    reloads: list[tuple[str, bool]] = []
    watched = WatchedFile(
        path,
        lambda content: store.replace_all(parse_service_accounts(content, DEFAULTS, source=path)),
        name="serviceaccounts",
        on_reload=lambda name, ok: reloads.append((name, ok)),
    )
    watched.load_now()
    assert watched.poll() is False  # unchanged content: nothing to do
    path.write_text(ONE.replace("name: a", "name: b"))
    assert watched.poll() is True
    assert store.get("n", "b") is not None and store.get("n", "a") is None
    path.write_text("kind: ConfigMap\n")
    assert watched.poll() is False
    assert store.get("n", "b") is not None  # the last good config stays
    assert "document 1.kind: expected ServiceAccount" in watched.last_error
    assert watched.poll() is False
    assert reloads == [("serviceaccounts", True), ("serviceaccounts", False)]
    path.unlink()
    assert watched.poll() is False
    assert "cannot read file" in watched.last_error


def test_store_wait_for_returns_when_the_entry_arrives() -> None:
    async def scenario() -> tuple[object, object]:
        store = ServiceAccountStore()
        identity = parse_service_accounts(ONE.encode(), DEFAULTS, source="f")["n/a"]
        asyncio.get_running_loop().call_later(0.05, store.put, "n/a", identity)
        found = await store.wait_for("n", "a", 5)
        missing = await store.wait_for("n", "never", 0.05)
        return found, missing

    found, missing = asyncio.run(scenario())
    assert found is not None and missing is None
