"""Property-based tests over hostile and broken input (hypothesis).

In process, through the codec and the mutator: anything decodes to a review or a 4xx, every
patch applies cleanly, a valid pod stays valid (kubernetes-validate) and a second pass over
the output yields no patch. A smaller set goes through the webhook's HTTP app (in process,
tests/support/inprocess.py): never a 5xx, never a hang.
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import httpx
import jsonpatch
import kubernetes_validate
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.inprocess import InProcessWebhook, serve_in_process
from webhook.assembly.podmutator import PodMutator
from webhook.assembly.settingsmap import identity_defaults
from webhook.flags.settings import Settings
from webhook.server.admission.codec import BadRequest, parse_body, patched, review_of
from webhook.sources.serviceaccounts.file import parse_service_accounts
from webhook.sources.serviceaccounts.store import ServiceAccountStore

NAMESPACE = "team-a"
SERVICE_ACCOUNTS = b"""
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: ServiceAccount
  metadata:
    name: app
    namespace: team-a
    annotations:
      eks.amazonaws.com/role-arn: arn:aws:iam::111122223333:role/app
      eks.amazonaws.com/sts-regional-endpoints: "true"
      eks.amazonaws.com/sts-endpoint-url: http://sts.sts.svc:8080
- apiVersion: v1
  kind: ServiceAccount
  metadata: {name: cc, namespace: team-a}
- apiVersion: v1
  kind: ServiceAccount
  metadata: {name: plain, namespace: team-a}
"""
K8S_VERSION = kubernetes_validate.latest_version()
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SLOW = settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

# -- strategies -------------------------------------------------------------------------------

SURROGATES: tuple[Literal["Cs"]] = ("Cs",)  # not encodable as UTF-8
odd_text = st.text(st.characters(exclude_categories=SURROGATES), min_size=1, max_size=12)
pointer_text = st.sampled_from(["a~b", "a/b", "~1", "~0", "/", "~", "a~1b", "x/~/y"])
names = pointer_text | odd_text | st.sampled_from(["app", "sidecar", "init"])
huge = st.sampled_from(["h" * 200_000, "\u00e9" * 50_000, "\U0001f600" * 20_000])
values = odd_text | huge | st.just("")
aws_names = st.sampled_from(
    [
        "AWS_ROLE_ARN",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_STS_REGIONAL_ENDPOINTS",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
        "AWS_ENDPOINT_URL_STS",
    ]
)
env_entry = st.fixed_dictionaries({"name": aws_names | names}, optional={"value": values})
env = st.none() | st.lists(env_entry, max_size=5)  # duplicate names come up often
mount = st.fixed_dictionaries(
    {
        "name": st.sampled_from(["aws-iam-token", "eks-pod-identity-token", "data"]) | names,
        "mountPath": st.sampled_from(
            ["/data", "/var/run/secrets/eks.amazonaws.com/serviceaccount"]
        ),
    }
)
container = st.fixed_dictionaries(
    {"name": names, "image": st.just("registry.example/app:1")},
    optional={"env": env, "volumeMounts": st.none() | st.lists(mount, max_size=3)},
)
volume: st.SearchStrategy[dict[str, Any]] = st.fixed_dictionaries(
    {"name": st.sampled_from(["aws-iam-token", "eks-pod-identity-token", "data"]) | names},
    optional={"emptyDir": st.just({})},
)
annotation_keys = (
    st.sampled_from(
        [
            "eks.amazonaws.com/skip-containers",
            "eks.amazonaws.com/include-containers",
            "eks.amazonaws.com/token-expiration",
            "eks.amazonaws.com/role-arn",
            "eks.amazonaws.com/audience",
        ]
    )
    | names
)
string_map = st.none() | st.dictionaries(annotation_keys, values, max_size=4)
pods = st.fixed_dictionaries(
    {
        "apiVersion": st.just("v1"),
        "kind": st.just("Pod"),
        "metadata": st.fixed_dictionaries(
            {},
            optional={
                "name": names,
                "generateName": names,
                "labels": string_map,
                "annotations": string_map,
            },
        ),
        "spec": st.fixed_dictionaries(
            {
                "containers": st.lists(container, min_size=1, max_size=3),
                # mostly ServiceAccounts that mutate, sometimes one without a role or unknown
                "serviceAccountName": st.sampled_from(["app", "cc"])
                | st.sampled_from(["app", "cc"])
                | st.sampled_from(["plain", "missing"])
                | names,
            },
            optional={
                "initContainers": st.none() | st.lists(container, max_size=2),
                "volumes": st.none() | st.lists(volume, max_size=3),
                "nodeSelector": st.none()
                | st.fixed_dictionaries(
                    {"kubernetes.io/os": st.sampled_from(["windows", "linux"]) | odd_text}
                ),
            },
        ),
    }
)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | odd_text,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            odd_text | st.sampled_from(["spec", "containers", "env"]), children, max_size=4
        )
    ),
    max_leaves=12,
)


def envelope(pod: Any, uid: str = "uid-1") -> dict[str, Any]:
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "namespace": NAMESPACE,
            "operation": "CREATE",
            "object": pod,
        },
    }


# -- in process -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mutator() -> PodMutator:
    config = Settings(aws_default_region="eu-west-1")
    store = ServiceAccountStore()
    store.replace_all(
        parse_service_accounts(SERVICE_ACCOUNTS, identity_defaults(config), source="test.yaml")
    )
    listed = frozenset({f"{NAMESPACE}/cc"})
    return PodMutator.from_settings(config, store, container_credentials_keys=lambda: listed)


def _is_valid_pod(pod: Any) -> bool:
    if not isinstance(pod, dict) or (pod.get("apiVersion"), pod.get("kind")) != ("v1", "Pod"):
        return False
    try:
        kubernetes_validate.validate(pod, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError:
        return False
    return True


def admit(mutator: PodMutator, body: bytes) -> None:
    """The whole contract for one body: a 4xx, or a patch that applies and is idempotent."""
    try:
        review = review_of(parse_body(body))
    except BadRequest as exc:
        assert 400 <= exc.status < 500
        assert 0 < len(exc.message) <= 512
        return
    if review.pod is None:
        return
    original = copy.deepcopy(review.pod)
    result = mutator.mutate_now(review.pod, review.namespace)
    assert review.pod == original  # the core never edits its input
    assert {op["op"] for op in result.ops} <= {"add"}
    # the patch as it goes over the wire, base64 and all
    wire = orjson.loads(patched(review, result.ops, result.warnings))["response"]
    ops = orjson.loads(base64.b64decode(wire["patch"])) if "patch" in wire else []
    output = jsonpatch.apply_patch(original, ops)
    if _is_valid_pod(original):
        kubernetes_validate.validate(output, K8S_VERSION, strict=True)
    assert mutator.mutate_now(output, review.namespace).ops == []


@FAST
@given(pod=pods)
def test_generated_pods_patch_cleanly_stay_valid_and_converge(
    mutator: PodMutator, pod: dict[str, Any]
) -> None:
    admit(mutator, orjson.dumps(envelope(pod)))


@FAST
@given(body=st.binary(max_size=300) | json_values.map(orjson.dumps))
def test_arbitrary_bytes_and_json_are_a_review_or_a_4xx(mutator: PodMutator, body: bytes) -> None:
    admit(mutator, body)


@FAST
@given(
    part=st.sampled_from(["object", "spec", "containers", "container", "env", "metadata"]),
    junk=json_values,
)
def test_arbitrary_json_in_any_part_of_a_review_is_a_review_or_a_4xx(
    mutator: PodMutator, part: str, junk: Any
) -> None:
    body = envelope(
        {"metadata": {}, "spec": {"serviceAccountName": "app", "containers": [{"name": "c"}]}}
    )
    pod = body["request"]["object"]
    if part == "object":
        body["request"]["object"] = junk
    elif part in ("spec", "metadata"):
        pod[part] = junk
    elif part == "containers":
        pod["spec"]["containers"] = junk
    elif part == "container":
        pod["spec"]["containers"][0] = junk
    else:
        pod["spec"]["containers"][0]["env"] = junk
    admit(mutator, orjson.dumps(body))


@FAST
@given(pod=pods, data=st.data())
def test_truncated_reviews_are_a_400_naming_the_json_error(
    mutator: PodMutator, pod: dict[str, Any], data: st.DataObject
) -> None:
    body = orjson.dumps(envelope(pod))
    cut = data.draw(st.integers(min_value=0, max_value=len(body) - 1))
    with pytest.raises(BadRequest) as caught:
        review_of(parse_body(body[:cut]))
    assert caught.value.status == 400
    assert caught.value.message.startswith(("body is not valid JSON", "empty body"))


# -- through the HTTP app -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def webhook(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessWebhook]:
    tmp: Path = tmp_path_factory.mktemp("properties")
    (tmp / "sa.yaml").write_bytes(SERVICE_ACCOUNTS)
    (tmp / "cc.json").write_text(
        '{"identities": [{"namespace": "team-a", "serviceAccount": "cc"}]}'
    )
    with serve_in_process(
        "--service-accounts-file",
        str(tmp / "sa.yaml"),
        "--watch-container-credentials-config",
        str(tmp / "cc.json"),
        "--aws-default-region",
        "eu-west-1",
    ) as running:
        yield running


@pytest.fixture(scope="module")
def client(webhook: InProcessWebhook) -> Iterator[httpx.Client]:
    with webhook.client() as c:
        yield c


def _post(client: httpx.Client, body: bytes) -> httpx.Response:
    return client.post("/mutate", content=body, headers={"Content-Type": "application/json"})


@SLOW
@given(body=st.binary(max_size=200) | json_values.map(orjson.dumps))
def test_server_answers_arbitrary_bodies_with_a_4xx_or_200_never_5xx(
    client: httpx.Client, body: bytes
) -> None:
    answer = _post(client, body)
    assert answer.status_code in (200, 400)
    assert answer.json()["kind"] == "AdmissionReview"


@SLOW
@given(pod=pods, cut=st.none() | st.integers(min_value=0, max_value=200))
def test_server_mutates_generated_pods_with_patches_that_apply(
    client: httpx.Client, pod: dict[str, Any], cut: int | None
) -> None:
    body = orjson.dumps(envelope(pod))
    answer = _post(client, body if cut is None else body[:cut])
    assert answer.status_code in (200, 400)
    response = answer.json()["response"]
    if cut is not None:
        assert answer.status_code == 400
        return
    if answer.status_code == 200 and "patch" in response:
        output = jsonpatch.apply_patch(pod, orjson.loads(base64.b64decode(response["patch"])))
        again = _post(client, orjson.dumps(envelope(output)))
        assert "patch" not in again.json()["response"]
