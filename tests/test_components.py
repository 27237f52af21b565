"""What the base leaves out and each optional component adds (manifests/components)."""

# ruff: noqa: F811 - `built` and `workspace` are test_manifests' module-scoped fixtures

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import yaml

from tests.support.admission import APP_FLAGS, review
from tests.support.server import run_webhook
from tests.test_manifests import (  # noqa: F401 - fixtures are used by name
    COMPONENTS,
    Objects,
    built,
    container,
    kustomize,
    one,
    serve_settings,
    workspace,
)
from webhook import __version__
from webhook.server.metrics.registry import Metrics

ROOT = Path(__file__).resolve().parent.parent
MONITORING = "with-component/monitoring"
NETWORK_POLICY = "with-component/network-policy"
IMAGE = "ghcr.io/pod-identity-webhook/pod-identity-webhook"
# metric families kube-state-metrics exports (kube-prometheus-stack installs it)
EXTERNAL_METRICS = ("kube_deployment_status_replicas_available", "kube_deployment_spec_replicas")
PROMQL_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool"}
PROMQL_FUNCTIONS = {"sum", "rate", "increase", "histogram_quantile", "time", "max", "min"}


def test_every_component_is_built_by_the_tests() -> None:
    shipped = sorted(p.name for p in (ROOT / "manifests/components").iterdir() if p.is_dir())
    assert shipped == sorted(COMPONENTS)


def test_base_is_irsa_only(built: dict[str, Objects]) -> None:
    objects = built["manifests/base"]
    (webhook,) = one(objects, "MutatingWebhookConfiguration")["webhooks"]
    assert webhook["clientConfig"]["service"]["path"] == "/mutate"
    assert not [o for o in objects if o["kind"] == "ConfigMap"]
    assert serve_settings(objects).fargate_profiles is None


def test_base_image_is_the_released_version(built: dict[str, Objects]) -> None:
    assert container(built["manifests/base"])["image"] == f"{IMAGE}:{__version__}"
    # the documented override names the image the same way
    assert f"- name: {IMAGE}" in (ROOT / "docs/deploy.md").read_text()
    kind = yaml.safe_load((ROOT / "hack/kind/kustomization.yaml").read_text())
    assert [i["name"] for i in kind["images"]] == [IMAGE]


def test_docs_point_at_no_release_that_does_not_exist_yet() -> None:
    # until a release is published, a versioned image or tag reference would be a dead end;
    # the docs say how to build the image and spell the published form with VERSION
    for doc in ("README.md", "docs/deploy.md"):
        text = (ROOT / doc).read_text()
        assert not re.search(r"\?ref=v\d", text), doc
        assert not re.search(re.escape(IMAGE) + r":\d", text), doc
        assert "make image" in text and f"{IMAGE}:VERSION" in text, doc


def test_pod_keeps_serving_until_kube_apiserver_stops_calling_it(
    built: dict[str, Objects],
) -> None:
    objects = built["manifests/base"]
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    pause = container(objects)["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert 3 <= pause <= 10
    grace = serve_settings(objects).shutdown_grace_period
    # the pause, then in-flight requests get the whole shutdown grace period before SIGKILL
    assert pod["terminationGracePeriodSeconds"] >= pause + grace + 5


def test_resource_requests_follow_the_performance_notes(built: dict[str, Objects]) -> None:
    requests = container(built["manifests/base"])["resources"]["requests"]
    performance = (ROOT / "docs/performance.md").read_text()
    assert f"{requests['cpu']} is plenty" in performance


# -- monitoring ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def exposition(tmp_path_factory: pytest.TempPathFactory) -> Iterator[set[str]]:
    """Every sample name the real server's /metrics can show, after one admission."""
    tmp_path = tmp_path_factory.mktemp("metrics")
    with run_webhook(tmp_path, *APP_FLAGS) as (server):
        with server.client() as client:
            body = orjson.dumps(review("team-a", "app"))
            client.post("/mutate", content=body, headers={"Content-Type": "application/json"})
        text = httpx.get(server.metrics_url + "/metrics", timeout=5).text
    names: set[str] = set()
    suffixes = {
        "counter": ("_total",),
        "histogram": ("_bucket", "_count", "_sum"),
        "summary": ("_count", "_sum"),
    }
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            names.add(name)
            names.update(name + suffix for suffix in suffixes.get(kind, ()))
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    # Families that show only once something happened (a watch restart, a missing
    # ServiceAccount), as Go's client leaves out a family without samples: the declared ones.
    for family in Metrics().registry.collect():
        names.add(family.name)
        names.update(family.name + suffix for suffix in suffixes.get(family.type, ()))
    yield names


def metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression: identifiers that are not functions or keywords."""
    without_strings = re.sub(r'"[^"]*"', '""', expr)
    without_labels = re.sub(r"\{[^}]*\}", "", without_strings)
    without_ranges = re.sub(r"\[[^\]]*\]", "", without_labels)
    without_groupings = re.sub(
        r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", without_ranges
    )
    words = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", without_groupings))
    return words - PROMQL_KEYWORDS - PROMQL_FUNCTIONS


def rule_group(built: dict[str, Objects]) -> dict[str, Any]:
    rule = one(built[MONITORING], "PrometheusRule")
    return dict(rule["spec"])


def test_service_monitor_scrapes_the_metrics_port(built: dict[str, Objects]) -> None:
    objects = built[MONITORING]
    monitor = one(objects, "ServiceMonitor")
    service = one(objects, "Service")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["namespace"] == service["metadata"]["namespace"]
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    (endpoint,) = monitor["spec"]["endpoints"]
    (port,) = [p for p in service["spec"]["ports"] if p["name"] == endpoint["port"]]
    assert port["targetPort"] == "metrics" and endpoint["path"] == "/metrics"


def test_alert_rules_pass_promtool(built: dict[str, Objects], tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (make tools installs Debian's prometheus package)")
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump(rule_group(built)))
    result = subprocess.run(
        [promtool, "check", "rules", str(rules)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "8 rules found" in result.stdout


def test_alerts_cover_errors_latency_the_cache_and_certificate_expiry(
    built: dict[str, Objects], exposition: set[str]
) -> None:
    (group,) = rule_group(built)["groups"]
    alerts = {rule["alert"]: rule for rule in group["rules"]}
    wanted = {
        "PodIdentityWebhookErrors": "pod_identity_webhook_request_duration_seconds_count",
        "PodIdentityWebhookSlow": "pod_identity_webhook_request_duration_seconds_bucket",
        "PodIdentityWebhookCacheNotSyncing": "pod_identity_webhook_watch_restarts_total",
        "PodIdentityWebhookCertificateExpiresSoon": (
            "pod_identity_webhook_certificate_expiry_timestamp_seconds"
        ),
    }
    for alert, metric in wanted.items():
        assert metric in metric_names(alerts[alert]["expr"]), alert
    for name, rule in alerts.items():
        assert rule["labels"]["severity"] in ("warning", "critical"), name
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], name
        unknown = metric_names(rule["expr"]) - exposition - set(EXTERNAL_METRICS)
        assert not unknown, f"{name} reads metrics the webhook does not export: {unknown}"


def test_grafana_dashboard_charts_metrics_the_webhook_exports(
    built: dict[str, Objects], exposition: set[str]
) -> None:
    config = one(built[MONITORING], "ConfigMap", "pod-identity-webhook-dashboard")
    assert config["metadata"]["labels"]["grafana_dashboard"] == "1"
    (text,) = config["data"].values()
    dashboard = json.loads(text)
    assert dashboard["uid"] == "pod-identity-webhook"
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert variables == {"datasource", "namespace"}
    charted: set[str] = set()
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        for target in panel["targets"]:
            assert 'namespace="$namespace"' in target["expr"], panel["title"]
            names = metric_names(target["expr"].replace("$__rate_interval", "5m"))
            assert names and not names - exposition, (panel["title"], names - exposition)
            charted |= names
    assert {
        "pod_identity_webhook_request_duration_seconds_bucket",
        "pod_identity_webhook_pod_count",
        "pod_identity_webhook_serviceaccount_cache_size",
        "pod_identity_webhook_certificate_expiry_timestamp_seconds",
    } <= charted


def test_every_alert_selects_the_webhooks_namespace(built: dict[str, Objects]) -> None:
    namespace = one(built[MONITORING], "Deployment")["metadata"]["namespace"]
    (group,) = rule_group(built)["groups"]
    for rule in group["rules"]:
        expr = re.sub(
            r'"[^"]*"', lambda m: m.group(0).replace("{", "").replace("}", ""), rule["expr"]
        )
        selectors = re.findall(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?", expr)
        for name, labels in selectors:
            if name in metric_names(rule["expr"]):
                assert f'namespace="{namespace}"' in labels, (rule["alert"], name)


def test_metric_name_reader_sees_through_promql() -> None:
    expr = 'sum by (code) (rate(a_total{code!~"2..", x="y z"}[5m])) / on (job) b - time()'
    assert metric_names(expr) == {"a_total", "b"}


# -- network policy --------------------------------------------------------------------------


def test_network_policy_opens_admission_to_all_and_metrics_to_monitoring(
    built: dict[str, Objects],
) -> None:
    objects = built[NETWORK_POLICY]
    policy = one(objects, "NetworkPolicy")
    pod_labels = one(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= pod_labels.items()
    assert policy["spec"]["policyTypes"] == ["Ingress"]  # the API server must stay reachable
    ports = {p["name"]: p["containerPort"] for p in container(objects)["ports"]}
    by_port = {}
    for rule in policy["spec"]["ingress"]:
        (port,) = rule["ports"]
        assert port["port"] in ports
        by_port[port["port"]] = rule.get("from")
    assert by_port["https"] is None  # kube-apiserver has no address a policy could name
    assert by_port["metrics"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    ]


# -- region (clusters outside AWS, docs/self-hosted.md section 6) -----------------------------

REGION = "with-component/region"


def test_region_component_gives_pods_the_region_and_regional_sts(
    built: dict[str, Objects],
) -> None:
    settings = serve_settings(built[REGION])
    assert settings.aws_default_region == "eu-west-1"  # the operator's patch, through $(VAR)
    assert settings.sts_regional_endpoint is True
    for build in ("manifests/overlays/cert-manager", "manifests/base"):
        assert serve_settings(built[build]).aws_default_region == ""
        assert serve_settings(built[build]).sts_regional_endpoint is False


def test_region_component_alone_names_a_key_that_must_be_set(workspace: Path) -> None:
    # without the operator's region the key is missing: new webhook pods do not start
    # (CreateContainerConfigError) rather than hand every pod a wrong region
    overlay = workspace / "region-unset"
    overlay.mkdir(exist_ok=True)
    (overlay / "kustomization.yaml").write_text(
        "resources: [../manifests/overlays/cert-manager]\n"
        "components: [../manifests/components/region]\n"
    )
    objects = kustomize(overlay)
    (var,) = [e for e in container(objects)["env"] if e["name"] == "PODS_AWS_REGION"]
    ref = var["valueFrom"]["configMapKeyRef"]
    assert ref.get("optional") is not True
    assert ref["key"] not in (one(objects, "ConfigMap", ref["name"]).get("data") or {})


def test_self_hosted_guides_region_overlay_renders(workspace: Path) -> None:
    guide = (ROOT / "docs/self-hosted.md").read_text()
    section = guide.split("## 6.", 1)[1].split("\n## ", 1)[0]
    (block,) = re.findall(r"<!-- check: yaml -->\n```yaml\n(.*?)```", section, re.DOTALL)
    overlay = workspace / "guide-region"
    overlay.mkdir(exist_ok=True)
    (overlay / "kustomization.yaml").write_text(
        block.replace("../pod-identity-webhook/manifests", "../manifests")
    )
    settings = serve_settings(kustomize(overlay))
    assert (settings.aws_default_region, settings.sts_regional_endpoint) == ("eu-west-1", True)
