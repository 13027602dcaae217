"""Log files, the runbook's greps on them, slow requests, Sentry scrubbing, metrics ports."""

from __future__ import annotations

import json
import logging
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import pytest
import sentry_sdk
from litestar import Litestar, get
from litestar.params import Parameter
from litestar.testing import TestClient
from sentry_sdk.envelope import Envelope
from sentry_sdk.transport import Transport

from aragora.gateway.http_metrics import HttpObservabilityMiddleware, http_requests
from aragora.runtime import errortracking
from aragora.runtime.logs import configure_logging, correlation_id_var, debate_id_var
from aragora.runtime.metrics import metrics_port
from aragora.runtime.settings import load_settings

SLOW_GREP = r"duration_ms=[5-9][0-9]{3}|duration_ms=[0-9]{5}"  # the runbook's, verbatim


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in root.handlers:
        if handler not in handlers:
            handler.close()
    root.handlers[:] = handlers
    root.setLevel(level)


def grep(*args: str) -> list[str]:
    """Run grep as the runbook does; the matching lines (none: [])."""
    done = subprocess.run(["grep", *args], capture_output=True, text=True, check=False)
    assert done.returncode in (0, 1), done.stderr
    return done.stdout.splitlines()


def test_each_service_writes_the_runbooks_file(tmp_path: Path, restore_logging: None) -> None:
    for service, logger, text in [
        ("gateway", "aragora.gateway.debates", "api line"),
        ("gateway", "aragora.gateway.websocket", "ws line"),
        ("gateway", "aragora.gateway.live", "live line"),
        ("ratelimit", "aragora.ratelimit", "rate_limit exceeded"),
        ("orchestrator", "aragora.debate.orchestrator", "debate_start"),
        ("agent-runner", "aragora.agent", "agent_turn"),
    ]:
        configure_logging(service, "INFO", tmp_path)
        logging.getLogger(logger).info(text, extra={"debate_id": "abc123"})
    files = {p.name: p.read_text() for p in tmp_path.iterdir()}
    assert set(files) == {"api.log", "websocket.log", "debate.log", "agent.log"}
    assert "api line" in files["api.log"] and "rate_limit exceeded" in files["api.log"]
    assert "ws line" in files["websocket.log"] and "live line" in files["websocket.log"]
    assert "ws line" not in files["api.log"]
    assert "debate_start" in files["debate.log"]
    assert "agent_turn" in files["agent.log"]
    for text in files.values():
        for line in text.splitlines():
            record = json.loads(line)
            assert {"timestamp", "level", "logger", "message", "debate_id"} <= set(record)
    assert len(grep("debate_id=abc123", *map(str, tmp_path.glob("*.log")))) == 6


def test_runbook_greps_find_errors_of_a_debate_and_a_correlation_id(
    tmp_path: Path, restore_logging: None
) -> None:
    configure_logging("orchestrator", "INFO", tmp_path)
    debate_id_var.set("abc123")
    correlation_id_var.set("corr-xyz789")
    log = logging.getLogger("aragora.debate.orchestrator")
    log.info("debate_start")
    log.error("turn went wrong")
    debate_id_var.set(None)
    correlation_id_var.set(None)
    log.error("another debate's error", extra={"debate_id": "zzz999"})
    files = [str(p) for p in tmp_path.glob("*.log")]
    # grep "debate_id=abc123" /var/log/aragora/*.log | grep -i error
    lines = [line for line in grep("debate_id=abc123", *files) if "error" in line.lower()]
    assert len(lines) == 1 and "turn went wrong" in lines[0]
    # grep "corr-xyz789" /var/log/aragora/*.log
    assert len(grep("corr-xyz789", *files)) == 2
    # grep ERROR /var/log/aragora/api.log-style: the level is in every line
    assert len(grep("ERROR", *files)) == 2


@pytest.mark.parametrize(("seconds", "logged"), [(6.2, True), (12.0, True), (0.3, False)])
def test_slow_requests_log_duration_ms_that_the_runbook_grep_finds(
    tmp_path: Path, restore_logging: None, seconds: float, logged: bool
) -> None:
    configure_logging("gateway", "INFO", tmp_path)
    ticks = iter([100.0, 100.0 + seconds])

    @get("/api/things/{thing_id:str}", sync_to_thread=False)
    def thing(thing_id: Annotated[str, Parameter()]) -> dict[str, str]:
        return {"id": thing_id}

    settings = load_settings({"ARAGORA_SLOW_REQUEST_MS": "5000"})
    before = http_requests.labels("GET", "/api/things/{thing_id}", "200")._value.get()
    app = Litestar(
        [thing],
        middleware=[HttpObservabilityMiddleware(settings, clock=lambda: next(ticks))],
        logging_config=None,
    )
    with TestClient(app) as client:
        assert client.get("/api/things/t-1").status_code == 200
    after = http_requests.labels("GET", "/api/things/{thing_id}", "200")._value.get()
    assert after == before + 1  # labelled by the route template, not the path
    lines = grep("-E", SLOW_GREP, str(tmp_path / "api.log"))
    assert len(lines) == (1 if logged else 0)
    if logged:
        record = json.loads(lines[0])
        assert record["duration_ms"] == int(seconds * 1000)
        assert record["route"] == "/api/things/{thing_id}"
        assert record["level"] == "WARNING"


class Capture(Transport):
    sent: list[dict[str, Any]] = []

    def capture_envelope(self, envelope: Envelope) -> None:
        event = envelope.get_event()
        if event is not None:
            self.sent.append(dict(event))


def test_sentry_events_carry_the_ids_and_no_secrets() -> None:
    sent = Capture.sent
    settings = load_settings({"SENTRY_DSN": "https://public@sentry.invalid/1"})
    assert not errortracking.configure_sentry("test", load_settings({}))
    try:
        assert errortracking.configure_sentry("orchestrator", settings, transport=Capture)
        debate_id_var.set("abc123")
        correlation_id_var.set("corr-xyz789")
        api_key = "sk-live-0123456789abcdef"  # a local that must not travel
        try:
            raise RuntimeError(f"provider refused key {api_key}")
        except RuntimeError:
            logging.getLogger("aragora.test").exception("turn failed")
        sentry_sdk.flush()
    finally:
        debate_id_var.set(None)
        correlation_id_var.set(None)
        # No DSN: off again; no auto-enabled integrations (they would patch Litestar).
        sentry_sdk.init(auto_enabling_integrations=False, default_integrations=False)
    assert sent, "no event captured"
    event = sent[0]
    assert event["tags"]["debate_id"] == "abc123"
    assert event["tags"]["correlation_id"] == "corr-xyz789"
    assert event["tags"]["service"] == "orchestrator"
    text = json.dumps(event, default=str)
    assert "sk-live-0123456789abcdef" not in text
    frames = event["exception"]["values"][0]["stacktrace"]["frames"]
    assert all("vars" not in frame for frame in frames)


def test_metrics_ports_never_collide_between_runner_replicas() -> None:
    def port(service: str, **env: str) -> int:
        return metrics_port(load_settings(env), service)

    assert port("orchestrator") == 0 and port("agent-runner") == 0  # off by default
    assert port("orchestrator", ARAGORA_ORCHESTRATOR_METRICS_PORT="9101") == 9101
    runner = {"ARAGORA_AGENT_RUNNER_METRICS_PORT": "9102"}
    assert port("agent-runner", **runner) == 9102
    assert port("agent-runner", **runner, ARAGORA_INSTANCE_ID="agent-runner") == 9102
    assert port("agent-runner", **runner, ARAGORA_INSTANCE_ID="agent-runner-1") == 9102
    assert port("agent-runner", **runner, ARAGORA_INSTANCE_ID="agent-runner-3") == 9104
    assert port("agent-runner", **runner, METRICS_ENABLED="false") == 0
    assert port("gateway", **runner) == 0  # the gateway serves /metrics on its API port
