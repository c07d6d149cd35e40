"""The rendered kustomize base is valid Kubernetes and wires what a call needs."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest

from tests.deploy.manifests import SERVICES, render_k8s

pytestmark = pytest.mark.unit

KUBERNETES_VERSION = "1.31"


@pytest.fixture(scope="module")
def objects() -> list[dict[str, Any]]:
    return render_k8s()


def _by_kind(objects: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def test_every_object_validates_against_the_kubernetes_schema(
    objects: list[dict[str, Any]],
) -> None:
    for obj in objects:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_an_invalid_object_is_caught() -> None:
    bad = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"}, "spec": {}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, KUBERNETES_VERSION, strict=True)


def test_jetstream_runs_three_replicas(objects: list[dict[str, Any]]) -> None:
    assert _by_kind(objects, "ConfigMap")["voicebus-config"]["data"]["VB_JETSTREAM_REPLICAS"] == "3"


def test_every_service_has_resources_a_budget_and_the_right_ingress(
    objects: list[dict[str, Any]],
) -> None:
    deployments = _by_kind(objects, "Deployment")
    budgets = _by_kind(objects, "PodDisruptionBudget")
    for name in SERVICES:
        [container] = deployments[name]["spec"]["template"]["spec"]["containers"]
        assert container["resources"]["requests"]["cpu"], name
        assert container["resources"]["limits"]["memory"], name
        assert budgets[name]["spec"]["selector"]["matchLabels"] == {"app.kubernetes.io/name": name}
    assert {
        h["spec"]["scaleTargetRef"]["name"]
        for h in _by_kind(objects, "HorizontalPodAutoscaler").values()
    } == {
        "gateway",
        "media",
        "orchestrator",
    }
    policies = _by_kind(objects, "NetworkPolicy")
    assert policies["default-deny"]["spec"] == {
        "podSelector": {},
        "policyTypes": ["Ingress", "Egress"],
    }
    # Ingress from anywhere (no `from`) only to the gateway and the edge.
    open_to_all = {
        name
        for name, policy in policies.items()
        for rule in policy["spec"].get("ingress", [])
        if "from" not in rule
    }
    assert open_to_all == {"gateway-ingress", "edge-ingress"}


def test_recorder_writes_to_a_volume_not_the_read_only_root(
    objects: list[dict[str, Any]],
) -> None:
    pod = _by_kind(objects, "Deployment")["recorder"]["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    directory = next(e["value"] for e in container["env"] if e["name"] == "VB_RECORDER_DIR")
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes[mounts[directory]]["persistentVolumeClaim"]["claimName"] in _by_kind(
        objects, "PersistentVolumeClaim"
    )


def test_the_grace_period_covers_the_call_drain(objects: list[dict[str, Any]]) -> None:
    deployments = _by_kind(objects, "Deployment")
    for name in ("gateway", "media"):
        pod = deployments[name]["spec"]["template"]["spec"]
        [container] = pod["containers"]
        env = {e["name"]: e.get("value") for e in container["env"]}
        drain = float(env[f"VB_{name.upper()}_DRAIN_TIMEOUT_S"])
        shutdown = float(env.get(f"VB_{name.upper()}_SHUTDOWN_TIMEOUT_S") or 15)
        pre_stop = float(container["lifecycle"]["preStop"]["exec"]["command"][-1])
        # preStop, the HTTP drain, the call drain, then closing what is left (one more
        # shutdown timeout) and the NATS drain.
        assert pod["terminationGracePeriodSeconds"] > pre_stop + 2 * shutdown + drain, name


def test_a_deployment_with_a_database_migrates_its_schema_first(
    objects: list[dict[str, Any]],
) -> None:
    migrating = []
    for name, deployment in _by_kind(objects, "Deployment").items():
        pod = deployment["spec"]["template"]["spec"]
        [container] = pod["containers"]
        if "initContainers" not in pod:
            continue
        [init] = pod["initContainers"]
        assert init["image"] == container["image"], name
        assert init["command"] == ["voicebus-migrate", "--service", name]
        assert init["env"] == [e for e in container["env"] if e["name"] == "VB_DATABASE_URL"]
        migrating.append(name)
    # The services that own tables (the others have no migrations to run).
    assert sorted(migrating) == ["audit", "campaigns", "edge", "orchestrator"]
