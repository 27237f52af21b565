"""`sts`: a local STS for tests, which checks web identity tokens as AWS STS does.

Served with uvicorn, as the webhook is, over the h11 parser (bounded headers), with TLS when
given a pair. Loopback by default and it says so at start: it hands out credentials for any
role it knows to whoever presents a good token (docs/kind-testing.md).
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
import sys
from pathlib import Path
from typing import Any

from webhook.doctor.inputs import DoctorInputError
from webhook.flags.values import integer
from webhook.logs import configure_logging
from webhook.server.transport.listen import listening_sockets
from webhook.sts.app import StsApp
from webhook.sts.issuer import IssuerDocuments, IssuerSource
from webhook.sts.roles import RolesError, load_roles
from webhook.sts.verification import Provider

logger = logging.getLogger(__name__)

DEFAULT_CLIENT_ID = "sts.amazonaws.com"
MAX_HEADER_BYTES = 32 * 1024
MAX_CONNECTIONS = 64
KEEP_ALIVE_SECONDS = 5


HELP = """a local STS for tests: AssumeRoleWithWebIdentity checked as AWS does, fake credentials

Serve the STS query API's AssumeRoleWithWebIdentity and GetCallerIdentity for tests with no AWS
account. Tokens are checked as AWS STS checks them, with doctor's checks: signature against the
issuer's JWKS, iss, aud (the provider's client IDs), exp/nbf, and the role's trust policy.
Errors are STS's codes, with the failed check named. Point pods at it with the webhook's
--sts-endpoint-url.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    issuer = parser.add_argument_group("the IAM OIDC provider it plays")
    issuer.add_argument(
        "--issuer-url",
        metavar="URL",
        help="fetch the discovery document and JWKS from this issuer over HTTPS",
    )
    issuer.add_argument(
        "--issuer-ca-file", type=Path, metavar="FILE", help="trust this CA bundle for --issuer-url"
    )
    issuer.add_argument(
        "--discovery",
        type=Path,
        metavar="FILE",
        help="the issuer's openid-configuration (oidc bundle writes it)",
    )
    issuer.add_argument("--jwks", type=Path, metavar="FILE", help="the issuer's keys.json")
    issuer.add_argument(
        "--client-id",
        action="append",
        metavar="AUDIENCE",
        help=f"an audience the provider accepts (repeatable; default {DEFAULT_CLIENT_ID})",
    )
    roles = parser.add_argument_group("roles")
    roles.add_argument(
        "--role",
        action="append",
        default=[],
        metavar="ROLE_ARN=FILE",
        help="a role and its trust policy: the document or `aws iam get-role` output (repeatable)",
    )
    roles.add_argument(
        "--roles",
        action="append",
        default=[],
        type=Path,
        metavar="DIR",
        help="a folder of `aws iam get-role` outputs (*.json), each naming its role (repeatable)",
    )
    serving = parser.add_argument_group("serving")
    serving.add_argument(
        "--bind-address",
        default="127.0.0.1",
        help="listen address (default 127.0.0.1: this machine only)",
    )
    serving.add_argument(
        "--port",
        type=integer,
        default=0,
        help="listen port (default 0: a free port, printed at start)",
    )
    serving.add_argument(
        "--tls-cert", type=Path, metavar="FILE", help="serve HTTPS with this certificate"
    )
    serving.add_argument("--tls-key", type=Path, metavar="FILE", help="the certificate's key")
    serving.add_argument(
        "--log-level", choices=("debug", "info", "warning", "error"), default="info"
    )
    serving.add_argument("--log-format", choices=("text", "json"), default="text")


def _fail(message: str) -> int:
    print(f"pod-identity-webhook sts: {message}", file=sys.stderr)
    return 2


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run(args: argparse.Namespace) -> int:
    if args.issuer_url is None and args.discovery is None:
        return _fail("no issuer: give --issuer-url URL, or --discovery FILE and --jwks FILE")
    if args.issuer_url is None and args.jwks is None:
        return _fail("--discovery without --issuer-url needs --jwks FILE")
    if (args.tls_cert is None) != (args.tls_key is None):
        return _fail("--tls-cert and --tls-key go together")
    if not 0 <= args.port <= 65535:
        return _fail(f"--port {args.port}: expected 0 to 65535")
    configure_logging(level=args.log_level, fmt=args.log_format)
    try:
        documents = IssuerDocuments(
            IssuerSource(args.issuer_url, args.discovery, args.jwks, args.issuer_ca_file)
        )
        roles = load_roles(args.role, args.roles)
    except (DoctorInputError, RolesError) as exc:
        return _fail(str(exc))
    client_ids = tuple(args.client_id or (DEFAULT_CLIENT_ID,))
    if any(not client_id for client_id in client_ids):
        return _fail("--client-id '': expected a non-empty audience")
    app = StsApp(provider=Provider(documents, client_ids), roles=roles)
    try:
        sockets = listening_sockets(args.bind_address, args.port)
    except OSError as exc:
        return _fail(f"cannot listen on {args.bind_address}:{args.port}: {exc.strerror or exc}")
    host, port = sockets[0].getsockname()[:2]
    scheme = "https" if args.tls_cert else "http"
    shown = f"[{host}]" if ":" in host else host
    published = documents.current()
    print(
        "pod-identity-webhook sts: a local STS for tests only; its credentials work nowhere "
        f"but here. Listening on {scheme}://{shown}:{port} for issuer "
        f"{published.issuer() or '(not fetched yet)'}, client IDs {', '.join(client_ids)}, "
        f"{len(roles)} role(s)",
        file=sys.stderr,
        flush=True,
    )
    if published.discovery_error or published.jwks_error:
        logger.warning(
            "the issuer's documents cannot be fetched yet (tried again per request): %s",
            published.discovery_error or published.jwks_error,
        )
    if not _is_loopback(host):
        logger.warning(
            "listening on %s, not loopback: whoever reaches it and holds a token the trust "
            "policies admit gets (fake) credentials; for a test cluster only",
            host,
        )
    return _serve(app, sockets, args)


def _serve(app: StsApp, sockets: list[Any], args: argparse.Namespace) -> int:
    import uvicorn  # the server's dependency; imported here so that other commands start fast

    config = uvicorn.Config(
        app,
        http="h11",
        lifespan="off",
        log_config=None,
        access_log=False,
        server_header=False,
        ssl_certfile=str(args.tls_cert) if args.tls_cert else None,
        ssl_keyfile=str(args.tls_key) if args.tls_key else None,
        limit_concurrency=MAX_CONNECTIONS,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        h11_max_incomplete_event_size=MAX_HEADER_BYTES,
    )
    server = uvicorn.Server(config)
    asyncio.run(server.serve(sockets=sockets))
    return 0
