"""EC2 instance metadata (IMDSv2): the account and region for --compose-role-arn."""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from dataclasses import dataclass

import orjson

# The AWS SDKs honour this variable; tests point it at a local server.
ENDPOINT_ENV = "AWS_EC2_METADATA_SERVICE_ENDPOINT"
DEFAULT_ENDPOINT = "http://169.254.169.254"
TOKEN_PATH = "/latest/api/token"
DOCUMENT_PATH = "/latest/dynamic/instance-identity/document"
TOKEN_TTL_SECONDS = 21600
TIMEOUT_SECONDS = 2.0

# Region prefix -> partition, as upstream main.go; anything else is "aws".
_PARTITIONS = (
    ("cn-", "aws-cn"),
    ("us-gov-", "aws-us-gov"),
    ("us-isob-", "aws-iso-b"),
    ("us-iso-", "aws-iso"),
    ("eusc-", "aws-eusc"),
)


class MetadataError(RuntimeError):
    """Instance metadata could not be read; the message says what to do instead."""


@dataclass(frozen=True, slots=True)
class InstanceIdentity:
    account_id: str
    region: str

    @property
    def partition(self) -> str:
        return partition_of_region(self.region)


def partition_of_region(region: str) -> str:
    for prefix, partition in _PARTITIONS:
        if region.startswith(prefix):
            return partition
    return "aws"


def metadata_endpoint() -> str:
    return (os.environ.get(ENDPOINT_ENV) or DEFAULT_ENDPOINT).rstrip("/")


def fetch_instance_identity(
    *, endpoint: str | None = None, timeout: float = TIMEOUT_SECONDS
) -> InstanceIdentity:
    base = endpoint or metadata_endpoint()
    hint = "pass --aws-account-id (and --aws-partition), or run where EC2 instance metadata is reachable"
    try:
        token_request = urllib.request.Request(
            base + TOKEN_PATH,
            method="PUT",
            headers={"X-aws-ec2-metadata-token-ttl-seconds": str(TOKEN_TTL_SECONDS)},
        )
        with urllib.request.urlopen(token_request, timeout=timeout) as response:
            token = response.read().decode()
        document_request = urllib.request.Request(
            base + DOCUMENT_PATH, headers={"X-aws-ec2-metadata-token": token}
        )
        with urllib.request.urlopen(document_request, timeout=timeout) as response:
            body = response.read()
    except (urllib.error.URLError, OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise MetadataError(
            f"cannot read EC2 instance metadata at {base}: {reason}; {hint}"
        ) from exc
    document_from = f"EC2 instance identity document from {base}"
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MetadataError(f"{document_from} is not JSON; {hint}") from exc
    account = document.get("accountId") if isinstance(document, dict) else None
    region = document.get("region") if isinstance(document, dict) else None
    if not isinstance(account, str) or not account or not isinstance(region, str) or not region:
        raise MetadataError(f"{document_from} lacks accountId or region; {hint}")
    return InstanceIdentity(account_id=account, region=region)
