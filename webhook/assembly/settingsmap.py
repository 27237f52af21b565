"""The core's parameters read from Settings, and the account a composed role ARN names."""

from __future__ import annotations

import logging

from webhook.flags.settings import Settings
from webhook.mutation.podidentity import ContainerCredentials
from webhook.mutation.serviceaccount import IdentityDefaults
from webhook.sources.imds import MetadataError, fetch_instance_identity

logger = logging.getLogger(__name__)


class StartupError(RuntimeError):
    """The webhook cannot start as configured; the message says what to fix."""


def identity_defaults(
    settings: Settings, *, account_id: str = "", partition: str = ""
) -> IdentityDefaults:
    return IdentityDefaults(
        annotation_prefix=settings.annotation_prefix,
        audience=settings.token_audience,
        regional_sts=settings.sts_regional_endpoint,
        token_expiration=settings.token_expiration,
        compose_account_id=account_id,
        compose_partition=partition,
        sts_endpoint_url=settings.sts_endpoint_url,
    )


def container_credentials_of(settings: Settings) -> ContainerCredentials:
    return ContainerCredentials(
        audience=settings.container_credentials_audience,
        mount_path=settings.container_credentials_token_mount_path,
        volume_name=settings.container_credentials_token_volume_name,
        token_path=settings.container_credentials_token_path,
        full_uri=settings.container_credentials_full_uri,
    )


def serving_defaults(settings: Settings) -> IdentityDefaults:
    """`serve`'s defaults: with --compose-role-arn, the account from --aws-account-id or, without
    it, from EC2 instance metadata (StartupError when that cannot be read)."""
    if not settings.compose_role_arn:
        return identity_defaults(settings)
    if settings.aws_account_id:
        return identity_defaults(
            settings, account_id=settings.aws_account_id, partition=settings.aws_partition
        )
    try:
        instance = fetch_instance_identity()
    except MetadataError as exc:
        raise StartupError(f"--compose-role-arn: {exc}") from exc
    logger.info(
        "--compose-role-arn: account %s, partition %s (region %s, from instance metadata)",
        instance.account_id,
        instance.partition,
        instance.region,
    )
    return identity_defaults(settings, account_id=instance.account_id, partition=instance.partition)
