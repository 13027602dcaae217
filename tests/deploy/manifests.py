"""Checks shared by the raw Kubernetes manifests and the Helm chart's rendered output."""

from __future__ import annotations

import importlib.util
import re
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate

from aragora.gateway import system
from aragora.runtime import health
from aragora.runtime.natsserver import nats_server_binary
from aragora.runtime.settings import Settings, settings_fields

# Oldest Kubernetes the runbook supports (1.26+) and the newest the schemas bundle.
KUBERNETES_VERSIONS = ("1.26.0", kubernetes_validate.latest_version())
# Custom resources of the Prometheus Operator: no schema in kubernetes-validate.
OPERATOR_KINDS = {"ServiceMonitor", "PodMonitor", "PrometheusRule"}
KNOWN_SETTINGS = {env for env, _, _ in settings_fields()}
GATEWAY_ROUTES = {
    path
    for handler in (system.health, system.liveness, system.readiness, system.prometheus_metrics)
    for path in handler.paths
}


def validate_schema(doc: dict[str, Any]) -> None:
    """Strict OpenAPI-schema validation for every supported Kubernetes version."""
    for version in KUBERNETES_VERSIONS:
        kubernetes_validate.validate(doc, version, strict=True)


def check_env_names(names: set[str]) -> None:
    unknown = names - KNOWN_SETTINGS
    assert not unknown, f"not settings of aragora.runtime.settings: {sorted(unknown)}"


def port_setting(module: str) -> str:
    """The port setting of a service without an API (metrics and health), a real setting:
    aragora.agent_runner -> ARAGORA_AGENT_RUNNER_METRICS_PORT."""
    setting = f"ARAGORA_{module.removeprefix('aragora.').upper()}_METRICS_PORT"
    check_env_names({setting})
    return setting


def config_of(container: dict[str, Any], configs: dict[str, dict[str, Any]]) -> dict[str, str]:
    """The settings a container gets from its ConfigMaps (``configs``: by name)."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update(configs[source["configMapRef"]["name"]]["data"])
    return env


def check_deployment(doc: dict[str, Any], configs: dict[str, dict[str, Any]]) -> None:
    """Real module, real ports, probes on real routes (gateway or health server), graceful
    stop."""
    spec = doc["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    command = container["command"]
    assert command[:2] == ["python", "-m"], command
    assert importlib.util.find_spec(command[2]) is not None, f"no module {command[2]}"
    assert spec["terminationGracePeriodSeconds"] >= 30
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert {"/var/lib/aragora", "/tmp"} <= {m["mountPath"] for m in container["volumeMounts"]}
    if command[2] == "aragora.gateway":
        defaults = Settings()
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports == {"http": defaults.api_port, "websocket": defaults.ws_port}
        for probe in ("livenessProbe", "readinessProbe"):
            path = container[probe]["httpGet"]["path"]
            assert path in GATEWAY_ROUTES, f"{probe} {path} is not a gateway route"
        assert container["readinessProbe"]["httpGet"]["path"] == "/api/health"
    else:  # no API: one port, the one its settings name, with the health endpoints
        ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
        assert set(ports) == {"metrics"}, ports
        env = config_of(container, configs)
        setting = port_setting(command[2])
        assert env.get(setting) == str(ports["metrics"]), (setting, ports)
        for probe, paths in (
            ("livenessProbe", health.LIVENESS_PATHS),
            ("readinessProbe", health.READINESS_PATHS),
        ):
            get = container[probe]["httpGet"]
            assert get["port"] == "metrics" and get["path"] in paths, (command[2], probe, get)
            # readiness waits at most CHECK_TIMEOUT + 1 s for its checks
            assert container[probe]["timeoutSeconds"] > health.CHECK_TIMEOUT + 1


def check_nats_config(config: str, tmp_path: Path) -> None:
    """JetStream on, fsync before ack, three routes; nats-server itself parses it."""
    assert re.search(r"jetstream\s*\{[^}]*sync_interval:\s*always", config)
    routes = re.findall(r"nats://\S+:6222", config)
    assert len(routes) == 3, routes
    path = tmp_path / "nats.conf"
    path.write_text(config)
    result = subprocess.run(
        [str(nats_server_binary()), "-c", str(path), "-t"],
        env={"SERVER_NAME": "aragora-nats-0"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def by_kind(docs: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """{kind: {name: document}}."""
    found: dict[str, dict[str, dict[str, Any]]] = {}
    for doc in docs:
        found.setdefault(doc["kind"], {})[doc["metadata"]["name"]] = doc
    return found
