"""What IAM needs: the OIDC provider registration command and a role trust policy."""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence

from webhook.oidc.discovery import Issuer
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
