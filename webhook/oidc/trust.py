"""What IAM needs: the OIDC provider registration command, a role trust policy, and the script
that says how to set both up."""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Sequence
from pathlib import Path

from webhook.oidc.discovery import DISCOVERY_PATH, JWKS_FILE, Issuer
from webhook.oidc.errors import OidcInputError

ACCOUNT_PLACEHOLDER = "<ACCOUNT_ID>"
NAMESPACE_PLACEHOLDER = "<NAMESPACE>"
SERVICE_ACCOUNT_PLACEHOLDER = "<SERVICE_ACCOUNT>"
PARTITIONS = ("aws", "aws-cn", "aws-us-gov")
_ACCOUNT = re.compile(r"[0-9]{12}")
_THUMBPRINT = re.compile(r"[0-9a-fA-F]{40}")


def check_account_id(account_id: str) -> str:
    if account_id != ACCOUNT_PLACEHOLDER and not _ACCOUNT.fullmatch(account_id):
        raise OidcInputError(f"--account-id {account_id!r}: expected 12 digits")
    return account_id


def check_thumbprints(thumbprints: Sequence[str]) -> list[str]:
    for thumbprint in thumbprints:
        if not _THUMBPRINT.fullmatch(thumbprint):
            raise OidcInputError(
                f"--thumbprint {thumbprint!r}: expected the SHA-1 fingerprint as 40 hex digits"
            )
    return [thumbprint.lower() for thumbprint in thumbprints]


def provider_arn(issuer: Issuer, *, account_id: str, partition: str) -> str:
    return f"arn:{partition}:iam::{account_id}:oidc-provider/{issuer.host_path}"


def create_provider_command(
    issuer: Issuer, *, audiences: Sequence[str], thumbprints: Sequence[str]
) -> str:
    argv = ["aws", "iam", "create-open-id-connect-provider", "--url", issuer.url]
    argv += ["--client-id-list", *audiences]
    if thumbprints:
        argv += ["--thumbprint-list", *thumbprints]
    return shlex.join(argv)


def trust_policy(
    issuer: Issuer,
    *,
    account_id: str,
    partition: str,
    subject: str,
    audience: str,
) -> dict[str, object]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {
                    "Federated": provider_arn(issuer, account_id=account_id, partition=partition)
                },
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": {
                        f"{issuer.host_path}:sub": subject,
                        f"{issuer.host_path}:aud": audience,
                    }
                },
            }
        ],
    }


def placeholders_in(policy: object) -> list[str]:
    """The placeholders still in a trust policy, for the operator to replace."""
    text = json.dumps(policy)
    return [
        value
        for value in (ACCOUNT_PLACEHOLDER, NAMESPACE_PLACEHOLDER, SERVICE_ACCOUNT_PLACEHOLDER)
        if value in text
    ]


def setup_script(
    issuer: Issuer,
    *,
    site: Path,
    policy_file: Path,
    placeholders: Sequence[str],
    audience: str,
    thumbprints: Sequence[str],
) -> str:
    """The IAM setup for `oidc bundle`: upload the site, register the provider, create the role."""
    lines = [
        "#!/bin/sh",
        f"# IAM setup for the OIDC issuer {issuer.url}",
        f"# 1. Upload the contents of {site}/ as-is so that these URLs answer with them",
        "#    (Content-Type: application/json):",
        f"#      {issuer.url}/{DISCOVERY_PATH}",
        f"#      {issuer.url}/{JWKS_FILE}",
        "# 2. Register the issuer with IAM"
        + ("" if thumbprints else " (IAM no longer needs a thumbprint for most providers)")
        + ":",
        create_provider_command(issuer, audiences=[audience], thumbprints=thumbprints),
        f"# 3. Create the role with {policy_file}"
        + (f" (replace {', '.join(placeholders)} in it first)" if placeholders else "")
        + ":",
        "#    aws iam create-role --role-name ROLE_NAME --assume-role-policy-document "
        + shlex.quote(f"file://{policy_file}"),
    ]
    return "\n".join(lines) + "\n"
