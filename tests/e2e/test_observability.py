"""The runbook's log files, greps and metrics on a real `aragora serve` stack.

One debate (two demo agents and an ``openai`` agent whose provider is down, so its
circuit breaker opens), then the runbook's grep commands run against ARAGORA_LOG_DIR and
each service's metrics endpoint is scraped.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from aragora.runtime.natsserver import free_port
from tests.e2e.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


def sh(command: str) -> list[str]:
    """Run a runbook command in a shell; its output lines (grep finding nothing: [])."""
    done = subprocess.run(command, shell=True, capture_output=True, text=True, check=False)
    assert done.returncode in (0, 1), (command, done.stderr)
    return done.stdout.splitlines()


@pytest.fixture(scope="module")
def observed(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Stack, Path, dict[str, int]]]:
    home = tmp_path_factory.mktemp("observed")
    logs = home / "logs"
    ports = {name: free_port() for name in ("orchestrator", "agent-runner", "ratelimit")}
    env = {
        "ARAGORA_LOG_DIR": str(logs),
        "ARAGORA_SLOW_REQUEST_MS": "0",  # every request logs its duration_ms
        "ARAGORA_ORCHESTRATOR_METRICS_PORT": str(ports["orchestrator"]),
        "ARAGORA_AGENT_RUNNER_METRICS_PORT": str(ports["agent-runner"]),
        "ARAGORA_RATELIMIT_METRICS_PORT": str(ports["ratelimit"]),
        "OPENAI_BASE_URL": f"http://127.0.0.1:{free_port()}/v1",  # nothing listens there
        "ARAGORA_BREAKER_DEFAULT_FAILURES": "1",  # a stand-in URL: the default policy
    }
    stack = Stack(home, env=env).start()
    yield stack, logs, ports
    assert stack.stop() == 0, stack.log()


def run_debate(stack: Stack, correlation_id: str) -> str:
    response = stack.http.post(
        f"{stack.url}/api/debates",
        json={"topic": "Should logs be greppable?", "agents": ["demo-1", "demo-2", "openai"]}
        | {"rounds": 1},
        headers={"X-Correlation-ID": correlation_id},
        timeout=10,
    )
    assert response.status_code == 202, response.text
    debate_id: str = response.json()["id"]
    deadline = time.monotonic() + 90
    while stack.debate(debate_id)["status"] in ("queued", "running"):
        assert time.monotonic() < deadline, stack.log()
        time.sleep(0.2)
    return debate_id


def test_runbook_greps_work_on_the_log_files(observed: tuple[Stack, Path, dict[str, int]]) -> None:
    stack, logs, _ = observed
    correlation_id = f"corr-{uuid.uuid4().hex[:12]}"
    debate_id = run_debate(stack, correlation_id)
    time.sleep(0.5)  # the last lines of each process reach the files
    names = {p.name for p in logs.iterdir()}
    assert {"api.log", "debate.log", "agent.log"} <= names, names

    # grep "debate_id=abc123" /var/log/aragora/*.log | grep -i error
    lines = sh(f'grep "debate_id={debate_id}" {logs}/*.log')
    files = {line.split(":", 1)[0].rsplit("/", 1)[-1] for line in lines}
    assert {"debate.log", "agent.log"} <= files, lines
    sh(f'grep "debate_id={debate_id}" {logs}/*.log | grep -i error')
    # grep "corr-xyz789" /var/log/aragora/*.log: the request, the debate and its turns
    lines = sh(f'grep "{correlation_id}" {logs}/*.log')
    files = {line.split(":", 1)[0].rsplit("/", 1)[-1] for line in lines}
    assert {"api.log", "debate.log", "agent.log"} <= files, lines
    # grep "circuit_breaker" /var/log/aragora/agent.log
    lines = sh(f'grep "circuit_breaker" {logs}/agent.log')
    assert any("openai" in line and "open" in line for line in lines), lines
    # slow requests: every request is "slow" here (ARAGORA_SLOW_REQUEST_MS=0)
    lines = sh(f'grep "duration_ms=" {logs}/api.log | grep "{correlation_id}"')
    assert any("route=/api/debates" in line and "status=202" in line for line in lines), lines
    sh(f'grep -E "duration_ms=[5-9][0-9]{{3}}|duration_ms=[0-9]{{5}}" {logs}/api.log')
    # grep ERROR /var/log/aragora/api.log (nothing went wrong in the API)
    assert sh(f"grep ERROR {logs}/api.log") == []


def scrape(url: str, headers: dict[str, str] | None = None) -> str:
    response = httpx.get(url, timeout=5, headers=headers)
    assert response.status_code == 200, response.text
    return response.text


def test_every_service_exposes_its_metrics(observed: tuple[Stack, Path, dict[str, int]]) -> None:
    stack, _, ports = observed
    run_debate(stack, "corr-metrics")
    time.sleep(5.5)  # one lag sample after the debate
    gateway = scrape(f"{stack.url}/metrics", stack.headers)
    assert 'aragora_http_requests_total{method="POST",route="/api/debates",status="202"}' in gateway
    assert "aragora_http_request_duration_seconds_bucket" in gateway
    assert 'aragora_bus_consumer_pending{consumer="gateway-projection"}' in gateway
    orchestrator = scrape(f"http://127.0.0.1:{ports['orchestrator']}/metrics")
    assert "aragora_event_store_append_seconds_count" in orchestrator
    assert 'aragora_bus_consumer_pending{consumer="orchestrator-commands"} 0.0' in orchestrator
    assert 'aragora_bus_redeliveries_total{consumer="orchestrator-agent-events"}' in orchestrator
    assert "aragora_outbox_relayed_total" in orchestrator
    runner = scrape(f"http://127.0.0.1:{ports['agent-runner']}/metrics")
    assert 'aragora_bus_messages_total{consumer="agent-runner",outcome="acked"}' in runner
    assert 'aragora_bus_consumer_pending{consumer="agent-runner"} 0.0' in runner
    ratelimit = scrape(f"http://127.0.0.1:{ports['ratelimit']}/metrics")
    # (loopback is whitelisted, so this test's requests are never checked: the families
    # are declared, their series appear with the first check)
    assert "# TYPE aragora_ratelimit_checks_total counter" in ratelimit
    assert "# TYPE aragora_ratelimit_check_seconds histogram" in ratelimit
