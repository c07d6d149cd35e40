"""The monitoring kustomization: dashboards for the Grafana sidecar, a PodMonitor that scrapes
every service, and the gateway HPA's calls metric served by prometheus-adapter.

ConfigMaps are validated against the Kubernetes schemas like the base. PodMonitor and
ServiceMonitor are Prometheus Operator CRDs, which kubernetes-validate has no schema for:
they are checked here against the base they must match (pod labels, port names).
"""

from __future__ import annotations

import json
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.deploy.manifests import K8S_DIR, SERVICES, render_k8s
from voicebus.gateway.metrics import CALLS_ACTIVE

pytestmark = pytest.mark.unit

KUBERNETES_VERSION = "1.31"
MONITORING = K8S_DIR / "monitoring"
GRAFANA_DASHBOARDS = K8S_DIR.parent / "grafana" / "dashboards"
OPERATOR_API = "monitoring.coreos.com/v1"


@pytest.fixture(scope="module")
def monitoring() -> list[dict[str, Any]]:
    return render_k8s(MONITORING)


@pytest.fixture(scope="module")
def base() -> list[dict[str, Any]]:
    return render_k8s()


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        assert expression["operator"] == "In", expression  # the only operator used here
        if labels.get(expression["key"]) not in expression["values"]:
            return False
    return True


def test_core_objects_validate_and_only_operator_crds_are_left(
    monitoring: list[dict[str, Any]],
) -> None:
    crds = [o for o in monitoring if o["apiVersion"] == OPERATOR_API]
    for obj in monitoring:
        if obj not in crds:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    assert [o["kind"] for o in crds] == ["PodMonitor"]


def test_dashboard_configmaps_carry_the_checked_in_dashboards(
    monitoring: list[dict[str, Any]],
) -> None:
    maps = [o for o in monitoring if o["kind"] == "ConfigMap"]
    carried = {}
    for cm in maps:
        assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert cm["metadata"]["namespace"] == "voicebus"
        carried.update(cm["data"])
    on_disk = {p.name: p.read_text() for p in GRAFANA_DASHBOARDS.glob("*.json")}
    assert carried == on_disk  # byte for byte
    assert all(json.loads(text)["uid"] for text in carried.values())


def _monitor_targets(
    monitor: dict[str, Any], base: list[dict[str, Any]], kind: str
) -> dict[str, set[str]]:
    """Name → port names of the objects of ``kind`` in the base a monitor selects."""
    found: dict[str, set[str]] = {}
    for obj in base:
        if obj["kind"] != kind:
            continue
        if kind == "Deployment":
            template = obj["spec"]["template"]
            labels = template["metadata"]["labels"]
            ports = {p["name"] for c in template["spec"]["containers"] for p in c["ports"]}
        else:
            labels = obj["metadata"]["labels"]
            ports = {p["name"] for p in obj["spec"]["ports"]}
        if _selects(monitor["spec"]["selector"], labels):
            found[obj["metadata"]["name"]] = ports
    return found


def test_the_pod_monitor_scrapes_every_service_and_nothing_else(
    monitoring: list[dict[str, Any]], base: list[dict[str, Any]]
) -> None:
    (monitor,) = [o for o in monitoring if o["kind"] == "PodMonitor"]
    targets = _monitor_targets(monitor, base, "Deployment")
    assert set(targets) == set(SERVICES)  # the llm server has no /metrics
    for endpoint in monitor["spec"]["podMetricsEndpoints"]:
        assert endpoint["path"] == "/metrics"
        assert all(endpoint["port"] in ports for ports in targets.values())
    assert monitor["spec"]["jobLabel"] == "app.kubernetes.io/name"


def test_the_service_monitor_example_matches_the_services(base: list[dict[str, Any]]) -> None:
    monitor = yaml.safe_load((MONITORING / "servicemonitor.example.yaml").read_text())
    assert (monitor["apiVersion"], monitor["kind"]) == (OPERATOR_API, "ServiceMonitor")
    targets = _monitor_targets(monitor, base, "Service")
    assert set(targets) == set(SERVICES)
    for endpoint in monitor["spec"]["endpoints"]:
        assert all(endpoint["port"] in ports for ports in targets.values())


def test_the_gateway_scales_on_the_calls_metric_the_adapter_serves(
    base: list[dict[str, Any]],
) -> None:
    (hpa,) = [
        o for o in base
        if o["kind"] == "HorizontalPodAutoscaler" and o["metadata"]["name"] == "gateway"
    ]  # fmt: skip
    metrics = {m["type"]: m for m in hpa["spec"]["metrics"]}
    assert metrics["Resource"]["resource"]["name"] == "cpu"  # the fallback
    wanted = metrics["Pods"]["pods"]["metric"]["name"]
    assert wanted == CALLS_ACTIVE.describe()[0].name  # what the gateway exports
    adapter = yaml.safe_load((MONITORING / "prometheus-adapter-values.yaml").read_text())
    served = {rule["name"]["as"]: rule for rule in adapter["rules"]["custom"]}
    assert wanted in served
    assert wanted in served[wanted]["seriesQuery"]
    assert set(served[wanted]["resources"]["overrides"]) == {"namespace", "pod"}
    assert hpa["spec"]["behavior"]["scaleDown"]["policies"] == [
        {"type": "Pods", "value": 1, "periodSeconds": 300}
    ]
