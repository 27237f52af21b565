"""The pod side: its ServiceAccount, the role ARN, which containers the webhook wires, and what
the AWS SDKs in them will find. Computed by the same mutator `serve` and `mutate` use."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jsonpatch

from webhook.assembly.podmutator import PodMutator, service_account_name
from webhook.doctor.report import Check, failed, not_checked, passed
from webhook.mutation.answer import Answer, Outcome
from webhook.mutation.defaults import MIN_TOKEN_EXPIRATION_SECONDS
from webhook.mutation.patch import DEFAULT_REGION_ENV, REGION_ENVS
from webhook.mutation.podfields import CONTAINER_LISTS
from webhook.mutation.podidentity import (
    Mode,
    PodIdentity,
    parse_skip_containers,
    pod_annotations,
)
from webhook.mutation.serviceaccount import (
    INCLUDE_CONTAINERS,
    ROLE_ARN,
    SKIP_CONTAINERS,
    is_valid_role_arn,
)
from webhook.mutation.stsendpoint import STS_ENDPOINT_ENV
from webhook.mutation.wiring import (
    AUTH_TOKEN_FILE_ENV,
    FULL_URI_ENV,
    ROLE_ARN_ENV,
    TOKEN_FILE_ENV,
    wiring_warnings,
)
from webhook.oidc.subject import PREFIX
from webhook.types import JsonObject


@dataclass(frozen=True, slots=True)
class PodFacts:
    """The pod side's checks and what the token and trust checks need to know of the pod."""

    subject: str
    audience: str | None  # of the projected token the webhook adds; None when it adds none
    mode: Mode | None
    checks: list[Check]
    role_arn: str = ""  # the role the pod gets (ServiceAccount, ConfigMap or composed); "" if none


def pod_checks(mutator: PodMutator, pod: JsonObject, namespace: str, *, sources: str) -> PodFacts:
    name = service_account_name(pod)
    subject = f"{PREFIX}{namespace}:{name}"
    result = mutator.mutate_now(pod, namespace)
    identity = mutator.identity_of(pod, namespace)
    checks = [_service_account(mutator, namespace, name, sources), _role(mutator, namespace, name)]
    patched: JsonObject = jsonpatch.apply_patch(pod, result.ops) if result.ops else pod
    checks.append(_containers(pod, patched, result, identity, mutator.annotation_prefix))
    token = _token_source(patched, result)
    checks += _sdk(patched, result, token)
    audience = token.get("audience") if token else None
    role_arn = identity.role_arn if identity is not None else ""
    return PodFacts(
        subject, audience if isinstance(audience, str) else None, result.mode, checks, role_arn
    )


def _service_account(mutator: PodMutator, namespace: str, name: str, sources: str) -> Check:
    check = "pod.serviceaccount"
    if not sources:
        # Nothing below can be checked without it, so this is a failure, never a pass or skip:
        # a report of "0 failed" must mean the pod was looked at.
        return failed(
            check,
            f"ServiceAccount {namespace}/{name} cannot be read: no source was given",
            seen="(no source)",
            expected=f"ServiceAccount {name} in namespace {namespace}",
            fix="give it with --service-accounts-file FILE, a ServiceAccount document in -f, "
            "or --kubeconfig FILE",
        )
    if mutator.store.get(namespace, name) is None:
        return failed(
            check,
            f"ServiceAccount {namespace}/{name} not found in {sources}",
            seen="(none)",
            expected=f"ServiceAccount {name} in namespace {namespace}",
            fix=f"kubectl -n {namespace} create serviceaccount {name}, or set the pod's "
            "serviceAccountName",
        )
    return passed(check, f"ServiceAccount {namespace}/{name} found in {sources}")


def _role(mutator: PodMutator, namespace: str, name: str) -> Check:
    check = "pod.role-arn"
    identity = mutator.store.get(namespace, name)
    annotation = f"{mutator.annotation_prefix}/{ROLE_ARN}"
    if identity is None:
        return not_checked(check, "no ServiceAccount to read the role from")
    if mutator.uses_container_credentials(namespace, name):
        return passed(check, "EKS Pod Identity (container credentials): no role annotation needed")
    if not identity.role_arn:
        return failed(
            check,
            f"ServiceAccount {namespace}/{name} has no {annotation} annotation",
            expected=f"{annotation}: arn:aws:iam::ACCOUNT:role/NAME",
            fix=f"kubectl -n {namespace} annotate serviceaccount {name} "
            f"{annotation}=arn:aws:iam::ACCOUNT:role/NAME",
        )
    if not is_valid_role_arn(identity.role_arn):
        return failed(
            check,
            f"{annotation} is not a valid IAM role ARN",
            seen=identity.role_arn,
            expected="arn:PARTITION:iam::ACCOUNT:role/NAME",
            fix="annotate the ServiceAccount with the role's full ARN (aws iam get-role)",
        )
    return passed(check, f"role {identity.role_arn}", seen=identity.role_arn)


def _containers(
    pod: JsonObject,
    patched: JsonObject,
    result: Answer,
    identity: PodIdentity | None,
    prefix: str,
) -> Check:
    check = "pod.containers"
    if result.outcome in (Outcome.NOT_FOUND, Outcome.NO_ROLE) or identity is None:
        return not_checked(check, "the webhook leaves this pod unchanged (no identity)")
    raw_skip = pod_annotations(pod).get(f"{prefix}/{SKIP_CONTAINERS}")
    skipped = parse_skip_containers(raw_skip)[0] if raw_skip is not None else frozenset()
    included = identity.include_containers
    pair = (
        (FULL_URI_ENV, AUTH_TOKEN_FILE_ENV)
        if identity.mode is Mode.CONTAINER_CREDENTIALS
        else (ROLE_ARN_ENV, TOKEN_FILE_ENV)
    )
    spec, patched_spec = pod.get("spec") or {}, patched.get("spec") or {}
    wired, left, half_wired = [], [], []
    problems: list[str] = []
    for list_name in CONTAINER_LISTS:
        after = patched_spec.get(list_name) or ()
        for index, container in enumerate(spec.get(list_name) or ()):
            name = str(container.get("name", ""))
            if name in skipped:
                left.append(f"{name} (skip-containers)")
                continue
            if included is not None and name not in included:
                left.append(f"{name} (not in include-containers)")
                continue
            # the same rule the admission warning uses, on the container as the webhook leaves it
            env = [e for e in after[index].get("env") or () if isinstance(e, dict)]
            names = {e.get("name") for e in env}
            own = wiring_warnings(name, env, names, pair, identity.role_arn) if env else []
            base = f"/spec/{list_name}/{index}/"
            if own:
                half_wired.append(name)
                problems += own
            elif any(op["path"].startswith(base) for op in result.ops):
                wired.append(name)
            elif result.outcome is Outcome.ALREADY_PRESENT or names & set(pair):
                wired.append(f"{name} (already wired)")
            else:
                left.append(name)
    notes = "; ".join(w for w in result.warnings if w not in problems)
    seen = f"wired: {', '.join(wired) or 'none'}; left alone: {', '.join(left) or 'none'}"
    if half_wired:
        return failed(
            check,
            "half-wired: " + "; ".join(problems),
            seen=f"{seen}; half-wired: {', '.join(half_wired)}",
            expected=f"both {pair[0]} and {pair[1]}, or neither (the webhook then adds both)"
            + (f"; {ROLE_ARN_ENV} {identity.role_arn}" if identity.role_arn else ""),
            fix=f"remove {pair[0]} and {pair[1]} from the container's own env",
        )
    if not wired:
        return failed(
            check,
            "no container gets credentials" + (f" ({notes})" if notes else ""),
            seen=seen,
            fix=f"remove the containers from {prefix}/{SKIP_CONTAINERS}"
            + (f", or name them in {prefix}/{INCLUDE_CONTAINERS}" if included is not None else ""),
        )
    return passed(check, seen + (f"; warnings: {notes}" if notes else ""), seen=seen)


def _token_source(patched: JsonObject, result: Answer) -> dict[str, Any] | None:
    """The serviceAccountToken projection the webhook added (or found, on a mutated pod)."""
    if result.mode is None:
        return None
    for volume in (patched.get("spec") or {}).get("volumes") or ():
        for source in ((volume.get("projected") or {}).get("sources")) or ():
            token = source.get("serviceAccountToken") if isinstance(source, dict) else None
            if isinstance(token, dict) and token.get("audience"):
                return token
    return None


def _sdk(patched: JsonObject, result: Answer, token: dict[str, Any] | None) -> list[Check]:
    if result.mode is None:
        return [
            not_checked("sdk.region", "no identity: nothing for the SDKs to read"),
            not_checked("sdk.token-lifetime", "no identity: no token"),
        ]
    checks = [_region(patched), _lifetime(token)]
    endpoint = _sts_endpoint(patched)
    if endpoint is not None:  # only when a container is pointed away from AWS STS
        checks.append(endpoint)
    return checks


def _sts_endpoint(patched: JsonObject) -> Check | None:
    """Where the SDKs of the wired containers send AssumeRoleWithWebIdentity, when it is not
    AWS STS (AWS_ENDPOINT_URL_STS, from --sts-endpoint-url, the annotation or the container)."""
    spec = patched.get("spec") or {}
    where: dict[str, list[str]] = {}
    for list_name in CONTAINER_LISTS:
        for container in spec.get(list_name) or ():
            env = [e for e in container.get("env") or () if isinstance(e, dict)]
            if not any(e.get("name") in (ROLE_ARN_ENV, FULL_URI_ENV) for e in env):
                continue
            for entry in env:
                if entry.get("name") == STS_ENDPOINT_ENV:
                    value = str(entry.get("value", "(valueFrom)"))
                    where.setdefault(value, []).append(str(container.get("name")))
    if not where:
        return None
    seen = "; ".join(f"{url} ({', '.join(names)})" for url, names in where.items())
    return passed(
        "sdk.sts-endpoint",
        f"{STS_ENDPOINT_ENV}: the SDKs call STS at {seen}, not AWS STS",
        seen=seen,
    )


def _region(patched: JsonObject) -> Check:
    spec = patched.get("spec") or {}
    missing: list[str] = []
    only_region: list[str] = []
    for list_name in CONTAINER_LISTS:
        for container in spec.get(list_name) or ():
            names = {e.get("name") for e in container.get("env") or () if isinstance(e, dict)}
            if ROLE_ARN_ENV not in names and FULL_URI_ENV not in names:
                continue
            if DEFAULT_REGION_ENV in names:
                continue
            (only_region if names & set(REGION_ENVS) else missing).append(
                str(container.get("name"))
            )
    fix = (
        "run the webhook with --aws-default-region REGION (it sets AWS_DEFAULT_REGION and "
        "AWS_REGION), or set AWS_DEFAULT_REGION in the container"
    )
    if only_region:
        return failed(
            "sdk.region",
            "AWS_REGION without AWS_DEFAULT_REGION: botocore (boto3, the AWS CLI) reads only "
            "AWS_DEFAULT_REGION",
            seen=", ".join(only_region),
            expected=DEFAULT_REGION_ENV,
            fix=fix,
        )
    if missing:
        return failed(
            "sdk.region",
            "no region in the environment: SDKs on nodes outside AWS have no instance metadata "
            "to take one from, and STS calls fail",
            seen=", ".join(missing),
            expected=DEFAULT_REGION_ENV,
            fix=fix,
        )
    return passed("sdk.region", "AWS_DEFAULT_REGION is set in every wired container")


def _lifetime(token: dict[str, Any] | None) -> Check:
    seconds = token.get("expirationSeconds") if token else None
    if not isinstance(seconds, int):
        return not_checked("sdk.token-lifetime", "no projected token with a lifetime found")
    if seconds < MIN_TOKEN_EXPIRATION_SECONDS:
        return failed(
            "sdk.token-lifetime",
            f"kube-apiserver refuses projected tokens under {MIN_TOKEN_EXPIRATION_SECONDS} s",
            seen=f"{seconds} s",
            expected=f">= {MIN_TOKEN_EXPIRATION_SECONDS} s",
            fix="raise the token-expiration annotation or --token-expiration",
        )
    return passed("sdk.token-lifetime", f"projected token lives {seconds} s", seen=f"{seconds} s")
