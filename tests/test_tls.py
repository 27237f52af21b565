"""TLS of the real server: minimum version, cipher suites, client certificates, hot reload."""

from __future__ import annotations

import contextlib
import datetime
import errno
import os
import socket
import ssl
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.support.admission import APP_FLAGS, review
from tests.support.polling import eventually
from tests.support.server import CertFiles, RunningWebhook, run_webhook, write_certs
from webhook.cli import build_parser
from webhook.flags.settings import SettingsError
from webhook.flags.shared import settings_from_args
from webhook.server.transport import tls
from webhook.server.transport.tls import (
    CertificateReloader,
    build_server_context,
    certificate_expiry,
)

JSON = {"Content-Type": "application/json"}


@dataclass(frozen=True)
class ClientPair:
    ca: Path
    cert: Path
    key: Path


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def write_client_pair(directory: Path, name: str) -> ClientPair:
    """A client CA and a client certificate (extended key usage clientAuth) it signs."""
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name} client CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pair = ClientPair(directory / "ca.crt", directory / "client.crt", directory / "client.key")
    pair.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    pair.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pair.key.write_bytes(_pem_key(key))
    return pair


def _context(*cafiles: Path, client: ClientPair | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context()
    for cafile in cafiles:
        context.load_verify_locations(cafile=str(cafile))
    if client is not None:
        context.load_cert_chain(str(client.cert), str(client.key))
    return context


def _port(webhook: RunningWebhook) -> int:
    return int(webhook.url.rsplit(":", 1)[1])


def served_serial(webhook: RunningWebhook, *cafiles: Path) -> int:
    return serial_at(_port(webhook), *cafiles)


def serial_at(port: int, *cafiles: Path) -> int:
    """Serial number of the certificate a new TLS handshake on 127.0.0.1:port is given."""
    context = _context(*cafiles)
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as conn,
    ):
        der = conn.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


def _serial(cert: Path) -> int:
    return x509.load_pem_x509_certificate(cert.read_bytes()).serial_number


def _metric(webhook: RunningWebhook, line_start: str) -> str:
    for line in httpx.get(webhook.metrics_url + "/metrics").text.splitlines():
        if line.startswith(line_start + " "):
            return line.rsplit(" ", 1)[1]
    return ""


# -- version and cipher suites ------------------------------------------------------------


def test_min_version_13_refuses_a_tls12_client_and_serves_tls13(
    tmp_path: Path, cert_files: CertFiles
) -> None:
    with run_webhook(tmp_path, *APP_FLAGS, "--tls-min-version", "1.3", certs=cert_files) as webhook:
        old = _context(cert_files.ca)
        old.maximum_version = ssl.TLSVersion.TLSv1_2
        with pytest.raises(httpx.ConnectError), httpx.Client(verify=old) as client:
            client.get(webhook.url + "/healthz")
        context = _context(cert_files.ca)
        with (
            socket.create_connection(("127.0.0.1", _port(webhook)), timeout=5) as raw,
            context.wrap_socket(raw, server_hostname="127.0.0.1") as conn,
        ):
            assert conn.version() == "TLSv1.3"


def test_cipher_suite_named_the_go_way_is_the_one_negotiated(
    tmp_path: Path, cert_files: CertFiles
) -> None:
    with run_webhook(
        tmp_path,
        *APP_FLAGS,
        "--tls-cipher-suites",
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305",
        certs=cert_files,
    ) as webhook:
        context = _context(cert_files.ca)
        context.maximum_version = ssl.TLSVersion.TLSv1_2
        with (
            socket.create_connection(("127.0.0.1", _port(webhook)), timeout=5) as raw,
            context.wrap_socket(raw, server_hostname="127.0.0.1") as conn,
        ):
            cipher = conn.cipher()
        assert cipher is not None
        assert cipher[0] == "ECDHE-ECDSA-CHACHA20-POLY1305"


@pytest.mark.parametrize(
    ("suite", "expected"),
    [
        ("TLS_BOGUS", "a Go cipher suite name such as TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"),
        (
            "TLS_RSA_WITH_RC4_128_SHA",
            "a suite that is not RC4 (RC4 is broken and not offered), such as "
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        ),
    ],
)
def test_unknown_or_broken_cipher_suite_stops_start_up_naming_it(
    tmp_path: Path, cert_files: CertFiles, suite: str, expected: str
) -> None:
    args = (*APP_FLAGS, "--tls-cipher-suites")
    message = (
        f"pod-identity-webhook serve: --tls-cipher-suites='{suite}' is invalid: expected {expected}"
    )
    with (
        pytest.raises(RuntimeError) as caught,
        run_webhook(tmp_path, *args, f"TLS_AES_128_GCM_SHA256,{suite}", certs=cert_files),
    ):
        pass
    assert str(caught.value) == f"webhook exited with 2:\n{message}\n"


# -- client certificates ------------------------------------------------------------------


def test_client_ca_lets_only_clients_with_a_certificate_it_signed_call_mutate(
    tmp_path: Path, cert_files: CertFiles
) -> None:
    apiserver = write_client_pair(tmp_path / "apiserver", "kube-apiserver")
    stranger = write_client_pair(tmp_path / "stranger", "stranger")
    with run_webhook(
        tmp_path,
        *APP_FLAGS,
        "--client-ca-file",
        str(apiserver.ca),
        certs=cert_files,
        client_cert=(apiserver.cert, apiserver.key),
    ) as webhook:
        body = orjson.dumps(review("team-a", "app"))
        with httpx.Client(verify=_context(cert_files.ca, client=apiserver)) as client:
            answer = client.post(webhook.url + "/mutate", content=body, headers=JSON)
        assert answer.status_code == 200
        assert answer.json()["response"]["patchType"] == "JSONPatch"
        for context in (_context(cert_files.ca), _context(cert_files.ca, client=stranger)):
            with (
                pytest.raises((httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)),
                httpx.Client(verify=context) as client,
            ):
                client.post(webhook.url + "/mutate", content=body, headers=JSON)
        # kubelet probes carry no client certificate: they use the metrics port
        assert httpx.get(webhook.metrics_url + "/healthz").text == "ok"
        assert httpx.get(webhook.metrics_url + "/readyz").status_code == 200


def test_unreadable_client_ca_stops_start_up_naming_the_flag(
    tmp_path: Path, cert_files: CertFiles
) -> None:
    missing = tmp_path / "missing-ca.crt"
    args = (
        *APP_FLAGS,
        "--client-ca-file",
        str(missing),
    )
    with (
        pytest.raises(
            RuntimeError,
            match=r"exited with 2:\npod-identity-webhook serve: --client-ca-file='.*missing-ca.crt' is invalid: expected a readable PEM CA bundle",
        ),
        run_webhook(tmp_path, *args, certs=cert_files),
    ):
        pass


# -- hot reload -----------------------------------------------------------------------------


class Load:
    """Requests in a loop from another thread, each on a new connection, counting failures.

    A connection the server refuses (it stopped accepting, as during shutdown) never carried a
    request: it is counted apart from failures, which are requests accepted and not answered.
    """

    def __init__(self, url: str, *cafiles: Path, seconds: float = 60) -> None:
        self.client = httpx.Client(
            base_url=url,
            verify=_context(*cafiles),
            limits=httpx.Limits(max_keepalive_connections=0),
            timeout=5,
        )
        self.ok = 0
        self.refused = 0
        self.failures: list[str] = []
        self._deadline = time.monotonic() + seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set() and time.monotonic() < self._deadline:
            try:
                body = orjson.dumps(review("team-a", "app"))
                answer = self.client.post("/mutate", content=body, headers=JSON)
            except httpx.ConnectError:
                self.refused += 1
                time.sleep(0.05)
                continue
            except httpx.HTTPError as exc:
                self.failures.append(repr(exc))
                continue
            if answer.status_code == 200 and "patch" in answer.json()["response"]:
                self.ok += 1
            else:
                self.failures.append(f"{answer.status_code} {answer.text[:200]}")

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=15)
        self.client.close()


def test_rotation_under_continuous_load_drops_nothing_and_serves_the_new_pair(
    tmp_path: Path,
) -> None:
    old = write_certs(tmp_path / "serving")
    new = write_certs(tmp_path / "next", days=60)
    with run_webhook(tmp_path, *APP_FLAGS, certs=old) as webhook:
        assert served_serial(webhook, old.ca) == _serial(old.cert)
        with Load(webhook.url, old.ca, new.ca) as load:
            time.sleep(0.3)
            # as a naive writer would: the cert first, the key a moment later
            old.cert.write_bytes(new.cert.read_bytes())
            time.sleep(0.05)
            old.key.write_bytes(new.key.read_bytes())
            served = eventually(lambda: served_serial(webhook, old.ca, new.ca), _serial(new.cert))
            time.sleep(0.3)
        assert served == _serial(new.cert)
        assert load.failures == [] and load.refused == 0
        assert load.ok > 10
        expiry = x509.load_pem_x509_certificate(new.cert.read_bytes()).not_valid_after_utc
        assert float(
            _metric(webhook, "pod_identity_webhook_certificate_expiry_timestamp_seconds")
        ) == pytest.approx(expiry.timestamp())
        assert "reloaded TLS certificate" in webhook.log()


def _secret_volume(root: Path, pair: CertFiles | tuple[bytes, bytes], version: int) -> None:
    """Lay out (or update) `root` as kubelet does for a Secret volume: files in a timestamped
    directory, `..data` pointing at it, and `tls.crt`/`tls.key` pointing through `..data`."""
    cert, key = (
        (pair.cert.read_bytes(), pair.key.read_bytes()) if isinstance(pair, CertFiles) else pair
    )
    versioned = root / f"..2026_11_23_00_00_0{version}"
    versioned.mkdir(parents=True)
    (versioned / "tls.crt").write_bytes(cert)
    (versioned / "tls.key").write_bytes(key)
    staging = root / "..data_tmp"
    staging.symlink_to(versioned.name)
    os.replace(staging, root / "..data")  # the atomic swap
    for name in ("tls.crt", "tls.key"):
        if not (root / name).is_symlink():
            (root / name).symlink_to(f"..data/{name}")


def test_secret_volume_swap_rejects_mismatched_and_half_written_pairs_then_takes_a_good_one(
    tmp_path: Path,
) -> None:
    first, second, third = (write_certs(tmp_path / name) for name in ("first", "second", "third"))
    volume = tmp_path / "volume"
    _secret_volume(volume, first, 1)
    mounted = CertFiles(volume, first.ca, volume / "tls.crt", volume / "tls.key")
    cas = (first.ca, second.ca, third.ca)
    with run_webhook(tmp_path, *APP_FLAGS, certs=mounted) as webhook:
        failures = 'pod_identity_webhook_config_reloads_total{result="failure",source="tls"}'
        # a certificate with someone else's key
        _secret_volume(volume, (second.cert.read_bytes(), third.key.read_bytes()), 2)
        assert eventually(lambda: _metric(webhook, failures), "1") == "1"
        assert served_serial(webhook, *cas) == _serial(first.cert)
        # a certificate cut off half way
        half = second.cert.read_bytes()[: len(second.cert.read_bytes()) // 2]
        _secret_volume(volume, (half, second.key.read_bytes()), 3)
        assert eventually(lambda: _metric(webhook, failures), "2") == "2"
        assert served_serial(webhook, *cas) == _serial(first.cert)
        with webhook.client() as client:
            answer = client.post(
                "/mutate", content=orjson.dumps(review("team-a", "app")), headers=JSON
            )
        assert answer.status_code == 200
        # a good pair
        _secret_volume(volume, third, 4)
        assert eventually(lambda: served_serial(webhook, *cas), _serial(third.cert)) == _serial(
            third.cert
        )
        assert webhook.log().count("rejected new TLS pair") == 2


# -- reloads need no writable path ----------------------------------------------------------


class Reloads:
    """What a CertificateReloader reported: reload results and the expiry it last saw."""

    def __init__(self) -> None:
        self.results: list[bool] = []
        self.expiry = 0.0

    def reloader(self, context: ssl.SSLContext, pair: CertFiles) -> CertificateReloader:
        return CertificateReloader(
            context,
            pair.cert,
            pair.key,
            on_reload=self.results.append,
            on_expiry=lambda value: setattr(self, "expiry", value),
        )


def _live(pair: CertFiles) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(pair.cert), str(pair.key))
    return context


def _presented(context: ssl.SSLContext, ca: Path) -> int:
    """Serial of the certificate `context` presents, through an in-memory handshake."""
    client = ssl.create_default_context(cafile=str(ca))
    client_in, client_out, server_in, server_out = (ssl.MemoryBIO() for _ in range(4))
    tls_client = client.wrap_bio(client_in, client_out, server_hostname="localhost")
    tls_server = context.wrap_bio(server_in, server_out, server_side=True)
    for _ in range(10):
        for side in (tls_client, tls_server):
            with contextlib.suppress(ssl.SSLWantReadError):
                side.do_handshake()
        server_in.write(client_out.read())
        client_in.write(server_out.read())
    der = tls_client.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


def test_a_reload_writes_nowhere_so_it_works_without_a_temporary_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old, new = write_certs(tmp_path / "old"), write_certs(tmp_path / "new")
    context = _live(old)
    reloads = Reloads()
    reloader = reloads.reloader(context, old)
    # as in the container: read-only root, no /tmp volume, so no temporary directory can be made
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "no-such-directory"))
    old.cert.write_bytes(new.cert.read_bytes())
    old.key.write_bytes(new.key.read_bytes())
    assert reloader.poll() is True
    assert reloads.results == [True]
    assert _presented(context, new.ca) == _serial(new.cert)
    assert reloads.expiry == pytest.approx(certificate_expiry(new.cert.read_bytes()))


def test_a_reload_that_fails_is_logged_counted_once_and_retried_until_it_works(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    old, new = write_certs(tmp_path / "old"), write_certs(tmp_path / "new")
    context = _live(old)
    reloads = Reloads()
    reloader = reloads.reloader(context, old)
    serving = _serial(old.cert)
    old.cert.write_bytes(new.cert.read_bytes())
    old.key.write_bytes(new.key.read_bytes())
    real_memfd_create = os.memfd_create

    def exhausted(*_: object) -> int:
        raise OSError(errno.EMFILE, "Too many open files")

    monkeypatch.setattr(os, "memfd_create", exhausted)
    assert [reloader.poll() for _ in range(3)] == [False, False, False]
    assert reloads.results == [False]  # counted when it starts failing, not on every poll
    (record,) = [r for r in caplog.records if r.levelname == "ERROR"]
    assert "cannot load the new TLS pair" in record.getMessage()
    assert "Too many open files" in record.getMessage()
    assert _presented(context, old.ca) == serving
    monkeypatch.setattr(os, "memfd_create", real_memfd_create)
    assert reloader.poll() is True
    assert reloads.results == [False, True]
    assert _presented(context, new.ca) == _serial(new.cert)


def test_an_unexpected_error_in_a_reload_is_logged_and_counted_and_the_loop_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    old, new = write_certs(tmp_path / "old"), write_certs(tmp_path / "new")
    reloads = Reloads()
    reloader = reloads.reloader(_live(old), old)
    old.cert.write_bytes(new.cert.read_bytes())
    old.key.write_bytes(new.key.read_bytes())
    monkeypatch.setattr(tls, "load_pair", lambda *_: 1 / 0)
    assert reloader.poll() is False
    assert reloads.results == [False]
    assert "ZeroDivisionError" in caplog.text
    monkeypatch.undo()
    assert reloader.poll() is True


def test_a_pair_that_stays_unreadable_is_a_failure_not_silence(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pair = write_certs(tmp_path / "pair")
    reloads = Reloads()
    reloader = reloads.reloader(_live(pair), pair)
    pair.key.unlink()
    assert [reloader.poll(), reloader.poll()] == [False, False]
    assert reloads.results == [False]
    assert "cannot read the TLS pair" in caplog.text


def test_start_up_fails_naming_the_flags_when_no_reload_could_ever_work(
    tmp_path: Path, cert_files: CertFiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unavailable(*_: object) -> int:
        raise OSError(errno.ENOSYS, "Function not implemented")

    monkeypatch.setattr(os, "memfd_create", unavailable)
    args = ["serve", "--tls-cert", str(cert_files.cert), "--tls-key", str(cert_files.key)]
    settings = settings_from_args(build_parser().parse_args(args))
    with pytest.raises(SettingsError, match="a pair that can be reloaded") as caught:
        build_server_context(settings)
    assert "--tls-cert/--tls-key" in str(caught.value)
    assert "Function not implemented" in str(caught.value)
