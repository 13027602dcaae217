"""deploy/prometheus and deploy/grafana: promtool checks, the runbook's alerts, real metrics."""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path
from typing import Any

import yaml

from aragora.gateway import metrics
from tests.deploy.conftest import DEPLOY, run

PROMETHEUS = DEPLOY / "prometheus"
GRAFANA = DEPLOY / "grafana"
RUNBOOK_ALERTS = {
    "AragoraDown": "critical",
    "HighErrorRate": "critical",
    "CircuitBreakerOpen": "warning",
    "HighMemoryUsage": "warning",
    "RedisDown": "critical",
}
# The audit service's (docs/security.md): a broken hash chain, security events unrecorded.
AUDIT_ALERTS = {
    "AuditChainBroken": ("critical", "1m", "aragora_audit_chain_ok == 0"),
    "AuditLagging": ("warning", "10m", "aragora_audit_lag_events > 100"),
}
# Exported by Prometheus itself (`up`) and by redis_exporter (`redis_up`).
EXTERNAL_METRICS = {"up", "redis_up"}
_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and",
             "or", "unless", "offset", "inf", "nan"}  # fmt: skip


def metric_names(expr: str) -> set[str]:
    """Series names a PromQL expression reads (no labels, ranges, functions, keywords)."""
    expr = re.sub(r'"[^"]*"', "", expr)
    expr = re.sub(r"\{[^}]*\}|\[[^\]]*\]", "", expr)
    expr = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", expr)
    tokens = re.finditer(r"(?<![\w.])[A-Za-z_:][\w:]*\b(?!\s*\()", expr)
    return {t.group() for t in tokens if t.group().lower() not in _KEYWORDS} - {"le"}


def exported_metrics() -> set[str]:
    """Series names the services' /metrics serve (the one default registry, collectors
    too), whether or not a labelled series has been touched yet."""
    for module in (
        "aragora.gateway.app",
        "aragora.orchestrator.metrics",
        "aragora.audit.metrics",
        "aragora.runtime.metrics",
    ):
        importlib.import_module(module)  # each registers its metrics on import
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}
    names = set()
    for family in metrics.REGISTRY.collect():
        names.add(family.name)
        names.update(family.name + s for s in suffixes.get(family.type, ()))
        names.update(sample.name for sample in family.samples)
    return names


def alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def dashboard_exprs() -> list[str]:
    dashboard = json.loads((GRAFANA / "dashboards" / "aragora.json").read_text())
    return [t["expr"] for p in dashboard["panels"] for t in p["targets"]]


def test_promtool_checks_the_rules_and_the_config(promtool: Path) -> None:
    run([promtool, "check", "rules", PROMETHEUS / "alerts.yml"])
    run([promtool, "check", "config", PROMETHEUS / "prometheus.yml"])


def test_promtool_unit_tests_fire_each_alert_as_intended(promtool: Path) -> None:
    run([promtool, "test", "rules", "alerts.test.yml"], cwd=PROMETHEUS)


def test_the_runbooks_alerts_with_its_severities() -> None:
    severities = {r["alert"]: r["labels"]["severity"] for r in alert_rules()}
    assert {name: severities.get(name) for name in RUNBOOK_ALERTS} == RUNBOOK_ALERTS
    exprs = {r["alert"]: r["expr"] for r in alert_rules()}
    assert "> 0.01" in exprs["HighErrorRate"]  # scaling table: error rate > 1 %
    assert "0.8 * 2 * 1024 * 1024 * 1024" in exprs["HighMemoryUsage"]  # > 80 % of 2 GiB


def test_the_audit_alerts() -> None:
    rules = {r["alert"]: r for r in alert_rules()}
    found = {name: (rules[name]["labels"]["severity"], rules[name]["for"], rules[name]["expr"])
             for name in AUDIT_ALERTS if name in rules}  # fmt: skip
    assert found == AUDIT_ALERTS
    prometheus = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in prometheus["scrape_configs"]}
    compose = yaml.safe_load((DEPLOY.parent / "docker-compose.yml").read_text())
    port = compose["services"]["audit"]["environment"]["ARAGORA_AUDIT_METRICS_PORT"]
    assert jobs["aragora-audit"]["dns_sd_configs"][0]["port"] == int(port)


def test_every_metric_read_exists_or_is_a_listed_pending_one() -> None:
    read = set().union(*(metric_names(e) for e in [r["expr"] for r in alert_rules()]))
    read |= set().union(*(metric_names(e) for e in dashboard_exprs()))
    unknown = read - exported_metrics() - EXTERNAL_METRICS
    assert not unknown, f"metrics no one exports: {sorted(unknown)}"
    # The runbook's metric names that the gateway exports today are used.
    assert {
        "aragora_debates_total",
        "aragora_consensus_reached_total",
        "aragora_websocket_connections",
        "ws_connection_errors_total",
        "process_resident_memory_bytes",
    } <= read


def test_grafana_provisioning_points_at_the_dashboard_and_datasource() -> None:
    sources = yaml.safe_load((GRAFANA / "provisioning/datasources/prometheus.yml").read_text())
    (source,) = sources["datasources"]
    providers = yaml.safe_load((GRAFANA / "provisioning/dashboards/aragora.yml").read_text())
    assert providers["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    dashboard = json.loads((GRAFANA / "dashboards" / "aragora.json").read_text())
    titles = " ".join(p["title"].lower() for p in dashboard["panels"])
    for topic in ("debates", "consensus", "agent response", "circuit breakers", "rate-limit",
                  "websocket", "memory"):  # fmt: skip
        assert topic in titles, topic
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == source["uid"]
        assert all(t["datasource"]["uid"] == source["uid"] for t in panel["targets"])
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))


def test_metric_name_parser() -> None:
    expr = 'sum by (job) (rate(a_total{status=~"5.."}[5m])) / on (job) b > 0.01 * c'
    assert metric_names(expr) == {"a_total", "b", "c"}
