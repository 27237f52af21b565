"""`pod-identity-webhook certs`: files, modes, names, key types, overwrite rules, --patch-manifest."""

from __future__ import annotations

import base64
import copy
import datetime
import ipaddress
import shutil
import stat
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from webhook.cli import main

ROOT = Path(__file__).resolve().parent.parent
BASE_WEBHOOKS = ROOT / "manifests/base/mutatingwebhookconfiguration.yaml"


def certs(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["certs", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def load_cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_writes_ca_and_serving_pair_with_private_modes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "certs"
    code, stdout, _ = certs(capsys, "--out", str(out))
    assert code == 0
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in out.iterdir()}
    assert modes == {"ca.crt": 0o644, "ca.key": 0o600, "tls.crt": 0o644, "tls.key": 0o600}
    # stdout is exactly the caBundle: the base64 of ca.crt
    assert base64.b64decode(stdout.strip()) == (out / "ca.crt").read_bytes()
    ca, cert = load_cert(out / "ca.crt"), load_cert(out / "tls.crt")
    cert.verify_directly_issued_by(ca)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.SERVER_AUTH]
    key = serialization.load_pem_private_key((out / "tls.key").read_bytes(), password=None)
    assert key.public_key() == cert.public_key()


def test_names_cover_the_service_and_the_extra_dns_and_ip(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, _ = certs(
        capsys,
        "--out",
        str(tmp_path),
        "--service",
        "piw",
        "--namespace",
        "infra",
        "--dns",
        "localhost",
        "--ip",
        "127.0.0.1",
        "--ip",
        "::1",
    )
    assert code == 0
    cert = load_cert(tmp_path / "tls.crt")
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "piw.infra.svc"
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == [
        "piw",
        "piw.infra",
        "piw.infra.svc",
        "piw.infra.svc.cluster.local",
        "localhost",
    ]
    assert san.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    ]


def test_defaults_name_the_manifests_service(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert certs(capsys, "--out", str(tmp_path))[0] == 0
    san = load_cert(tmp_path / "tls.crt").extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    )
    assert "pod-identity-webhook.pod-identity-webhook.svc" in san.value.get_values_for_type(
        x509.DNSName
    )


@pytest.mark.parametrize(
    ("flags", "key_type", "size"),
    [([], ec.EllipticCurvePrivateKey, 256), (["--key-algorithm", "rsa"], rsa.RSAPrivateKey, 2048)],
    ids=["ecdsa-p256-default", "rsa-2048"],
)
def test_key_algorithm(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    flags: list[str],
    key_type: type,
    size: int,
) -> None:
    assert certs(capsys, "--out", str(tmp_path), *flags)[0] == 0
    for name in ("ca.key", "tls.key"):
        key = serialization.load_pem_private_key((tmp_path / name).read_bytes(), password=None)
        assert isinstance(key, key_type)
        assert isinstance(key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey))
        assert key.key_size == size
        if isinstance(key, ec.EllipticCurvePrivateKey):
            assert key.curve.name == "secp256r1"


def test_validity_flags(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert certs(capsys, "--out", str(tmp_path), "--days", "30", "--ca-days", "400")[0] == 0
    now = datetime.datetime.now(datetime.UTC)
    cert, ca = load_cert(tmp_path / "tls.crt"), load_cert(tmp_path / "ca.crt")
    assert abs((cert.not_valid_after_utc - now) - datetime.timedelta(days=30)) < datetime.timedelta(
        minutes=5
    )
    assert abs((ca.not_valid_after_utc - now) - datetime.timedelta(days=400)) < datetime.timedelta(
        minutes=5
    )


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--days", "0"], "--days=0 --ca-days=3650: expected 0 < days <= ca-days"),
        (["--days", "90", "--ca-days", "30"], "expected 0 < days <= ca-days"),
        (["--ip", "not-an-ip"], "--ip='not-an-ip' is not an IP address"),
    ],
    ids=["zero-days", "ca-shorter-than-cert", "bad-ip"],
)
def test_bad_flags_are_one_line_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], message: str
) -> None:
    code, stdout, stderr = certs(capsys, "--out", str(tmp_path / "out"), *flags)
    assert code == 2
    assert stdout == ""
    assert message in stderr and "Traceback" not in stderr
    assert not (tmp_path / "out").exists()


def test_refuses_to_overwrite_without_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert certs(capsys, "--out", str(tmp_path))[0] == 0
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    code, stdout, stderr = certs(capsys, "--out", str(tmp_path))
    assert code == 2 and stdout == ""
    assert "refusing to overwrite" in stderr and str(tmp_path / "tls.key") in stderr
    assert "--force" in stderr
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    assert certs(capsys, "--out", str(tmp_path), "--force")[0] == 0
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert after.keys() == before.keys()
    assert all(after[name] != before[name] for name in before)


def test_one_existing_key_is_enough_to_refuse(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "ca.key").write_text("precious")
    code, _, stderr = certs(capsys, "--out", str(tmp_path))
    assert code == 2 and str(tmp_path / "ca.key") in stderr
    assert (tmp_path / "ca.key").read_text() == "precious"
    assert not (tmp_path / "tls.crt").exists()


def test_patch_manifest_sets_every_webhooks_ca_bundle(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = tmp_path / "webhooks.yaml"
    other = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "keep"}}
    original = yaml.safe_load(BASE_WEBHOOKS.read_text())
    # the base has one webhook; a second, as the fargate component adds, must get one too
    second = {**copy.deepcopy(original["webhooks"][0]), "name": "second.webhook.example.com"}
    original["webhooks"].append(second)
    manifest.write_text(yaml.safe_dump(original) + "---\n" + yaml.safe_dump(other))
    code, stdout, stderr = certs(
        capsys, "--out", str(tmp_path / "certs"), "--patch-manifest", str(manifest)
    )
    assert code == 0 and f"wrote caBundle into {manifest}" in stderr
    config, kept = yaml.safe_load_all(manifest.read_text())
    assert kept == other
    assert len(config["webhooks"]) == len(original["webhooks"]) == 2
    ca = (tmp_path / "certs/ca.crt").read_bytes()
    for patched, before in zip(config["webhooks"], original["webhooks"], strict=True):
        assert base64.b64decode(patched["clientConfig"]["caBundle"]) == ca
        assert patched["clientConfig"]["caBundle"] == stdout.strip()
        del patched["clientConfig"]["caBundle"]
        assert patched == before  # nothing else changed


def test_patch_manifest_replaces_an_old_ca_bundle(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = tmp_path / "webhooks.yaml"
    shutil.copy(BASE_WEBHOOKS, manifest)
    assert certs(capsys, "--out", str(tmp_path / "a"), "--patch-manifest", str(manifest))[0] == 0
    assert certs(capsys, "--out", str(tmp_path / "b"), "--patch-manifest", str(manifest))[0] == 0
    config = yaml.safe_load(manifest.read_text())
    ca = (tmp_path / "b/ca.crt").read_bytes()
    assert all(base64.b64decode(w["clientConfig"]["caBundle"]) == ca for w in config["webhooks"])


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "No such file or directory"),
        ("webhooks: [unclosed\n", "while parsing a flow sequence"),
        ("apiVersion: v1\nkind: ConfigMap\n", "no MutatingWebhookConfiguration in it"),
        (
            "kind: MutatingWebhookConfiguration\nmetadata: {name: w}\nwebhooks: {a: 1}\n",
            "MutatingWebhookConfiguration w: webhooks must be a non-empty list",
        ),
        (
            "kind: MutatingWebhookConfiguration\nmetadata: {name: w}\nwebhooks: []\n",
            "MutatingWebhookConfiguration w: webhooks must be a non-empty list",
        ),
        (
            "kind: MutatingWebhookConfiguration\nmetadata: {name: w}\nwebhooks: [x]\n",
            "MutatingWebhookConfiguration w: webhooks[0] is not a mapping",
        ),
        (
            "kind: MutatingWebhookConfiguration\nmetadata: {name: w}\n"
            "webhooks: [{name: a, clientConfig: 3}]\n",
            "webhooks[0].clientConfig is not a mapping",
        ),
    ],
    ids=["missing", "invalid-yaml", "no-config", "webhooks-mapping", "no-webhooks", "scalar", "cc"],
)
def test_bad_manifest_is_a_clear_error_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, message: str
) -> None:
    manifest = tmp_path / "webhooks.yaml"
    if content is not None:
        manifest.write_text(content)
    code, stdout, stderr = certs(
        capsys, "--out", str(tmp_path / "certs"), "--patch-manifest", str(manifest)
    )
    assert code == 2 and stdout == ""
    assert stderr.startswith(f"pod-identity-webhook certs: --patch-manifest {manifest}: ")
    assert message in stderr and "Traceback" not in stderr
    assert not (tmp_path / "certs").exists()
    if content is not None:
        assert manifest.read_text() == content
