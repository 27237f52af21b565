"""Which environment variables wire a container to its identity, and when a container is half-wired.

The webhook adds a mode's pair of variables (role ARN and token file, or container-credentials
URI and token file) only to a container that sets neither: a container that sets one of them
keeps its own env. A container left with one of the pair and not the other, or with its own
AWS_ROLE_ARN for another role than its ServiceAccount's, gets no working credentials from the
webhook (README, "How a pod is mutated"). This is the rule the admission warning, `mutate`
and `doctor` share.

It is called only for a container that already sets a variable of the pair, so a pod without
such env pays nothing for it.
"""

from __future__ import annotations

from collections.abc import Container, Sequence

from webhook.types import JsonObject

ROLE_ARN_ENV = "AWS_ROLE_ARN"
TOKEN_FILE_ENV = "AWS_WEB_IDENTITY_TOKEN_FILE"
FULL_URI_ENV = "AWS_CONTAINER_CREDENTIALS_FULL_URI"
AUTH_TOKEN_FILE_ENV = "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"


def wiring_warnings(
    container_name: str,
    env: Sequence[JsonObject],
    names: Container[object],
    pair: tuple[str, str],
    role_arn: str,
) -> list[str]:
    """What is wrong with a container whose own env sets a variable of `pair`.

    `names` are the names in `env`; `role_arn` is the ServiceAccount's ("" in container
    credentials mode, where no role is compared).
    """
    first, second = pair
    has_first, has_second = first in names, second in names
    warnings = []
    if has_first != has_second:
        present, missing = (first, second) if has_first else (second, first)
        warnings.append(
            f"container {container_name!r} sets {present} but not {missing}, and the "
            f"webhook adds neither to it: remove {present} or set both"
        )
    if role_arn and has_first and first == ROLE_ARN_ENV:
        own = _value_of(env, ROLE_ARN_ENV)
        if own is not None and own != role_arn:
            warnings.append(
                f"container {container_name!r} sets its own {ROLE_ARN_ENV} {own}, not the "
                f"ServiceAccount's {role_arn}: remove it to use the ServiceAccount's role"
            )
    return warnings


def _value_of(env: Sequence[JsonObject], name: str) -> str | None:
    """The literal value the container gives `name` (the last entry wins, as in kubelet);
    None for a valueFrom, which cannot be read here."""
    value: str | None = None
    for entry in env:
        if isinstance(entry, dict) and entry.get("name") == name:
            raw = entry.get("value")
            value = raw if isinstance(raw, str) else None
    return value
