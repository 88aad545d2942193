"""The Kubernetes manifests load (schemas of a pinned Kubernetes version) and keep their promises.

Schemas: the ``kubernetes-validate`` package (the JSON schemas of each
Kubernetes release, offline), strict, so a misspelt field fails too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from typogram.settings import ENV_PREFIX, Settings
from typogram.topics import PARTITIONS
from workers.groups import GROUPS

K8S = Path(__file__).parents[2] / "configs" / "k8s"
KUBERNETES = "1.30.0"  # the oldest release the manifests promise to load on
# Worker instances per group at peak, from the scaling strategy ("Asynchronous
# Processing" of each feature): the HPAs' maximum.
STRATEGY_WORKERS = {
    "chat": 10,
    "races": 10,
    "tournaments": 10,
    "results": 10,
    "leaderboards": 5,
    "analytics": 20,
    "challenges": 5,
    "achievements": 10,
    # Not in the strategy: lesson completion reads test-results (10 partitions).
    "courses": 10,
    # Not in the strategy: the review queue reads test-results, race-events and
    # challenge-attempts (10 partitions each).
    "reviews": 10,
    "payments": 10,
    "email": 20,
    # Not in the strategy: receipts and reminders read payment-events (10 partitions).
    "email-notices": 4,
}


def documents() -> Iterator[tuple[str, dict[str, Any]]]:
    for path in sorted(K8S.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if document:
                yield path.name, document


def of_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for _, d in documents() if d["kind"] == kind}


def env_of(name: str) -> dict[str, str]:
    data: dict[str, str] = of_kind("ConfigMap")[name]["data"]
    return data


@pytest.mark.parametrize(
    "document",
    [d for _, d in documents() if d["kind"] != "Kustomization"],
    ids=lambda d: f"{d['kind']}/{d['metadata']['name']}",
)
def test_every_manifest_matches_the_kubernetes_schema(document: dict[str, Any]) -> None:
    kubernetes_validate.validate(document, KUBERNETES, strict=True)


def test_the_schema_check_can_fail() -> None:
    broken = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"}}
    broken["spec"] = {"replicas": "two", "selector": {}, "template": {}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES, strict=True)


def test_kustomization_lists_every_file() -> None:
    listed = set(yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"])
    assert listed == {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}


def test_every_role_has_probes_on_the_real_endpoints_and_measured_requests() -> None:
    for name, deployment in of_kind("Deployment").items():
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        ports = {p["name"] for p in container["ports"]}
        assert container["readinessProbe"]["httpGet"]["path"] == "/ready", name
        assert container["livenessProbe"]["httpGet"]["path"] == "/health", name
        for probe in ("readinessProbe", "livenessProbe"):
            assert container[probe]["httpGet"]["port"] in ports, name
        requests = container["resources"]["requests"]
        assert requests["cpu"] and requests["memory"], name
        assert container["resources"]["limits"]["memory"], name


def test_the_gateway_has_time_to_drain() -> None:
    pod = of_kind("Deployment")["typogram-gateway"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    pre_stop = int(container["lifecycle"]["preStop"]["exec"]["command"][-1])
    drain = float(env_of("typogram-config")["TYPOGRAM_GATEWAY_DRAIN_TIMEOUT_S"])
    assert pod["terminationGracePeriodSeconds"] >= pre_stop + drain + 10


def test_a_worker_deployment_autoscaler_and_budget_per_group_within_its_partitions() -> None:
    deployments, scalers = of_kind("Deployment"), of_kind("HorizontalPodAutoscaler")
    budgets = of_kind("PodDisruptionBudget")
    for group in GROUPS.values():
        name = f"typogram-worker-{group.name}"
        (container,) = deployments[name]["spec"]["template"]["spec"]["containers"]
        assert container["args"] == ["typogram", "worker", group.name]
        scaler = scalers[name]["spec"]
        most = min(PARTITIONS[topic] for topic in group.topics)
        assert scaler["maxReplicas"] == STRATEGY_WORKERS[group.name] <= most, name
        assert scaler["minReplicas"] >= 2  # a budget of one unavailable keeps one running
        assert [m["pods"]["metric"]["name"] for m in scaler["metrics"]] == ["typogram_consumer_lag"]
        assert name in budgets
    workers = {n for n in deployments if n.startswith("typogram-worker-")}
    assert workers == {f"typogram-worker-{g}" for g in GROUPS}


def test_custom_metrics_of_the_autoscalers_are_served_by_the_adapter() -> None:
    rules = yaml.safe_load(env_of("prometheus-adapter-typogram")["config.yaml"])["rules"]
    served = {rule["name"]["as"] for rule in rules}
    for name, scaler in of_kind("HorizontalPodAutoscaler").items():
        for metric in scaler["spec"]["metrics"]:
            if metric["type"] == "Pods":
                assert metric["pods"]["metric"]["name"] in served, name
    rest = of_kind("HorizontalPodAutoscaler")["typogram-rest"]["spec"]["metrics"]
    assert rest[0]["resource"]["name"] == "cpu"


def test_tls_at_the_ingress_wss_to_the_gateway_and_no_stickiness() -> None:
    (ingress,) = of_kind("Ingress").values()
    assert ingress["spec"]["tls"]
    paths = {
        p["path"]: p["backend"]["service"]["name"]
        for rule in ingress["spec"]["rules"]
        for p in rule["http"]["paths"]
    }
    assert paths["/ws"] == "typogram-gateway" and paths["/"] == "typogram-rest"
    annotations = " ".join(ingress["metadata"].get("annotations", {}))
    assert "affinity" not in annotations and "upstream-hash-by" not in annotations
    for service in of_kind("Service").values():
        assert service["spec"].get("sessionAffinity", "None") == "None"


def test_the_config_map_sets_only_real_settings() -> None:
    known = {f"{ENV_PREFIX}{f.name.upper()}" for f in dataclasses.fields(Settings)}
    known |= {f"{ENV_PREFIX}CONFIG", f"{ENV_PREFIX}DATABASE_REPLICAS"}
    assert set(env_of("typogram-config")) - known == set()
