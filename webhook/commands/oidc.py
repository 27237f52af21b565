"""`oidc`: keys, JWKS, discovery document and test tokens for a self-hosted IRSA OIDC issuer."""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from webhook.certs import new_key, pem_private_key
from webhook.commands.certs import write_file
from webhook.flags.values import integer
from webhook.oidc.discovery import DISCOVERY_PATH, JWKS_FILE, discovery_document, parse_issuer
from webhook.oidc.errors import OidcInputError
from webhook.oidc.jwks import key_set
from webhook.oidc.keys import key_id, public_pem, read_private_key, read_public_keys
from webhook.oidc.subject import parse_subject, service_account
from webhook.oidc.token import sign_token, token_claims
from webhook.oidc.trust import (
    ACCOUNT_PLACEHOLDER,
    NAMESPACE_PLACEHOLDER,
    PARTITIONS,
    SERVICE_ACCOUNT_PLACEHOLDER,
    check_account_id,
    check_thumbprints,
    placeholders_in,
    setup_script,
    trust_policy,
)

PRIVATE_KEY_FILE = "sa-signer.key"
SITE_DIR = "site"  # what goes to the public host; nothing else of --out does
TRUST_POLICY_FILE = "trust-policy.json"
COMMANDS_FILE = "iam-commands.sh"
PUBLIC_KEY_FILE = "sa-signer.pub"
STS_AUDIENCE = "sts.amazonaws.com"


HELP = """self-hosted IRSA: signing keys, JWKS, discovery document, IAM setup, test tokens

Everything a cluster outside EKS needs so that AWS STS trusts its service-account tokens: see
docs/oidc.md.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="oidc_command", metavar="ACTION", required=True)
    _register_keygen(actions)
    jwks = _action(actions, "jwks", _jwks, "print the JWKS (keys.json) for public keys")
    _public_keys(jwks, required=True)
    discovery = _action(
        actions, "discovery", _discovery, "print the /.well-known/openid-configuration document"
    )
    _issuer(discovery)
    _public_keys(discovery, required=False)
    _register_bundle(actions)
    _register_token(actions)


def _register_keygen(actions: Any) -> None:
    keygen = _action(actions, "keygen", _keygen, "generate the service-account signing key pair")
    keygen.add_argument("--out", type=Path, required=True, metavar="DIR", help="output directory")
    keygen.add_argument(
        "--algorithm", choices=("rsa", "ecdsa"), default="rsa", help="RSA (default) or ECDSA P-256"
    )
    keygen.add_argument(
        "--rsa-bits",
        type=integer,
        choices=(2048, 4096),
        default=2048,
        help="RSA size (default 2048)",
    )
    keygen.add_argument("--force", action="store_true", help="overwrite existing keys")


def _register_bundle(actions: Any) -> None:
    bundle = _action(
        actions,
        "bundle",
        _bundle,
        "write the site to upload (discovery document, keys.json), the trust policy and the IAM "
        "commands, each to its own file",
    )
    _issuer(bundle)
    _public_keys(bundle, required=True)
    bundle.add_argument(
        "--out",
        type=Path,
        required=True,
        metavar="DIR",
        help=f"output directory: {SITE_DIR}/ to upload as-is, {TRUST_POLICY_FILE}, "
        f"{COMMANDS_FILE} (replaced if present)",
    )
    bundle.add_argument("--namespace", help="ServiceAccount namespace for the trust policy")
    bundle.add_argument("--service-account", help="ServiceAccount name for the trust policy")
    bundle.add_argument(
        "--account-id", default=ACCOUNT_PLACEHOLDER, help="AWS account id (12 digits)"
    )
    bundle.add_argument("--partition", choices=PARTITIONS, default="aws", help="AWS partition")
    bundle.add_argument(
        "--audience", default=STS_AUDIENCE, help=f"token audience (default {STS_AUDIENCE})"
    )
    bundle.add_argument(
        "--thumbprint",
        action="append",
        default=[],
        help="server certificate SHA-1 thumbprint (optional: IAM no longer needs one)",
    )


def _register_token(actions: Any) -> None:
    token = _action(actions, "token", _token, "mint a test token like a projected SA token")
    token.add_argument(
        "--private-key",
        type=Path,
        required=True,
        metavar="FILE",
        help="PEM private key: kube-apiserver's --service-account-signing-key-file",
    )
    _issuer(token)
    token.add_argument("--subject", required=True, help="system:serviceaccount:NAMESPACE:NAME")
    token.add_argument(
        "--audience",
        action="append",
        help=f"audience (repeatable; default {STS_AUDIENCE})",
    )
    token.add_argument(
        "--expiration", type=integer, default=3600, help="lifetime in seconds (default 3600)"
    )
    token.add_argument("--uid", help="ServiceAccount uid claim (default: a random UUID)")


def _action(
    actions: Any, name: str, run: Callable[[argparse.Namespace], int], summary: str
) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = actions.add_parser(name, help=summary, description=summary)
    parser.set_defaults(oidc_run=run)
    return parser


def _issuer(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--issuer",
        required=True,
        metavar="URL",
        help="https://HOST[/PATH], no trailing slash (the token's iss)",
    )


def _public_keys(parser: argparse.ArgumentParser, *, required: bool) -> None:
    parser.add_argument(
        "--public-key",
        type=Path,
        action="append",
        required=required,
        default=[],
        metavar="FILE",
        help="PEM public key (repeatable: old and new keys during a rotation)",
    )


def run(args: argparse.Namespace) -> int:
    """The ACTION's own run; bad input (OidcInputError) is exit 2 with one line that names it."""
    action: Callable[[argparse.Namespace], int] = args.oidc_run
    try:
        return action(args)
    except OidcInputError as exc:
        print(f"pod-identity-webhook oidc {args.oidc_command}: {exc}", file=sys.stderr)
        return 2


def _json(document: object) -> str:
    return json.dumps(document, indent=2) + "\n"


def keygen_hint(private: Path, public: Path) -> str:
    """kube-apiserver's flags for a new key. The public key is added to those it already
    verifies with, never put in their place: replacing them refuses every token issued before
    (docs/oidc.md, "Key rotation"; docs/self-hosted.md, "The separate-key route")."""
    return (
        f"kube-apiserver: --service-account-signing-key-file={private}\n"
        f"  --service-account-key-file={public} in addition to the public keys it verifies "
        "with now (one --service-account-key-file each, or one file holding them all), "
        "until every token signed with the old key has expired; replacing them refuses "
        "every existing token"
    )


def _keygen(args: argparse.Namespace) -> int:
    out: Path = args.out
    private, public = out / PRIVATE_KEY_FILE, out / PUBLIC_KEY_FILE
    existing = [str(path) for path in (private, public) if path.exists()]
    if existing and not args.force:
        raise OidcInputError(
            f"refusing to overwrite {', '.join(existing)}; pass --force to replace them"
        )
    key = new_key(args.algorithm, rsa_bits=args.rsa_bits)
    try:
        out.mkdir(parents=True, exist_ok=True)
        write_file(private, pem_private_key(key), 0o600)
        write_file(public, public_pem(key), 0o644)
    except OSError as exc:
        raise OidcInputError(f"--out {out}: cannot write: {exc.strerror or exc}") from exc
    print(f"wrote {private} (mode 0600) and {public}", file=sys.stderr)
    print(keygen_hint(private.absolute(), public.absolute()), file=sys.stderr)
    print(key_id(key.public_key()))
    return 0


def _jwks(args: argparse.Namespace) -> int:
    sys.stdout.write(_json(key_set(read_public_keys(args.public_key))))
    return 0


def _discovery(args: argparse.Namespace) -> int:
    issuer = parse_issuer(args.issuer)
    sys.stdout.write(_json(discovery_document(issuer, read_public_keys(args.public_key))))
    return 0


def _bundle_subject(args: argparse.Namespace) -> str:
    """The trust policy's subject: --namespace and --service-account, or placeholders."""
    if args.namespace is None and args.service_account is None:
        return f"system:serviceaccount:{NAMESPACE_PLACEHOLDER}:{SERVICE_ACCOUNT_PLACEHOLDER}"
    if args.namespace is None or args.service_account is None:
        raise OidcInputError("--namespace and --service-account: give both or neither")
    account = service_account(
        namespace=args.namespace, name=args.service_account, flag="--namespace/--service-account"
    )
    return str(account)


def _bundle(args: argparse.Namespace) -> int:
    issuer = parse_issuer(args.issuer)
    keys = read_public_keys(args.public_key)
    account_id = check_account_id(args.account_id)
    thumbprints = check_thumbprints(args.thumbprint)
    if not args.audience:
        raise OidcInputError("--audience '': expected a non-empty audience")
    subject = _bundle_subject(args)
    out: Path = args.out
    site = out / SITE_DIR
    discovery_file, jwks_file = site / DISCOVERY_PATH, site / JWKS_FILE
    policy_file, commands_file = out / TRUST_POLICY_FILE, out / COMMANDS_FILE
    policy = trust_policy(
        issuer,
        account_id=account_id,
        partition=args.partition,
        subject=subject,
        audience=args.audience,
    )
    placeholders = placeholders_in(policy)
    script = setup_script(
        issuer,
        site=site,
        policy_file=policy_file,
        placeholders=placeholders,
        audience=args.audience,
        thumbprints=thumbprints,
    )
    try:
        discovery_file.parent.mkdir(parents=True, exist_ok=True)
        write_file(discovery_file, _json(discovery_document(issuer, keys)).encode(), 0o644)
        write_file(jwks_file, _json(key_set(keys)).encode(), 0o644)
        write_file(policy_file, _json(policy).encode(), 0o644)
        write_file(commands_file, script.encode(), 0o644)
    except OSError as exc:
        raise OidcInputError(f"--out {out}: cannot write: {exc.strerror or exc}") from exc
    for path in (discovery_file, jwks_file, policy_file, commands_file):
        print(f"wrote {path}", file=sys.stderr)
    if placeholders:
        print(f"replace {', '.join(placeholders)} in {policy_file}", file=sys.stderr)
    return 0


def _token(args: argparse.Namespace) -> int:
    issuer = parse_issuer(args.issuer)
    subject = parse_subject(args.subject)
    key = read_private_key(args.private_key)
    claims = token_claims(
        issuer=issuer,
        subject=subject,
        audiences=args.audience or [STS_AUDIENCE],
        expiration_seconds=args.expiration,
        now=int(time.time()),
        uid=args.uid or str(uuid.uuid4()),
        jti=str(uuid.uuid4()),
    )
    # no trailing newline: the file is used as is, and botocore's container provider refuses a
    # token file ending in one (docs/oidc.md)
    token = sign_token(key, claims)
    sys.stdout.write(token + ("\n" if sys.stdout.isatty() else ""))
    return 0
