"""deploy/k8s: the runbook's files, valid against the Kubernetes schemas, true to the code."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.deploy.conftest import DEPLOY, load_documents, run
from tests.deploy.manifests import (
    by_kind,
    check_deployment,
    check_env_names,
    check_nats_config,
    validate_schema,
)

K8S = DEPLOY / "k8s"
RUNBOOK_FILES = [
    "namespace.yaml",
    "configmap.yaml",
    "secret.yaml",
    "deployment.yaml",
    "service.yaml",
    "ingress.yaml",
    "hpa.yaml",
    "pdb.yaml",
]
MANIFESTS = sorted(p.name for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


@pytest.fixture(scope="module")
def resources() -> dict[str, dict[str, dict[str, Any]]]:
    docs = [doc for name in MANIFESTS for doc in load_documents((K8S / name).read_text())]
    return by_kind(docs)


def test_the_runbook_files_exist_and_kustomize_lists_all_but_the_secret() -> None:
    assert set(RUNBOOK_FILES) <= set(MANIFESTS)
    kustomization = load_documents((K8S / "kustomization.yaml").read_text())[0]
    assert set(kustomization["resources"]) == set(MANIFESTS) - {"secret.yaml"}


def test_kubectl_kustomize_builds_every_resource_into_the_namespace(kubectl: Path) -> None:
    built = load_documents(run([kubectl, "kustomize", K8S]).stdout)
    expected = {
        (doc["kind"], doc["metadata"]["name"])
        for name in MANIFESTS
        if name != "secret.yaml"
        for doc in load_documents((K8S / name).read_text())
    }
    assert {(doc["kind"], doc["metadata"]["name"]) for doc in built} == expected
    for doc in built:
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == "aragora"


@pytest.mark.parametrize("name", MANIFESTS)
def test_manifest_is_valid_against_the_kubernetes_schemas(name: str) -> None:
    docs = load_documents((K8S / name).read_text())
    assert docs
    for doc in docs:
        assert doc["metadata"].get("namespace") in (None, "aragora")
        validate_schema(doc)


def test_deployments_run_real_modules_with_probes_on_real_routes(
    resources: dict[str, dict[str, dict[str, Any]]],
) -> None:
    deployments = resources["Deployment"]
    modules = {
        d["spec"]["template"]["spec"]["containers"][0]["command"][2]
        for name, d in deployments.items()
        if name != "aragora-redis"
    }
    assert modules == {
        "aragora.gateway",
        "aragora.orchestrator",
        "aragora.agent_runner",
        "aragora.ratelimit",
        "aragora.audit",
    }
    for name, deployment in deployments.items():
        if name != "aragora-redis":
            check_deployment(deployment, resources["ConfigMap"])


def test_runbook_names_and_values(resources: dict[str, dict[str, dict[str, Any]]]) -> None:
    gateway = resources["Deployment"]["aragora"]
    assert gateway["spec"]["replicas"] == 3
    container = gateway["spec"]["template"]["spec"]["containers"][0]
    assert container["name"] == "aragora"
    assert container["image"] == "ghcr.io/aragora/aragora:latest"
    assert container["resources"] == {
        "requests": {"memory": "512Mi", "cpu": "500m"},
        "limits": {"memory": "2Gi", "cpu": "2"},
    }
    assert {e["configMapRef"]["name"] for e in container["envFrom"] if "configMapRef" in e} == {
        "aragora-config"
    }
    assert {e["secretRef"]["name"] for e in container["envFrom"] if "secretRef" in e} == {
        "aragora-secrets"
    }
    service = resources["Service"]["aragora"]
    assert {p["port"] for p in service["spec"]["ports"]} == {8080, 8766}
    hpa = resources["HorizontalPodAutoscaler"]["aragora-hpa"]["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (2, 10)
    targets = {m["resource"]["name"]: m["resource"]["target"] for m in hpa["metrics"]}
    assert targets["cpu"]["averageUtilization"] == 70
    assert targets["memory"]["averageUtilization"] == 80
    assert resources["PodDisruptionBudget"]["aragora-pdb"]["spec"]["minAvailable"] == 1
    assert set(resources["Namespace"]) == {"aragora"}
    # The runbook's `kubectl create secret generic aragora-secrets` keys.
    secret = resources["Secret"]["aragora-secrets"]["stringData"]
    assert {"ANTHROPIC_API_KEY", "OPENAI_API_KEY", "ARAGORA_JWT_SECRET"} <= set(secret)


def test_env_vars_are_real_settings(resources: dict[str, dict[str, dict[str, Any]]]) -> None:
    config = resources["ConfigMap"]["aragora-config"]["data"]
    check_env_names(set(config) | set(resources["Secret"]["aragora-secrets"]["stringData"]))
    assert config["ARAGORA_API_HOST"] == "0.0.0.0"  # the default binds loopback only
    assert config["ARAGORA_ENABLE_REDIS_RATE_LIMIT"] == "1"
    assert config["ARAGORA_ENV"] == "production"
    nats_urls = config["ARAGORA_NATS_URL"].split(",")
    assert len(nats_urls) == 3
    redis_service = resources["Service"]["aragora-redis"]["metadata"]["name"]
    assert config["ARAGORA_REDIS_URL"] == f"redis://{redis_service}:6379/0"


def test_nats_is_a_three_server_jetstream_cluster(
    resources: dict[str, dict[str, dict[str, Any]]], tmp_path: Path
) -> None:
    nats = resources["StatefulSet"]["aragora-nats"]
    assert nats["spec"]["replicas"] == 3
    # the streams and KV buckets the services create are replicated on all three
    assert resources["ConfigMap"]["aragora-config"]["data"]["ARAGORA_STREAM_REPLICAS"] == "3"
    assert nats["spec"]["serviceName"] in resources["Service"]
    check_nats_config(resources["ConfigMap"]["aragora-nats-config"]["data"]["nats.conf"], tmp_path)
    assert resources["PodDisruptionBudget"]["aragora-nats-pdb"]["spec"]["maxUnavailable"] == 1
