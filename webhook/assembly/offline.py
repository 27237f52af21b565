"""`mutate`'s and `doctor`'s webhook: the decisions `serve` makes, from sources read once.

ServiceAccounts come from --service-accounts-file, from ServiceAccount documents in the input,
then from `extra` (doctor: the cluster's); the container-credentials list and the Fargate
profiles from their files. Nothing is watched and nothing is counted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from webhook.assembly.decisions import FargateDecision
from webhook.assembly.podmutator import PodMutator
from webhook.assembly.settingsmap import identity_defaults
from webhook.flags.settings import Settings
from webhook.mutation.fargate import FargateProfile
from webhook.mutation.serviceaccount import IdentityDefaults, ServiceAccountIdentity
from webhook.sources.files.containercredentials import parse_container_credentials
from webhook.sources.files.fargateprofiles import parse_fargate_profiles
from webhook.sources.serviceaccounts.file import parse_service_accounts
from webhook.sources.serviceaccounts.store import ServiceAccountStore
from webhook.types import JsonObject

ExtraServiceAccounts = Callable[[IdentityDefaults], dict[str, ServiceAccountIdentity]]


class InputError(ValueError):
    """An input of `mutate` or `doctor` that cannot be used; the message names it."""


@dataclass(frozen=True)
class OfflineFargate:
    decision: FargateDecision
    profiles: tuple[FargateProfile, ...] | None  # None: no --fargate-profiles


def offline_fargate(settings: Settings) -> OfflineFargate:
    """The Fargate decision on the profiles of --fargate-profiles, read once."""
    profiles = None
    if settings.fargate_profiles is not None:
        path = settings.fargate_profiles
        profiles = parse_fargate_profiles(_read(path), source=path)
    decision = FargateDecision(lambda: profiles, scheduler_name=settings.fargate_scheduler_name)
    return OfflineFargate(decision, profiles)


def offline_mutator(
    settings: Settings,
    documents: list[JsonObject],
    *,
    extra: ExtraServiceAccounts | None = None,
) -> PodMutator:
    """The identity decision (the mutator `serve` runs) on ServiceAccounts read once. Raises
    InputError for a file it cannot read, ConfigError for one it cannot parse."""
    defaults = identity_defaults(settings)
    if settings.compose_role_arn:
        if not settings.aws_account_id:
            raise InputError(
                "--compose-role-arn needs --aws-account-id here: mutate does not read "
                "EC2 instance metadata"
            )
        defaults = identity_defaults(
            settings, account_id=settings.aws_account_id, partition=settings.aws_partition
        )
    entries = {}
    if settings.service_accounts_file is not None:
        path = settings.service_accounts_file
        entries.update(parse_service_accounts(_read(path), defaults, source=path))
    inline = [doc for doc in documents if doc.get("kind") == "ServiceAccount"]
    if inline:
        entries.update(
            parse_service_accounts(yaml.safe_dump_all(inline).encode(), defaults, source="input")
        )
    if extra is not None:
        entries.update(extra(defaults))
    store = ServiceAccountStore()
    store.replace_all(entries)
    keys: frozenset[str] = frozenset()
    if settings.watch_container_credentials_config is not None:
        path = settings.watch_container_credentials_config
        keys = parse_container_credentials(_read(path), source=path)
    return PodMutator.from_settings(settings, store, container_credentials_keys=lambda: keys)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from exc
