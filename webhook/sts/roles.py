"""The roles the local STS knows and their trust policies, read once at start-up.

`--role ARN=FILE` gives one role's trust policy (the document, or `aws iam get-role` output,
which must then name that role); `--roles DIR` reads every `*.json` in a folder of
`aws iam get-role` outputs, each naming its role. The files are read as `doctor --trust-policy`
reads them (webhook/doctor/policy.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from webhook.doctor.inputs import DoctorInputError, read_text
from webhook.doctor.policy import PolicyError, TrustPolicy, load_trust_policy
from webhook.mutation.serviceaccount import is_valid_role_arn

MAX_ROLES = 10_000


class RolesError(ValueError):
    """A --role or --roles input that cannot be used; names the flag and the file."""


def _load(path: Path, flag: str) -> TrustPolicy:
    try:
        return load_trust_policy(read_text(path, flag))
    except DoctorInputError as exc:
        raise RolesError(str(exc)) from exc
    except PolicyError as exc:
        raise RolesError(f"{flag} {path}: {exc}") from exc


def parse_role_flag(value: str) -> tuple[str, Path]:
    arn, sep, path = value.partition("=")
    if not sep or not path:
        raise RolesError(f"--role {value!r}: expected ROLE_ARN=FILE")
    if not is_valid_role_arn(arn):
        raise RolesError(
            f"--role {arn!r}: not an IAM role ARN (arn:PARTITION:iam::ACCOUNT:role/NAME)"
        )
    return arn, Path(path)


def load_roles(role_flags: Sequence[str], directories: Sequence[Path]) -> Mapping[str, TrustPolicy]:
    roles: dict[str, TrustPolicy] = {}
    for directory in directories:
        if not directory.is_dir():
            raise RolesError(f"--roles {directory}: not a directory")
        for path in sorted(directory.glob("*.json")):
            policy = _load(path, "--roles")
            if policy.role_arn is None:
                raise RolesError(
                    f"--roles {path}: a bare policy document names no role; expected "
                    "`aws iam get-role` output (or give it with --role ARN=FILE)"
                )
            roles[policy.role_arn] = policy
    for value in role_flags:
        arn, path = parse_role_flag(value)
        policy = _load(path, "--role")
        if policy.role_arn is not None and policy.role_arn != arn:
            raise RolesError(
                f"--role {value}: the file is the get-role output of {policy.role_arn}"
            )
        roles[arn] = policy
    if len(roles) > MAX_ROLES:
        raise RolesError(f"{len(roles)} roles: at most {MAX_ROLES}")
    return roles
