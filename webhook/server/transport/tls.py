"""Serving TLS: the SSL context from flags, and hot reload of the certificate pair.

cert-manager and kubelet rotate a mounted Secret by swapping a symlink and send no event, so
the pair is re-read on an interval and compared by content hash (as kopf does), by the poll
that also reloads config files (webhook/sources/files/contentpoll.py). A new pair is
first loaded into a scratch context: a half-written or mismatched pair is rejected and the old
one stays. Loading into the live context changes what new handshakes present; connections
already open keep theirs.

OpenSSL loads a pair from paths only, and the bytes loaded must be the bytes hashed, so a reload
hands it anonymous in-memory files (memfd, read through /proc/self/fd): a reload needs no
writable path, and runs under a read-only root filesystem with no /tmp (docs/deploy.md). Where
memfd does not exist (not Linux) a private temporary directory is used, and start-up fails when
neither works. A reload that fails is logged, counted and retried on the next poll.
"""

from __future__ import annotations

import contextlib
import logging
import os
import ssl
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from cryptography import x509

from webhook.flags.settings import Settings, SettingsError
from webhook.sources.files import contentpoll
from webhook.sources.files.contentpoll import Content, Refused

logger = logging.getLogger(__name__)

RELOAD_INTERVAL_SECONDS = contentpoll.POLL_INTERVAL_SECONDS

# Go/IANA cipher suite names (upstream's --tls-cipher-suites) to OpenSSL names.
GO_CIPHER_SUITES = {
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305": "ECDHE-ECDSA-CHACHA20-POLY1305",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256": "ECDHE-ECDSA-AES128-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256": "ECDHE-RSA-AES128-SHA256",
    "TLS_RSA_WITH_AES_128_GCM_SHA256": "AES128-GCM-SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384": "AES256-GCM-SHA384",
    "TLS_RSA_WITH_AES_128_CBC_SHA": "AES128-SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA": "AES256-SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA256": "AES128-SHA256",
    "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA": "ECDHE-RSA-DES-CBC3-SHA",
    "TLS_RSA_WITH_3DES_EDE_CBC_SHA": "DES-CBC3-SHA",
}
# TLS 1.3 suites cannot be turned off (nor can they in Go); naming them is accepted.
TLS13_SUITES = frozenset(
    ("TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256")
)
# Go knows these but OpenSSL 3 no longer offers RC4.
GO_RC4_SUITES = frozenset(
    (
        "TLS_RSA_WITH_RC4_128_SHA",
        "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA",
        "TLS_ECDHE_RSA_WITH_RC4_128_SHA",
    )
)
_TLS_VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}


def openssl_ciphers(names: tuple[str, ...]) -> str:
    """The OpenSSL cipher string for Go suite names; SettingsError naming an unknown one."""
    chosen: list[str] = []
    for name in names:
        if name in TLS13_SUITES:
            continue
        openssl_name = GO_CIPHER_SUITES.get(name)
        if name in GO_RC4_SUITES:
            raise SettingsError(
                "--tls-cipher-suites",
                name,
                "a suite that is not RC4 (RC4 is broken and not offered), such as "
                "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
            )
        if openssl_name is None:
            raise SettingsError(
                "--tls-cipher-suites",
                name,
                "a Go cipher suite name such as TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
            )
        chosen.append(openssl_name)
    return ":".join(chosen)


def read_pair(cert: Path, key: Path) -> tuple[bytes, bytes]:
    return cert.read_bytes(), key.read_bytes()


def certificate_expiry(cert_pem: bytes) -> float:
    """Expiry of the first (leaf) certificate in a PEM chain, in seconds since the epoch."""
    return x509.load_pem_x509_certificate(cert_pem).not_valid_after_utc.timestamp()


def build_server_context(settings: Settings) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = _TLS_VERSIONS[settings.tls_min_version]
    if settings.tls_cipher_suites:
        ciphers = openssl_ciphers(settings.tls_cipher_suites)
        if ciphers:
            try:
                context.set_ciphers(ciphers)
            except ssl.SSLError as exc:
                raise SettingsError(
                    "--tls-cipher-suites",
                    ",".join(settings.tls_cipher_suites),
                    "suites this OpenSSL build supports",
                ) from exc
    if settings.client_ca_file is not None:
        try:
            context.load_verify_locations(cafile=str(settings.client_ca_file))
        except (OSError, ssl.SSLError) as exc:
            raise SettingsError(
                "--client-ca-file",
                str(settings.client_ca_file),
                f"a readable PEM CA bundle ({exc})",
            ) from exc
        context.verify_mode = ssl.CERT_REQUIRED
    context.set_alpn_protocols(["http/1.1"])
    for flag, path in (("--tls-cert", settings.tls_cert), ("--tls-key", settings.tls_key)):
        # ssl's FileNotFoundError does not say which of the two files is missing
        if not path.is_file():
            raise SettingsError(flag, str(path), "an existing PEM file")
    try:
        context.load_cert_chain(str(settings.tls_cert), str(settings.tls_key))
    except (OSError, ssl.SSLError) as exc:
        raise SettingsError(
            "--tls-cert/--tls-key",
            f"{settings.tls_cert}, {settings.tls_key}",
            f"a PEM certificate and its matching private key ({exc})",
        ) from exc
    # A rotation must not be the first time the reload path is tried: fail now, not silently later.
    try:
        load_pair(
            ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER), *read_pair(settings.tls_cert, settings.tls_key)
        )
    except (OSError, ssl.SSLError) as exc:
        raise SettingsError(
            "--tls-cert/--tls-key",
            f"{settings.tls_cert}, {settings.tls_key}",
            "a pair that can be reloaded: reloads load it from in-memory files (memfd and "
            f"/proc/self/fd) or, where those do not exist, a writable temporary directory ({exc})",
        ) from exc
    return context


@contextlib.contextmanager
def pair_files(cert: bytes, key: bytes) -> Iterator[tuple[str, str]]:
    """Paths OpenSSL can open that hold exactly `cert` and `key`; nothing on disk if possible."""
    memfd_create = getattr(os, "memfd_create", None)
    if memfd_create is None:  # pragma: no cover - not Linux
        with tempfile.TemporaryDirectory(prefix="webhook-tls-") as directory:
            cert_copy, key_copy = Path(directory, "tls.crt"), Path(directory, "tls.key")
            cert_copy.write_bytes(cert)
            key_copy.touch(mode=0o600)
            key_copy.write_bytes(key)
            yield str(cert_copy), str(key_copy)
        return
    descriptors: list[int] = []
    try:
        for name, data in (("tls.crt", cert), ("tls.key", key)):
            descriptor = memfd_create(f"webhook-{name}", os.MFD_CLOEXEC)
            descriptors.append(descriptor)
            os.write(descriptor, data)
        yield f"/proc/self/fd/{descriptors[0]}", f"/proc/self/fd/{descriptors[1]}"
    finally:
        for descriptor in descriptors:
            os.close(descriptor)


def load_pair(context: ssl.SSLContext, cert: bytes, key: bytes) -> None:
    """Load exactly these bytes: a file that changes again meanwhile cannot pair a foreign key."""
    with pair_files(cert, key) as (cert_path, key_path):
        context.load_cert_chain(cert_path, key_path)


class _Retry(Exception):
    """A reload that failed in a way the next poll may not: the message says how."""


class CertificateReloader:
    """Re-reads --tls-cert/--tls-key and swaps them into the live context when they change."""

    def __init__(
        self,
        context: ssl.SSLContext,
        cert: Path,
        key: Path,
        *,
        on_reload: Callable[[bool], None] | None = None,
        on_expiry: Callable[[float], None] | None = None,
    ) -> None:
        self.context = context
        self.cert = cert
        self.key = key
        self._on_reload = on_reload
        self._on_expiry = on_expiry
        self._content = contentpoll.ContentPoll(self._read, self._take)
        with contextlib.suppress(_Retry):
            self._content.took(self._read())
        self._loaded_cert = b""
        # the failure being retried: reported when it starts, not again on every poll
        self._failing: str | None = None
        self._report_expiry()

    def _read(self) -> Content:
        try:
            return read_pair(self.cert, self.key)
        except OSError as exc:
            # kubelet swaps the Secret atomically; a pair that stays unreadable is a failure
            raise _Retry(f"cannot read the TLS pair {self.cert} / {self.key}: {exc}") from exc

    def _take(self, content: Content) -> None:
        cert, key = content
        scratch = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        try:
            load_pair(scratch, cert, key)
        except ssl.SSLError as exc:
            # half-written or mismatched pair: keep serving the old one until the files change
            raise Refused(str(exc)) from exc
        except OSError as exc:
            raise _Retry(f"cannot load the new TLS pair {self.cert} / {self.key}: {exc}") from exc
        load_pair(self.context, cert, key)
        self._loaded_cert = cert

    def _report_expiry(self, cert_pem: bytes | None = None) -> None:
        if self._on_expiry is None:
            return
        with contextlib.suppress(OSError, ValueError):
            self._on_expiry(certificate_expiry(cert_pem or self.cert.read_bytes()))

    def _failed(self, message: str) -> None:
        if message == self._failing:
            return
        self._failing = message
        logger.error("%s; serving the old certificate and retrying", message)
        if self._on_reload:
            self._on_reload(False)

    def poll(self) -> bool:
        """One check: True when a new pair went live. Never raises."""
        try:
            taken = self._content.poll()
        except Refused as exc:
            self._failing = None
            logger.error(
                "rejected new TLS pair %s / %s, keeping the old one: %s", self.cert, self.key, exc
            )
            if self._on_reload:
                self._on_reload(False)
            return False
        except _Retry as exc:
            self._failed(str(exc))
            return False
        except Exception as exc:  # the reload loop must outlive any bug: logged, counted
            self._failed(f"TLS reload of {self.cert} / {self.key} failed: {exc!r}")
            return False
        self._failing = None
        if not taken:
            return False
        logger.info("reloaded TLS certificate %s", self.cert)
        self._report_expiry(self._loaded_cert)
        if self._on_reload:
            self._on_reload(True)
        return True

    async def watch(self, interval: float = RELOAD_INTERVAL_SECONDS) -> None:
        await contentpoll.poll_forever(self.poll, interval)
