"""deploy/helm/aragora: lints, renders with the real helm, and the output is valid."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.conftest import DEPLOY, load_documents, run
from tests.deploy.manifests import (
    OPERATOR_KINDS,
    by_kind,
    check_deployment,
    check_env_names,
    check_nats_config,
    validate_schema,
)

CHART = DEPLOY / "helm" / "aragora"
PRODUCTION = CHART / "values-production.yaml"
TRIAL_DB = ["--set", "secrets.databaseUrl=postgresql://aragora:pw@db:5432/aragora"]

# The runbook's values-production.yaml, key for key.
RUNBOOK_VALUES: dict[str, Any] = {
    "replicaCount": 3,
    "image": {
        "repository": "ghcr.io/aragora/aragora",
        "tag": "v1.0.0",
        "pullPolicy": "IfNotPresent",
    },
    "autoscaling": {
        "enabled": True,
        "minReplicas": 2,
        "maxReplicas": 10,
        "targetCPUUtilizationPercentage": 70,
        "targetMemoryUtilizationPercentage": 80,
    },
    "podDisruptionBudget": {"enabled": True, "minAvailable": 1},
    "serviceMonitor": {"enabled": True, "interval": "15s", "labels": {"release": "prometheus"}},
    "resources": {
        "requests": {"cpu": "500m", "memory": "512Mi"},
        "limits": {"cpu": "2000m", "memory": "2Gi"},
    },
    "existingSecrets": {"apiKeys": "aragora-api-keys", "database": "aragora-db-credentials"},
}


def render(helm: Path, *args: str) -> dict[str, dict[str, dict[str, Any]]]:
    out = run([helm, "template", "aragora", CHART, "--namespace", "aragora", *args]).stdout
    return by_kind(load_documents(out))


@pytest.fixture(scope="module")
def production(helm: Path) -> dict[str, dict[str, dict[str, Any]]]:
    return render(helm, "-f", str(PRODUCTION))


@pytest.fixture(scope="module")
def trial(helm: Path) -> dict[str, dict[str, dict[str, Any]]]:
    return render(helm, *TRIAL_DB)


def test_helm_lint_passes(helm: Path) -> None:
    run([helm, "lint", "--strict", CHART, *TRIAL_DB])
    run([helm, "lint", "--strict", CHART, "-f", PRODUCTION])


def test_production_values_are_the_runbooks() -> None:
    values = yaml.safe_load(PRODUCTION.read_text())
    for key, expected in RUNBOOK_VALUES.items():
        assert values[key] == expected, key


@pytest.mark.parametrize("values", ["production", "trial"])
def test_rendered_resources_are_valid_kubernetes(
    values: str, request: pytest.FixtureRequest
) -> None:
    rendered = request.getfixturevalue(values)
    for kind, docs in rendered.items():
        for doc in docs.values():
            if kind not in OPERATOR_KINDS:
                validate_schema(doc)
            if kind == "Deployment" and not doc["metadata"]["name"].endswith("-redis"):
                check_deployment(doc, rendered["ConfigMap"])
    configs = rendered["ConfigMap"]["aragora-config"]["data"]
    check_env_names(set(configs))


def test_production_render_applies_the_runbook_values(
    production: dict[str, dict[str, dict[str, Any]]], tmp_path: Path
) -> None:
    gateway = production["Deployment"]["aragora"]
    assert "replicas" not in gateway["spec"]  # the HPA owns it
    container = gateway["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "ghcr.io/aragora/aragora:v1.0.0"
    assert container["resources"] == RUNBOOK_VALUES["resources"]
    secrets = {e["secretRef"]["name"] for e in container["envFrom"] if "secretRef" in e}
    assert secrets == {"aragora-api-keys", "aragora-db-credentials"}
    assert "Secret" not in production  # existing secrets only
    hpa = production["HorizontalPodAutoscaler"]["aragora-hpa"]["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (2, 10)
    assert production["PodDisruptionBudget"]["aragora-pdb"]["spec"]["minAvailable"] == 1
    monitor = production["ServiceMonitor"]["aragora"]
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    (endpoint,) = monitor["spec"]["endpoints"]
    assert (endpoint["port"], endpoint["path"], endpoint["interval"]) == ("http", "/metrics", "15s")
    # /metrics wants a token unless ARAGORA_METRICS_PUBLIC: the service token is sent.
    assert endpoint["authorization"]["credentials"] == {
        "name": "aragora-api-keys",
        "key": "ARAGORA_API_TOKEN",
    }
    pods = production["PodMonitor"]["aragora"]["spec"]["podMetricsEndpoints"]
    assert [p["port"] for p in pods] == ["metrics"]
    config = production["ConfigMap"]["aragora-config"]["data"]
    assert config["ARAGORA_STREAM_REPLICAS"] == "3"  # = the NATS servers
    assert config["ARAGORA_ENV"] == "production"
    nats = production["StatefulSet"]["aragora-nats"]
    assert nats["spec"]["replicas"] == 3
    check_nats_config(production["ConfigMap"]["aragora-nats-config"]["data"]["nats.conf"], tmp_path)


def test_prometheus_rule_and_dashboard_are_the_deploy_copies(
    production: dict[str, dict[str, dict[str, Any]]],
) -> None:
    alerts = DEPLOY / "prometheus" / "alerts.yml"
    assert (CHART / "files" / "alerts.yml").read_text() == alerts.read_text()
    dashboard = DEPLOY / "grafana" / "dashboards" / "aragora.json"
    assert (CHART / "files" / "aragora-dashboard.json").read_text() == dashboard.read_text()
    rule = production["PrometheusRule"]["aragora"]
    assert rule["spec"]["groups"] == yaml.safe_load(alerts.read_text())["groups"]
    shipped = production["ConfigMap"]["aragora-dashboard"]["data"]["aragora.json"]
    assert shipped.strip() == dashboard.read_text().strip()


def test_a_release_without_a_database_is_refused(helm: Path) -> None:
    result = subprocess.run(
        [str(helm), "template", "aragora", str(CHART)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "existingSecrets.database" in result.stderr
