"""`pod-identity-webhook oidc`: the self-hosted IRSA issuer kit, checked against kube-apiserver's
own key ids and JWKS and against an independent JOSE library (PyJWT)."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from tests.conftest import ROOT
from webhook.certs import issue
from webhook.cli import main
from webhook.oidc.jwks import key_set
from webhook.oidc.keys import key_id, parse_private_key, parse_public_keys

# public test keys and the ids/keyset kube-apiserver derives from them: see fixtures/oidc/README.md
K8S = Path(__file__).parent / "fixtures" / "oidc"
RSA_KID = "JHJehTTTZlsspKHT-GaJxK7Kd1NQgZJu3fyK6K_QDYU"
ECDSA_KID = "SoABiieYuNx4UdqYvZRVeuC6SihxgLrhLy9peHMHpTc"
ISSUER = "https://oidc.example.com/clusters/prod"


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["oidc", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def verify(token: str, keyset: dict[str, Any], *, audience: str = "sts.amazonaws.com") -> Any:
    """What STS does: pick the JWKS entry by the header's kid, check signature, iss and aud."""
    kid = jwt.get_unverified_header(token)["kid"]
    key = jwt.PyJWKSet.from_dict(keyset)[kid]
    return jwt.decode(
        token, key.key, algorithms=[key.algorithm_name], audience=audience, issuer=ISSUER
    )


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [
        ("k8s-rsa.pub.pem", RSA_KID),
        ("k8s-rsa.key.pem", RSA_KID),
        ("k8s-ecdsa.pub.pem", ECDSA_KID),
        ("k8s-ecdsa.key.pem", ECDSA_KID),
    ],
    ids=["rsa-public", "rsa-private-pkcs1", "ecdsa-public", "ecdsa-private-sec1"],
)
def test_kid_is_the_one_kube_apiserver_derives(fixture: str, expected: str) -> None:
    (key,) = parse_public_keys((K8S / fixture).read_bytes(), source=fixture)
    assert key_id(key) == expected


EC_PARAMETERS = b"-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n"


def test_openssl_ecparam_output_and_certificates_are_read_as_keys() -> None:
    # `openssl ecparam -genkey` writes an EC PARAMETERS block before the key
    with_params = EC_PARAMETERS + (K8S / "k8s-ecdsa.key.pem").read_bytes()
    assert [key_id(k) for k in parse_public_keys(with_params, source="ecparam")] == [ECDSA_KID]
    assert key_id(parse_private_key(with_params, source="ecparam").public_key()) == ECDSA_KID
    pem = issue(common_name="x", dns_names=["x"], ip_addresses=[], days=1, ca_days=1)
    (from_cert,) = parse_public_keys(pem.cert, source="tls.crt")
    (from_key,) = parse_public_keys(pem.key, source="tls.key")
    assert key_id(from_cert) == key_id(from_key)


def test_jwks_is_byte_for_byte_kube_apiservers_keyset(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["jwks", "--public-key", str(K8S / "k8s-rsa.pub.pem")]
    code, out, _ = run([*argv, "--public-key", str(K8S / "k8s-ecdsa.pub.pem")], capsys)
    assert code == 0
    compact = json.dumps(json.loads(out), separators=(",", ":"))
    assert compact == (K8S / "k8s-keyset.json").read_text().strip()


def test_jwks_lists_a_key_once_and_keeps_rotation_order(
    capsys: pytest.CaptureFixture[str],
) -> None:
    ecdsa, rsa_key = str(K8S / "k8s-ecdsa.pub.pem"), str(K8S / "k8s-rsa.key.pem")
    argv = ["jwks", "--public-key", ecdsa, "--public-key", rsa_key, "--public-key", ecdsa]
    code, out, _ = run(argv, capsys)
    assert code == 0
    keys = json.loads(out)["keys"]
    assert [(k["kid"], k["alg"], k["use"]) for k in keys] == [
        (ECDSA_KID, "ES256", "sig"),
        (RSA_KID, "RS256", "sig"),
    ]
    assert "d" not in keys[1]  # never the private exponent


def test_jwks_ec_coordinates_are_always_32_bytes() -> None:
    # about 1 key in 256 has an x below 2**248, i.e. a leading zero byte: pick one deliberately
    key = next(
        k
        for k in (ec.derive_private_key(secret, ec.SECP256R1()) for secret in range(1, 5000))
        if k.public_key().public_numbers().x < 2**248
    )
    (point,) = key_set([key.public_key()])["keys"]
    assert len(jwt.utils.base64url_decode(point["x"])) == 32
    assert len(jwt.utils.base64url_decode(point["y"])) == 32
    assert jwt.PyJWK.from_dict(point).key.public_numbers() == key.public_key().public_numbers()


@pytest.mark.parametrize(
    ("argv", "alg", "bits"),
    [
        (["--algorithm", "rsa"], "RS256", 2048),
        (["--algorithm", "rsa", "--rsa-bits", "4096"], "RS256", 4096),
        (["--algorithm", "ecdsa"], "ES256", 256),
    ],
    ids=["rsa-2048", "rsa-4096", "ecdsa-p256"],
)
def test_minted_token_verifies_against_the_published_bundle(
    argv: list[str], alg: str, bits: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keys, site = tmp_path / "keys", tmp_path / "site"
    code, kid, _ = run(["keygen", "--out", str(keys), *argv], capsys)
    assert code == 0
    private, public = keys / "sa-signer.key", keys / "sa-signer.pub"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    signing_key = parse_private_key(private.read_bytes(), source="key")
    assert signing_key.key_size == bits
    bundle = ["bundle", "--issuer", ISSUER, "--public-key", str(public), "--out", str(site)]
    assert run(bundle, capsys)[0] == 0
    subject = "system:serviceaccount:payments:api-server"
    minted = ["token", "--private-key", str(private), "--issuer", ISSUER, "--subject", subject]
    code, token, _ = run([*minted, "--expiration", "900", "--uid", "1234-abcd"], capsys)
    assert code == 0
    token = token.strip()
    assert jwt.get_unverified_header(token) == {"alg": alg, "kid": kid.strip()}
    claims = verify(token, json.loads((site / "site" / "keys.json").read_text()))
    assert claims["aud"] == ["sts.amazonaws.com"]
    assert claims["sub"] == subject
    assert claims["kubernetes.io"] == {
        "namespace": "payments",
        "serviceaccount": {"name": "api-server", "uid": "1234-abcd"},
    }
    assert claims["exp"] - claims["iat"] == 900
    assert claims["nbf"] == claims["iat"]
    assert abs(claims["iat"] - time.time()) < 60
    discovery = json.loads((site / "site" / ".well-known" / "openid-configuration").read_text())
    assert discovery["id_token_signing_alg_values_supported"] == [alg]


@pytest.mark.parametrize("fixture", ["k8s-rsa.key.pem", "k8s-ecdsa.key.pem"])
def test_token_from_kube_apiserver_format_keys_verifies_with_its_keyset(
    fixture: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["token", "--private-key", str(K8S / fixture), "--issuer", ISSUER]
    argv += ["--subject", "system:serviceaccount:default:default"]
    code, token, _ = run([*argv, "--audience", "sts.amazonaws.com", "--audience", "vault"], capsys)
    assert code == 0
    keyset = json.loads((K8S / "k8s-keyset.json").read_text())
    assert verify(token.strip(), keyset, audience="vault")["aud"] == ["sts.amazonaws.com", "vault"]


def test_token_signed_by_another_key_does_not_verify(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["keygen", "--out", str(tmp_path)], capsys)[0] == 0
    argv = ["token", "--private-key", str(tmp_path / "sa-signer.key"), "--issuer", ISSUER]
    code, token, _ = run([*argv, "--subject", "system:serviceaccount:a:b"], capsys)
    assert code == 0
    keyset = json.loads((K8S / "k8s-keyset.json").read_text())
    with pytest.raises(KeyError):  # STS finds no key with this kid
        verify(token.strip(), keyset)
    forged = jwt.PyJWKSet.from_dict(keyset)[RSA_KID]
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token.strip(), forged.key, algorithms=["RS256"], audience="sts.amazonaws.com")


def test_discovery_document_has_the_fields_sts_reads(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["discovery", "--issuer", ISSUER, "--public-key", str(K8S / "k8s-rsa.pub.pem")]
    code, out, _ = run([*argv, "--public-key", str(K8S / "k8s-ecdsa.pub.pem")], capsys)
    assert code == 0
    assert json.loads(out) == {
        "issuer": ISSUER,
        "jwks_uri": f"{ISSUER}/keys.json",
        "authorization_endpoint": "urn:kubernetes:programmatic_authorization",
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256", "RS256"],
        "claims_supported": ["sub", "iss"],
    }


def test_discovery_without_keys_announces_rs256(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["discovery", "--issuer", "https://oidc.example.com"], capsys)
    assert code == 0
    document = json.loads(out)
    assert document["jwks_uri"] == "https://oidc.example.com/keys.json"
    assert document["id_token_signing_alg_values_supported"] == ["RS256"]


def test_bundle_writes_each_artifact_to_its_own_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bundle"
    argv = ["bundle", "--issuer", ISSUER, "--out", str(out)]
    argv += ["--public-key", str(K8S / "k8s-rsa.pub.pem"), "--namespace", "payments"]
    argv += ["--service-account", "api-server", "--account-id", "111122223333"]
    code, out_text, err = run(argv, capsys)
    assert code == 0
    assert out_text == ""  # nothing to pick apart: every artifact is a file
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()) == [
        "iam-commands.sh",
        "site/.well-known/openid-configuration",
        "site/keys.json",
        "trust-policy.json",
    ]
    site = out / "site"
    assert json.loads((site / "keys.json").read_text())["keys"][0]["kid"] == RSA_KID
    assert json.loads((site / ".well-known/openid-configuration").read_text())["issuer"] == ISSUER
    assert err.count("wrote ") == 4
    commands = (out / "iam-commands.sh").read_text().splitlines()
    assert commands[0] == "#!/bin/sh"
    assert [line for line in commands if not line.startswith("#")] == [
        "aws iam create-open-id-connect-provider --url https://oidc.example.com/clusters/prod "
        "--client-id-list sts.amazonaws.com"
    ]
    assert f"file://{out}/trust-policy.json" in commands[-1]
    policy = json.loads((out / "trust-policy.json").read_text())
    host_path = "oidc.example.com/clusters/prod"
    assert policy == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Federated": f"arn:aws:iam::111122223333:oidc-provider/{host_path}"},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": {
                        f"{host_path}:sub": "system:serviceaccount:payments:api-server",
                        f"{host_path}:aud": "sts.amazonaws.com",
                    }
                },
            }
        ],
    }


def test_bundle_marks_placeholders_and_passes_thumbprints(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["bundle", "--issuer", ISSUER, "--out", str(tmp_path), "--partition", "aws-cn"]
    argv += ["--public-key", str(K8S / "k8s-ecdsa.pub.pem"), "--thumbprint", "AB" * 20]
    code, _, err = run(argv, capsys)
    assert code == 0
    commands = (tmp_path / "iam-commands.sh").read_text()
    assert f"--thumbprint-list {'ab' * 20}" in commands
    assert "replace <ACCOUNT_ID>, <NAMESPACE>, <SERVICE_ACCOUNT> in it first" in commands
    assert "replace <ACCOUNT_ID>, <NAMESPACE>, <SERVICE_ACCOUNT> in" in err
    statement = json.loads((tmp_path / "trust-policy.json").read_text())["Statement"][0]
    assert statement["Principal"]["Federated"].startswith("arn:aws-cn:iam::<ACCOUNT_ID>:")
    sub = statement["Condition"]["StringEquals"]["oidc.example.com/clusters/prod:sub"]
    assert sub == "system:serviceaccount:<NAMESPACE>:<SERVICE_ACCOUNT>"


def test_token_is_written_without_a_trailing_newline(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["token", "--private-key", str(K8S / "k8s-rsa.key.pem"), "--issuer", ISSUER]
    code, token, _ = run([*argv, "--subject", SUBJECT], capsys)
    assert code == 0
    assert token.count(".") == 2
    assert token == token.strip()


def test_keygen_refuses_to_overwrite_without_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["keygen", "--out", str(tmp_path), "--algorithm", "ecdsa"], capsys)[0] == 0
    before = (tmp_path / "sa-signer.key").read_bytes()
    code, out, err = run(["keygen", "--out", str(tmp_path)], capsys)
    assert (code, out) == (2, "")
    assert err == (
        f"pod-identity-webhook oidc keygen: refusing to overwrite {tmp_path}/sa-signer.key, "
        f"{tmp_path}/sa-signer.pub; pass --force to replace them\n"
    )
    assert (tmp_path / "sa-signer.key").read_bytes() == before
    assert run(["keygen", "--out", str(tmp_path), "--force"], capsys)[0] == 0
    assert (tmp_path / "sa-signer.key").read_bytes() != before
    assert stat.S_IMODE((tmp_path / "sa-signer.key").stat().st_mode) == 0o600


def test_keygen_hint_keeps_the_old_public_keys_and_names_absolute_paths(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = run(["keygen", "--out", "irsa", "--algorithm", "ecdsa"], capsys)
    assert code == 0
    hint = err.split("\n", 1)[1]
    assert hint.startswith(
        f"kube-apiserver: --service-account-signing-key-file={tmp_path}/irsa/sa-signer.key\n"
        f"  --service-account-key-file={tmp_path}/irsa/sa-signer.pub in addition to the public "
        "keys it verifies with now"
    )
    assert "replacing them refuses every existing token" in hint


@pytest.fixture(scope="module")
def bad_keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("bad-keys")
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    pem = serialization.Encoding.PEM
    pkcs8 = serialization.PrivateFormat.PKCS8
    (folder / "ed25519.pem").write_bytes(
        ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(pem, public)
    )
    (folder / "ed25519.key").write_bytes(
        ed25519.Ed25519PrivateKey.generate().private_bytes(pem, pkcs8, serialization.NoEncryption())
    )
    (folder / "p384.pem").write_bytes(
        ec.generate_private_key(ec.SECP384R1()).public_key().public_bytes(pem, public)
    )
    (folder / "rsa1024.pem").write_bytes(
        rsa.generate_private_key(public_exponent=65537, key_size=1024)
        .public_key()
        .public_bytes(pem, public)
    )
    (folder / "encrypted.key").write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            pem, pkcs8, serialization.BestAvailableEncryption(b"secret")
        )
    )
    (folder / "garbled.pem").write_text(
        "-----BEGIN PUBLIC KEY-----\nbm90IGEga2V5\n-----END PUBLIC KEY-----\n"
    )
    (folder / "notes.txt").write_text("hello\n")
    (folder / "two.key").write_bytes(
        (K8S / "k8s-rsa.key.pem").read_bytes() + (K8S / "k8s-ecdsa.key.pem").read_bytes()
    )
    return folder


RSA_PRIVATE = str(K8S / "k8s-rsa.key.pem")
SUBJECT = "system:serviceaccount:default:app"


def token_argv(
    *, key: str = RSA_PRIVATE, issuer: str = ISSUER, subject: str = SUBJECT
) -> list[str]:
    return ["token", "--private-key", key, "--issuer", issuer, "--subject", subject]


BAD_INPUTS = [
    (
        "missing-public-key",
        ["jwks", "--public-key", "{bad}/absent.pem"],
        "absent.pem: no such file",
    ),
    ("not-pem", ["jwks", "--public-key", "{bad}/notes.txt"], "notes.txt: not a PEM file"),
    ("garbled-pem", ["jwks", "--public-key", "{bad}/garbled.pem"], "cannot read the PUBLIC KEY"),
    (
        "ed25519",
        ["jwks", "--public-key", "{bad}/ed25519.pem"],
        "ed25519.pem: Ed25519 key; expected",
    ),
    ("p384", ["jwks", "--public-key", "{bad}/p384.pem"], "EC key on curve secp384r1; expected"),
    ("rsa-1024", ["jwks", "--public-key", "{bad}/rsa1024.pem"], "RSA key of 1024 bits; expected"),
    ("directory", ["jwks", "--public-key", "{bad}"], "cannot read"),
    ("missing-private-key", token_argv(key="{bad}/absent.key"), "absent.key: no such file"),
    ("public-as-private", token_argv(key=str(K8S / "k8s-rsa.pub.pem")), "expected a private key"),
    ("ed25519-private", token_argv(key="{bad}/ed25519.key"), "Ed25519 key; expected"),
    ("encrypted", token_argv(key="{bad}/encrypted.key"), "is encrypted"),
    ("two-private-keys", token_argv(key="{bad}/two.key"), "2 private keys in the file"),
    ("http-issuer", token_argv(issuer="http://oidc.example.com"), "STS only trusts https"),
    ("trailing-slash", token_argv(issuer=ISSUER + "/"), "a trailing slash"),
    ("upper-case-scheme", token_argv(issuer="HTTPS://oidc.example.com"), "scheme 'HTTPS'"),
    ("no-scheme", ["discovery", "--issuer", "oidc.example.com"], "scheme 'missing'"),
    ("query", ["discovery", "--issuer", ISSUER + "?a=b"], "a query or fragment"),
    ("port", ["discovery", "--issuer", "https://oidc.example.com:8443"], "a port"),
    ("no-host", ["discovery", "--issuer", "https:///path"], "no host"),
    ("subject-prefix", token_argv(subject="default:app"), "expected system:serviceaccount:"),
    ("subject-short", token_argv(subject="system:serviceaccount:default"), "NAMESPACE:NAME"),
    ("subject-long", token_argv(subject=SUBJECT + ":x"), "NAMESPACE:NAME"),
    ("subject-case", token_argv(subject="system:serviceaccount:Prod:app"), "namespace 'Prod'"),
    ("subject-empty-name", token_argv(subject="system:serviceaccount:prod:"), "name ''"),
    ("expiration", [*token_argv(), "--expiration", "0"], "--expiration 0"),
    ("expiration-year", [*token_argv(), "--expiration", "31536001"], "expected 1 to 31536000"),
    ("empty-audience", [*token_argv(), "--audience", ""], "non-empty audiences"),
    (
        "account-id",
        [
            "bundle",
            "--issuer",
            ISSUER,
            "--public-key",
            RSA_PRIVATE,
            "--out",
            "{bad}/o",
            "--account-id",
            "12",
        ],
        "--account-id '12': expected 12 digits",
    ),
    (
        "thumbprint",
        [
            "bundle",
            "--issuer",
            ISSUER,
            "--public-key",
            RSA_PRIVATE,
            "--out",
            "{bad}/o",
            "--thumbprint",
            "xyz",
        ],
        "40 hex digits",
    ),
    (
        "namespace-only",
        [
            "bundle",
            "--issuer",
            ISSUER,
            "--public-key",
            RSA_PRIVATE,
            "--out",
            "{bad}/o",
            "--namespace",
            "a",
        ],
        "give both or neither",
    ),
    (
        "out-is-a-file",
        ["bundle", "--issuer", ISSUER, "--public-key", RSA_PRIVATE, "--out", "{bad}/notes.txt"],
        "--out {bad}/notes.txt: cannot write",
    ),
]


@pytest.mark.parametrize(
    ("argv", "message"), [row[1:] for row in BAD_INPUTS], ids=[row[0] for row in BAD_INPUTS]
)
def test_bad_input_is_one_clear_line_and_exit_2(
    argv: list[str], message: str, bad_keys: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run([arg.replace("{bad}", str(bad_keys)) for arg in argv], capsys)
    assert (code, out) == (2, "")
    assert err.startswith(f"pod-identity-webhook oidc {argv[0]}: ")
    assert message.replace("{bad}", str(bad_keys)) in err
    assert err.count("\n") == 1
    assert not (bad_keys / "o").exists()


def test_oidc_without_an_action_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["oidc"])
    assert exc.value.code == 2
    assert "ACTION" in capsys.readouterr().err


def test_python_m_webhook_oidc_runs_as_a_real_process(tmp_path: Path) -> None:
    good = subprocess.run(
        [sys.executable, "-m", "webhook", "oidc", *token_argv(key=str(K8S / "k8s-ecdsa.key.pem"))],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert good.returncode == 0, good.stderr
    keyset = json.loads((K8S / "k8s-keyset.json").read_text())
    assert verify(good.stdout.strip(), keyset)["sub"] == SUBJECT
    bad = subprocess.run(
        [sys.executable, "-m", "webhook", "oidc", "discovery", "--issuer", "http://a.example"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert bad.returncode == 2
    assert bad.stdout == ""
    assert bad.stderr.startswith("pod-identity-webhook oidc discovery: --issuer 'http://a.example'")
    assert "Traceback" not in bad.stderr
