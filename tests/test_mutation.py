"""Unit tests of the pure core: one behaviour per test or table row."""

from __future__ import annotations

import copy
from random import Random
from typing import Any

import jsonpatch
import pytest

from webhook.mutation.patch import Mutation, build_identity_patch
from webhook.mutation.podidentity import ContainerCredentials, resolve_pod_identity
from webhook.mutation.pointer import escape, join
from webhook.mutation.serviceaccount import (
    IdentityDefaults,
    ServiceAccountIdentity,
    identity_from_annotations,
)

P = "eks.amazonaws.com/"
ROLE = "arn:aws:iam::111122223333:role/app"
DEFAULTS = IdentityDefaults(
    annotation_prefix="eks.amazonaws.com",
    audience="sts.amazonaws.com",
    regional_sts=False,
    token_expiration=86400,
)
CC = ContainerCredentials(
    audience="pods.eks.amazonaws.com",
    mount_path="/var/run/secrets/pods.eks.amazonaws.com/serviceaccount",
    volume_name="eks-pod-identity-token",
    token_path="eks-pod-identity-token",
    full_uri="http://169.254.170.23/v1/credentials",
)
TOKEN_FILE = "/var/run/secrets/eks.amazonaws.com/serviceaccount/token"


def pod(
    *containers: dict[str, Any], annotations: dict[str, str] | None = None, **spec: Any
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": "p", "namespace": "ns"}
    if annotations is not None:
        metadata["annotations"] = annotations
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "spec": {"containers": list(containers) or [{"name": "app", "image": "x"}], **spec},
    }


def sa(**annotations: str) -> ServiceAccountIdentity:
    return identity_from_annotations(
        {P + key.replace("_", "-"): value for key, value in annotations.items()},
        DEFAULTS,
        source="ServiceAccount ns/sa",
    )


def mutate(
    the_pod: dict[str, Any],
    service_account: ServiceAccountIdentity | None = None,
    *,
    region: str = "",
    cc: ContainerCredentials | None = None,
    config_map: ServiceAccountIdentity | None = None,
    rng: Random | None = None,
) -> tuple[Mutation | None, tuple[str, ...], dict[str, Any]]:
    """(mutation, resolution warnings, mutated pod); the input pod is never modified."""
    before = copy.deepcopy(the_pod)
    resolution = resolve_pod_identity(
        the_pod,
        service_account=service_account,
        config_map=config_map,
        container_credentials=cc,
        annotation_prefix="eks.amazonaws.com",
        mount_path="/var/run/secrets/eks.amazonaws.com/serviceaccount",
        region=region,
        rng=rng or Random(0),
    )
    if resolution.identity is None:
        return None, resolution.warnings, the_pod
    mutation = build_identity_patch(the_pod, resolution.identity)
    assert the_pod == before, "the core must not modify its input"
    return mutation, resolution.warnings, jsonpatch.apply_patch(the_pod, mutation.ops)


def env_of(
    the_pod: dict[str, Any], index: int = 0, list_name: str = "containers"
) -> list[tuple[str, str]]:
    container = the_pod["spec"][list_name][index]
    return [(e["name"], e.get("value")) for e in container.get("env") or []]


def volume_of(the_pod: dict[str, Any], name: str = "aws-iam-token") -> dict[str, Any]:
    return next(v for v in the_pod["spec"]["volumes"] if v["name"] == name)


def token_of(the_pod: dict[str, Any], name: str = "aws-iam-token") -> dict[str, Any]:
    token: dict[str, Any] = volume_of(the_pod, name)["projected"]["sources"][0][
        "serviceAccountToken"
    ]
    return token


# -- who gets mutated ------------------------------------------------------------------------


def test_service_account_without_role_arn_is_not_mutated() -> None:
    mutation, _, _ = mutate(pod(), sa(audience="x"))
    assert mutation is None


def test_unknown_service_account_is_not_mutated() -> None:
    mutation, _, _ = mutate(pod(), None)
    assert mutation is None


def test_pod_annotations_never_supply_role_or_audience() -> None:
    the_pod = pod(annotations={P + "role-arn": ROLE, P + "audience": "evil"})
    assert mutate(the_pod, sa())[0] is None
    _, _, mutated = mutate(the_pod, sa(role_arn=ROLE))
    assert token_of(mutated)["audience"] == "sts.amazonaws.com"


def test_annotated_pod_gets_role_env_mount_and_token_volume_in_upstream_order() -> None:
    _, _, mutated = mutate(
        pod(), sa(role_arn=ROLE, sts_regional_endpoints="true"), region="eu-west-1"
    )
    assert env_of(mutated) == [
        ("AWS_STS_REGIONAL_ENDPOINTS", "regional"),
        ("AWS_DEFAULT_REGION", "eu-west-1"),
        ("AWS_REGION", "eu-west-1"),
        ("AWS_ROLE_ARN", ROLE),
        ("AWS_WEB_IDENTITY_TOKEN_FILE", TOKEN_FILE),
    ]
    assert mutated["spec"]["containers"][0]["volumeMounts"] == [
        {
            "name": "aws-iam-token",
            "readOnly": True,
            "mountPath": "/var/run/secrets/eks.amazonaws.com/serviceaccount",
        }
    ]
    assert mutated["spec"]["volumes"] == [
        {
            "name": "aws-iam-token",
            "projected": {
                "sources": [
                    {
                        "serviceAccountToken": {
                            "audience": "sts.amazonaws.com",
                            "expirationSeconds": 86400,
                            "path": "token",
                        }
                    }
                ]
            },
        }
    ]


# -- audience, regional STS, expiration --------------------------------------------------------


@pytest.mark.parametrize(
    ("annotations", "expected"),
    [
        ({}, "sts.amazonaws.com"),
        ({"audience": "custom.example.com"}, "custom.example.com"),
    ],
    ids=["flag-default", "sa-annotation"],
)
def test_audience_comes_from_service_account_else_flag(
    annotations: dict[str, str], expected: str
) -> None:
    _, _, mutated = mutate(pod(), sa(role_arn=ROLE, **annotations))
    assert token_of(mutated)["audience"] == expected


@pytest.mark.parametrize(
    ("flag", "annotation", "regional", "warns"),
    [
        (False, None, False, False),
        (True, None, True, False),
        (False, "true", True, False),
        (True, "false", False, False),
        (True, "yes-please", True, True),
        (False, "nonsense", False, True),
    ],
    ids=[
        "flag-off",
        "flag-on",
        "sa-true",
        "sa-false-beats-flag",
        "invalid-keeps-flag-on",
        "invalid-keeps-flag-off",
    ],
)
def test_regional_sts_from_annotation_else_flag(
    flag: bool, annotation: str | None, regional: bool, warns: bool
) -> None:
    defaults = IdentityDefaults("eks.amazonaws.com", "sts.amazonaws.com", flag, 86400)
    annotations = {P + "role-arn": ROLE}
    if annotation is not None:
        annotations[P + "sts-regional-endpoints"] = annotation
    identity = identity_from_annotations(annotations, defaults, source="sa")
    _, warnings, mutated = mutate(pod(), identity)
    assert (("AWS_STS_REGIONAL_ENDPOINTS", "regional") in env_of(mutated)) is regional
    assert any("sts-regional-endpoints" in w for w in warnings) is warns


@pytest.mark.parametrize(
    ("pod_value", "sa_value", "expected", "warning"),
    [
        (None, None, 86400, None),
        (None, "3600", 3600, None),
        ("7200", "3600", 7200, None),
        ("7200", None, 7200, None),
        ("abc", "3600", 3600, "not a whole number"),
        (None, "1h", 86400, "not a whole number"),
        ("100", None, 600, "raised to 600"),
        (None, "-5", 600, "raised to 600"),
        ("3.5", None, 86400, "not a whole number"),
    ],
    ids=[
        "flag",
        "sa",
        "pod-beats-sa",
        "pod",
        "bad-pod-ignored",
        "bad-sa-ignored",
        "pod-raised-to-min",
        "sa-raised-to-min",
        "float-ignored",
    ],
)
def test_token_expiration_pod_then_service_account_then_flag(
    pod_value: str | None, sa_value: str | None, expected: int, warning: str | None
) -> None:
    annotations = {P + "token-expiration": pod_value} if pod_value is not None else {}
    sa_annotations = {"token_expiration": sa_value} if sa_value is not None else {}
    _, warnings, mutated = mutate(pod(annotations=annotations), sa(role_arn=ROLE, **sa_annotations))
    assert token_of(mutated)["expirationSeconds"] == expected
    if warning is None:
        assert warnings == ()
    else:
        assert any(warning in w for w in warnings), warnings


def test_invalid_role_arn_is_used_but_warned_about() -> None:
    _, warnings, mutated = mutate(pod(), sa(role_arn="arn:aws:iam::123:role/short-account"))
    assert ("AWS_ROLE_ARN", "arn:aws:iam::123:role/short-account") in env_of(mutated)
    assert any("not a valid IAM role ARN" in w for w in warnings)


def test_valid_role_arn_in_other_partitions_gives_no_warning() -> None:
    _, warnings, _ = mutate(
        pod(), sa(role_arn="arn:aws-cn:iam::111122223333:role/path/to/r@x+y=z,w.v")
    )
    assert warnings == ()


def test_compose_role_arn_completes_a_bare_role_name() -> None:
    defaults = IdentityDefaults(
        "eks.amazonaws.com", "sts.amazonaws.com", False, 86400, "111122223333", "aws-us-gov"
    )
    identity = identity_from_annotations({P + "role-arn": "team/app"}, defaults, source="sa")
    assert identity.role_arn == "arn:aws-us-gov:iam::111122223333:role/team/app"
    assert identity.warnings == ()


# -- which containers, and what is already there ---------------------------------------------


def test_init_containers_and_native_sidecars_are_mutated_too() -> None:
    the_pod = pod(
        {"name": "app", "image": "x"},
        initContainers=[
            {"name": "migrate", "image": "x"},
            {"name": "proxy", "image": "x", "restartPolicy": "Always"},
        ],
    )
    _, _, mutated = mutate(the_pod, sa(role_arn=ROLE))
    for list_name, index in (("initContainers", 0), ("initContainers", 1), ("containers", 0)):
        assert ("AWS_ROLE_ARN", ROLE) in env_of(mutated, index, list_name)
        assert mutated["spec"][list_name][index]["volumeMounts"][0]["name"] == "aws-iam-token"


@pytest.mark.parametrize(
    ("annotation", "skipped"),
    [
        ("sidecar", {"sidecar"}),
        ("sidecar,init", {"sidecar", "init"}),
        ('"side,car",init', {"side,car", "init"}),
        ("", set()),
    ],
    ids=["one", "two", "csv-quoted-comma", "empty"],
)
def test_skip_containers_leaves_named_containers_untouched(
    annotation: str, skipped: set[str]
) -> None:
    names = ["app", "sidecar", "side,car"]
    the_pod = pod(
        *({"name": n, "image": "x"} for n in names),
        annotations={P + "skip-containers": annotation},
        initContainers=[{"name": "init", "image": "x"}],
    )
    _, _, mutated = mutate(the_pod, sa(role_arn=ROLE))
    for list_name in ("containers", "initContainers"):
        for container in mutated["spec"][list_name]:
            assert ("env" not in container) is (container["name"] in skipped), container["name"]


def test_skip_containers_naming_no_container_warns() -> None:
    the_pod = pod(annotations={P + "skip-containers": "app,ghost"})
    mutation, _, _ = mutate(the_pod, sa(role_arn=ROLE))
    assert mutation is not None
    assert mutation.warnings == (
        "skip-containers names 'ghost', which is not a container of this pod",
    )


@pytest.mark.parametrize(
    ("annotations", "wired"),
    [
        ({P + "include-containers": "app"}, {"app"}),
        ({P + "include-containers": "init,sidecar"}, {"init", "sidecar"}),
        ({P + "include-containers": '"side,car",app'}, {"side,car", "app"}),
        ({P + "include-containers": "app,sidecar", P + "skip-containers": "sidecar"}, {"app"}),
        ({P + "include-containers": ""}, set()),
        ({P + "include-containers": 'app,side"car'}, set()),
    ],
    ids=["one", "init-and-regular", "csv-quoted-comma", "skip-wins", "empty", "invalid-csv"],
)
def test_include_containers_wires_only_named_containers(
    annotations: dict[str, str], wired: set[str]
) -> None:
    names = ["app", "sidecar", "side,car"]
    the_pod = pod(
        *({"name": n, "image": "x"} for n in names),
        annotations=annotations,
        initContainers=[{"name": "init", "image": "x"}],
    )
    _, _, mutated = mutate(the_pod, sa(role_arn=ROLE))
    for list_name in ("containers", "initContainers"):
        for container in mutated["spec"][list_name]:
            name = container["name"]
            assert ("env" in container) is (name in wired), name
            assert ("volumeMounts" in container) is (name in wired), name
    # the token volume is the pod's, added as with skip-containers
    assert volume_of(mutated)["name"] == "aws-iam-token"


def test_include_containers_naming_no_container_warns() -> None:
    the_pod = pod(annotations={P + "include-containers": "app,ghost"})
    mutation, _, mutated = mutate(the_pod, sa(role_arn=ROLE))
    assert mutation is not None
    assert mutation.warnings == (
        "include-containers names 'ghost', which is not a container of this pod",
    )
    assert ("AWS_ROLE_ARN", ROLE) in env_of(mutated)


def test_include_containers_that_is_not_csv_warns_and_wires_nothing() -> None:
    resolution = resolve_pod_identity(
        pod(annotations={P + "include-containers": 'app,side"car'}),
        service_account=sa(role_arn=ROLE),
        config_map=None,
        container_credentials=None,
        annotation_prefix="eks.amazonaws.com",
        mount_path="/m",
        region="",
        rng=Random(0),
    )
    assert resolution.invalid == ("include-containers",)
    assert len(resolution.warnings) == 1
    assert resolution.warnings[0].startswith("pod annotation eks.amazonaws.com/include-containers ")
    assert resolution.warnings[0].endswith("; no container gets credentials")


def test_an_empty_include_containers_wires_nothing_and_says_so() -> None:
    _, warnings, mutated = mutate(
        pod(annotations={P + "include-containers": ""}), sa(role_arn=ROLE)
    )
    assert env_of(mutated) == []
    assert warnings == (
        "pod annotation eks.amazonaws.com/include-containers is empty; no container gets "
        "credentials",
    )


def test_include_containers_applies_in_container_credentials_mode() -> None:
    the_pod = pod(
        {"name": "app", "image": "x"},
        {"name": "proxy", "image": "x"},
        annotations={P + "include-containers": "proxy"},
    )
    _, _, mutated = mutate(the_pod, None, cc=CC)
    assert env_of(mutated, 0) == []
    assert ("AWS_CONTAINER_CREDENTIALS_FULL_URI", CC.full_uri) in env_of(mutated, 1)


def test_skip_containers_cannot_remove_variables_the_user_set() -> None:
    container = {"name": "app", "image": "x", "env": [{"name": "AWS_ROLE_ARN", "value": "mine"}]}
    the_pod = pod(container, annotations={P + "skip-containers": "app"})
    mutation, _, mutated = mutate(the_pod, sa(role_arn=ROLE))
    assert mutation is not None
    assert env_of(mutated) == [("AWS_ROLE_ARN", "mine")]
    assert all(op["op"] == "add" for op in mutation.ops)


@pytest.mark.parametrize(
    ("existing", "expected_added"),
    [
        (
            [("AWS_STS_REGIONAL_ENDPOINTS", "legacy")],
            ["AWS_DEFAULT_REGION", "AWS_REGION", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE"],
        ),
        (
            [("AWS_REGION", "us-east-1")],
            ["AWS_STS_REGIONAL_ENDPOINTS", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE"],
        ),
        (
            [("AWS_DEFAULT_REGION", "us-east-1")],
            ["AWS_STS_REGIONAL_ENDPOINTS", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE"],
        ),
        (
            [("AWS_ROLE_ARN", "mine")],
            ["AWS_STS_REGIONAL_ENDPOINTS", "AWS_DEFAULT_REGION", "AWS_REGION"],
        ),
        (
            [("AWS_WEB_IDENTITY_TOKEN_FILE", "/mine")],
            ["AWS_STS_REGIONAL_ENDPOINTS", "AWS_DEFAULT_REGION", "AWS_REGION"],
        ),
    ],
    ids=["sts-set", "region-set", "default-region-set", "role-set", "token-file-set"],
)
def test_variables_the_user_set_are_kept_and_not_added_again(
    existing: list[tuple[str, str]], expected_added: list[str]
) -> None:
    container = {"name": "app", "image": "x", "env": [{"name": n, "value": v} for n, v in existing]}
    _, _, mutated = mutate(
        pod(container), sa(role_arn=ROLE, sts_regional_endpoints="true"), region="eu-west-1"
    )
    env = env_of(mutated)
    assert env[: len(existing)] == existing
    assert [name for name, _ in env[len(existing) :]] == expected_added


def test_container_with_credentials_region_and_sts_is_left_alone_mount_included() -> None:
    # upstream's rule: such a container is complete, even without the token mount
    env = [
        {"name": "AWS_REGION", "value": "r"},
        {"name": "AWS_STS_REGIONAL_ENDPOINTS", "value": "regional"},
        {"name": "AWS_ROLE_ARN", "value": "mine"},
    ]
    mutation, _, mutated = mutate(pod({"name": "app", "image": "x", "env": env}), sa(role_arn=ROLE))
    assert mutation is not None
    assert "volumeMounts" not in mutated["spec"]["containers"][0]


def test_existing_mount_of_the_volume_name_is_kept() -> None:
    container = {
        "name": "app",
        "image": "x",
        "volumeMounts": [{"name": "aws-iam-token", "mountPath": "/custom"}],
    }
    _, _, mutated = mutate(pod(container), sa(role_arn=ROLE))
    assert mutated["spec"]["containers"][0]["volumeMounts"] == [
        {"name": "aws-iam-token", "mountPath": "/custom"}
    ]


@pytest.mark.parametrize("selector", ["kubernetes.io/os", "beta.kubernetes.io/os"])
def test_windows_pods_get_a_windows_token_path(selector: str) -> None:
    _, _, mutated = mutate(pod(nodeSelector={selector: "windows"}), sa(role_arn=ROLE))
    assert (
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "C:\\var\\run\\secrets\\eks.amazonaws.com\\serviceaccount\\token",
    ) in env_of(mutated)


def test_linux_node_selector_keeps_the_posix_path() -> None:
    _, _, mutated = mutate(pod(nodeSelector={"kubernetes.io/os": "linux"}), sa(role_arn=ROLE))
    assert ("AWS_WEB_IDENTITY_TOKEN_FILE", TOKEN_FILE) in env_of(mutated)


# -- volumes ---------------------------------------------------------------------------------


def test_existing_volume_of_that_name_is_not_replaced() -> None:
    volumes = [{"name": "aws-iam-token", "emptyDir": {}}]
    mutation, _, mutated = mutate(pod(volumes=volumes), sa(role_arn=ROLE))
    assert mutation is not None
    assert mutated["spec"]["volumes"] == volumes
    assert not any(op["path"].startswith("/spec/volumes") for op in mutation.ops)


def test_token_volume_goes_first_among_existing_volumes_as_upstream() -> None:
    volumes = [{"name": "data", "emptyDir": {}}]
    _, _, mutated = mutate(pod(volumes=volumes), sa(role_arn=ROLE))
    assert [v["name"] for v in mutated["spec"]["volumes"]] == ["aws-iam-token", "data"]


# -- minimal patches ---------------------------------------------------------------------------


def test_existing_env_list_is_appended_not_replaced() -> None:
    container = {
        "name": "app",
        "image": "x",
        "env": [{"name": "A", "value": "1"}],
        "volumeMounts": [],
    }
    mutation, _, _ = mutate(pod(container), sa(role_arn=ROLE))
    assert mutation is not None
    assert [op["path"] for op in mutation.ops] == [
        "/spec/volumes",
        "/spec/containers/0/env/-",
        "/spec/containers/0/env/-",
        "/spec/containers/0/volumeMounts/-",
    ]


def test_null_env_list_is_created() -> None:
    mutation, _, mutated = mutate(
        pod({"name": "app", "image": "x", "env": None}), sa(role_arn=ROLE)
    )
    assert mutation is not None
    assert "/spec/containers/0/env" in [op["path"] for op in mutation.ops]
    assert len(env_of(mutated)) == 2


def test_fields_no_schema_knows_survive_unchanged() -> None:
    container: dict[str, Any] = {
        "name": "app",
        "image": "x",
        "futureField": {"nested": [1, None, "x"]},
        "env": [{"name": "A", "valueFrom": {"vendorSource": {"key": "k"}}}],
        "volumeMounts": [{"name": "data", "mountPath": "/d", "recursiveReadOnly": "IfPossible"}],
    }
    the_pod = pod(
        container, vendorExtension={"a": 1}, volumes=[{"name": "data", "image": {"reference": "r"}}]
    )
    _, _, mutated = mutate(the_pod, sa(role_arn=ROLE))
    out = mutated["spec"]["containers"][0]
    assert out["futureField"] == container["futureField"]
    assert out["env"][0] == container["env"][0]
    assert out["volumeMounts"][0] == container["volumeMounts"][0]
    assert mutated["spec"]["vendorExtension"] == {"a": 1}
    assert all(
        op["op"] == "add" for op in (mutate(the_pod, sa(role_arn=ROLE))[0] or Mutation([], ())).ops
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {
            "service_account": sa(role_arn=ROLE, sts_regional_endpoints="true"),
            "region": "us-east-1",
        },
        {"service_account": sa(role_arn=ROLE)},
        {"service_account": sa(), "cc": CC},
    ],
    ids=["web-identity-all-env", "web-identity", "container-credentials"],
)
def test_mutating_an_already_mutated_pod_yields_no_patch(kwargs: dict[str, Any]) -> None:
    the_pod = pod(
        {"name": "app", "image": "x"},
        initContainers=[{"name": "init", "image": "x"}],
        volumes=[{"name": "data", "emptyDir": {}}],
    )
    _, _, once = mutate(the_pod, **kwargs)
    again, _, _ = mutate(once, **kwargs)
    assert again is not None
    assert again.ops == []


# -- container credentials (EKS Pod Identity) --------------------------------------------------


def test_container_credentials_win_over_role_arn() -> None:
    _, _, mutated = mutate(pod(), sa(role_arn=ROLE), cc=CC)
    names = [name for name, _ in env_of(mutated)]
    assert names == ["AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"]
    assert (
        env_of(mutated)[1][1]
        == "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount/eks-pod-identity-token"
    )
    assert mutated["metadata"]["labels"] == {"eks.amazonaws.com/pod-identity": "enabled"}
    assert token_of(mutated, "eks-pod-identity-token")["audience"] == "pods.eks.amazonaws.com"
    assert mutated["spec"]["containers"][0]["volumeMounts"][0]["name"] == "eks-pod-identity-token"


def test_container_credentials_label_is_added_beside_existing_labels_with_escaped_pointer() -> None:
    the_pod = pod()
    the_pod["metadata"]["labels"] = {"app": "x"}
    mutation, _, mutated = mutate(the_pod, None, cc=CC)
    assert mutation is not None
    assert mutation.ops[0]["path"] == "/metadata/labels/eks.amazonaws.com~1pod-identity"
    assert mutated["metadata"]["labels"] == {
        "app": "x",
        "eks.amazonaws.com/pod-identity": "enabled",
    }


def test_container_credentials_default_expiration_gets_jitter_in_upstream_range() -> None:
    seen = set()
    for seed in range(40):
        _, _, mutated = mutate(pod(), None, cc=CC, rng=Random(seed))
        seconds = token_of(mutated, "eks-pod-identity-token")["expirationSeconds"]
        assert 79200 <= seconds <= 86400
        seen.add(seconds)
    assert len(seen) > 1


def test_container_credentials_explicit_expiration_gets_no_jitter() -> None:
    _, _, mutated = mutate(pod(), sa(token_expiration="3600", sts_regional_endpoints="true"), cc=CC)
    assert token_of(mutated, "eks-pod-identity-token")["expirationSeconds"] == 3600
    assert ("AWS_STS_REGIONAL_ENDPOINTS", "regional") in env_of(mutated)


# -- ConfigMap precedence ---------------------------------------------------------------------


def test_service_account_annotation_wins_over_config_map() -> None:
    cm = ServiceAccountIdentity("arn:aws:iam::111122223333:role/from-cm", "cm-aud", False, 3600)
    _, _, mutated = mutate(pod(), sa(role_arn=ROLE), config_map=cm)
    assert ("AWS_ROLE_ARN", ROLE) in env_of(mutated)


def test_config_map_applies_when_service_account_has_no_role() -> None:
    cm = ServiceAccountIdentity("arn:aws:iam::111122223333:role/from-cm", "cm-aud", False, 3600)
    _, _, mutated = mutate(pod(), sa(), config_map=cm)
    assert ("AWS_ROLE_ARN", cm.role_arn) in env_of(mutated)
    assert token_of(mutated) == {"audience": "cm-aud", "expirationSeconds": 3600, "path": "token"}


# -- JSON pointers -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("token", "escaped"),
    [("a/b", "a~1b"), ("a~b", "a~0b"), ("~/", "~0~1"), ("plain", "plain")],
)
def test_pointer_tokens_are_escaped(token: str, escaped: str) -> None:
    assert escape(token) == escaped


def test_pointer_join_builds_a_path() -> None:
    assert (
        join("metadata", "labels", "eks.amazonaws.com/x") == "/metadata/labels/eks.amazonaws.com~1x"
    )


# -- half-wired containers (webhook/mutation/wiring.py) -----------------------------------------

OTHER_ROLE = "arn:aws:iam::444455556666:role/payments-other"


@pytest.mark.parametrize(
    ("env", "cc", "words"),
    [
        ([("AWS_ROLE_ARN", ROLE)], False, ["'app' sets AWS_ROLE_ARN but not AWS_WEB_IDENTITY"]),
        ([("AWS_WEB_IDENTITY_TOKEN_FILE", "/t")], False, ["sets AWS_WEB_IDENTITY_TOKEN_FILE but"]),
        (
            [("AWS_ROLE_ARN", OTHER_ROLE), ("AWS_WEB_IDENTITY_TOKEN_FILE", "/t")],
            False,
            [f"'app' sets its own AWS_ROLE_ARN {OTHER_ROLE}, not the ServiceAccount's {ROLE}"],
        ),
        (
            [("AWS_ROLE_ARN", OTHER_ROLE)],
            False,
            ["but not AWS_WEB_IDENTITY_TOKEN_FILE", f"its own AWS_ROLE_ARN {OTHER_ROLE}"],
        ),
        (
            [("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://x")],
            True,
            ["sets AWS_CONTAINER_CREDENTIALS_FULL_URI but not AWS_CONTAINER_AUTHORIZATION"],
        ),
        ([("AWS_ROLE_ARN", ROLE), ("AWS_WEB_IDENTITY_TOKEN_FILE", "/t")], False, []),
        ([("AWS_REGION", "eu-west-1")], False, []),
    ],
    ids=[
        "role-without-token-file",
        "token-file-without-role",
        "another-role",
        "another-role-without-token-file",
        "full-uri-without-token-file",
        "both-for-the-role",
        "no-credentials",
    ],
)
def test_a_half_wired_container_is_warned_about_by_name_and_variable(
    env: list[tuple[str, str]], cc: bool, words: list[str]
) -> None:
    container = {"name": "app", "image": "x", "env": [{"name": n, "value": v} for n, v in env]}
    mutation, _, _ = mutate(pod(container), sa(role_arn=ROLE), cc=CC if cc else None)
    assert mutation is not None
    assert len(mutation.warnings) == len(words)
    for warning, expected in zip(mutation.warnings, words, strict=True):
        assert expected in warning
        assert len(warning) <= 256  # kube-apiserver's limit per warning, kept by the codec


def test_a_skipped_or_value_from_container_is_not_half_wired() -> None:
    skipped = {"name": "side", "image": "x", "env": [{"name": "AWS_ROLE_ARN", "value": "r"}]}
    from_secret = {
        "name": "app",
        "image": "x",
        "env": [
            {"name": "AWS_ROLE_ARN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
            {"name": "AWS_WEB_IDENTITY_TOKEN_FILE", "value": "/t"},
        ],
    }
    the_pod = pod(skipped, from_secret, annotations={P + "skip-containers": "side"})
    mutation, _, _ = mutate(the_pod, sa(role_arn=ROLE))
    assert mutation is not None
    assert mutation.warnings == ()
