"""Traces: one trace per debate, from the HTTP request through NATS to the provider call.

The gateway (Litestar test client), the orchestrator and an agent-runner run in this
process against a real nats-server, with an in-memory span exporter; the ``openai`` agent
calls the fake provider over real HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from aragora.agent_runner.app import run as run_agent_runner
from aragora.orchestrator.app import run as run_orchestrator
from aragora.runtime import bus, tracing
from aragora.runtime.natsserver import EmbeddedNats
from aragora.runtime.settings import Settings
from tests.conftest import make_settings
from tests.integration.gateway_harness import eventually, open_gateway
from tests.plugins.fake_provider import FakeProviderProcess

pytestmark = pytest.mark.integration


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    memory = InMemorySpanExporter()
    yield memory
    tracing.shutdown_tracing()


@contextlib.asynccontextmanager
async def services(settings: Settings) -> AsyncIterator[None]:
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(run_orchestrator(settings, stop)),
        asyncio.create_task(run_agent_runner(settings, stop)),
    ]
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 30)


def by_trace(spans: tuple[ReadableSpan, ...], trace_id: int) -> list[ReadableSpan]:
    return [s for s in spans if s.context is not None and s.context.trace_id == trace_id]


async def test_one_trace_spans_gateway_orchestrator_agent_runner_and_provider(
    nats_server: EmbeddedNats,
    tmp_path: Path,
    fake_provider: FakeProviderProcess,
    exporter: InMemorySpanExporter,
) -> None:
    settings = make_settings(
        tmp_path, nats_url=nats_server.url, openai_base_url=fake_provider.base_url
    )
    assert tracing.configure_tracing("test", settings, exporter=exporter)
    async with services(settings), open_gateway(settings) as gw:
        response = await gw.client.post(
            "/api/debates",
            json={"topic": "Should traces cross services?", "agents": ["openai", "demo-1"]}
            | {"rounds": 1},
            headers={"X-Correlation-ID": "corr-trace-test"},
        )
        assert response.status_code == 202, response.text
        debate_id = response.json()["id"]
        view = await eventually(
            lambda: gw.view(debate_id),
            lambda v: v is not None and v["status"] not in ("queued", "running"),
            timeout=30,
        )
        assert view is not None
        assert view["status"] in ("consensus", "no_consensus", "completed"), view

    spans = exporter.get_finished_spans()
    [request] = [s for s in spans if s.kind == SpanKind.SERVER and s.name == "POST /api/debates"]
    assert request.context is not None
    trace = by_trace(spans, request.context.trace_id)
    names = {s.name for s in trace}
    # gateway -> orchestrator (StartDebate) -> store -> relay -> agent-runner (RunTurn) ->
    # provider HTTP -> orchestrator (results) -> gateway projection (debate events)
    assert {
        "orchestrator-commands process",
        "event_store append",
        "agent-runner process",
        "POST 127.0.0.1",
        "orchestrator-agent-events process",
        "gateway-projection process",
    } <= names, names
    services_seen = {s.resource.attributes["service.name"] for s in trace}
    assert services_seen == {"aragora-test"}  # one process here; the names show the hops
    turns = [s for s in trace if s.name == "agent-runner process"]
    assert {t.attributes["agent"] for t in turns if t.attributes} >= {"openai", "demo-1"}
    assert all(t.attributes and t.attributes["debate_id"] == debate_id for t in turns)
    provider_calls = [s for s in trace if s.name == "POST 127.0.0.1"]
    assert all(s.kind == SpanKind.CLIENT for s in provider_calls)
    assert all(
        s.attributes and s.attributes["http.response.status_code"] == 200 for s in provider_calls
    )
    # The StartDebate consumer span is the HTTP span's descendant, not a new root.
    [start] = [s for s in trace if s.name == "orchestrator-commands process"]
    assert start.parent is not None
    # Every debate span is in this one trace: no second trace for the same debate.
    other_turns = [
        s
        for s in spans
        if s.name == "agent-runner process"
        and s.context is not None
        and s.context.trace_id != request.context.trace_id
    ]
    assert other_turns == []


async def test_tracing_off_publishes_no_trace_headers(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    assert not tracing.enabled()
    assert not tracing.configure_tracing("test", make_settings(tmp_path))
    conn = await bus.connect([nats_server.url], name="test")
    await bus.ensure_streams(conn.js)
    sub = await conn.js.subscribe("aragora.evt.debate.>", ordered_consumer=True)
    await bus.publish(conn.js, "aragora.evt.debate.d-1.created", b"{}", msg_id="m-1")
    msg = await sub.next_msg(timeout=2)
    assert msg.headers == {"Nats-Msg-Id": "m-1"}
    assert tracing.headers_for("any-debate") == {}
    await conn.close()


def test_exporter_is_chosen_by_the_otel_env_vars(tmp_path: Path) -> None:
    def kind(**env: str) -> str:
        return tracing.exporter_kind(make_settings(tmp_path, **env))

    assert kind() == "none"
    assert kind(otel_exporter_otlp_endpoint="http://collector:4318") == "otlp"
    assert kind(otel_traces_exporter="console") == "console"
    assert kind(otel_traces_exporter="none", otel_exporter_otlp_endpoint="http://c:4318") == "none"
    assert kind(otel_traces_exporter="otlp") == "otlp"
