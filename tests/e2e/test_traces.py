"""Traces from a real `aragora serve` stack reach an OTLP/HTTP collector as one trace.

A minimal collector (an HTTP server on loopback decoding OTLP protobuf) receives the spans
that the gateway, orchestrator and agent-runner processes export, configured only by the
standard ``OTEL_EXPORTER_OTLP_ENDPOINT``; the debate's spans from all three processes share
the HTTP request's trace id.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from tests.e2e.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


@dataclass(frozen=True)
class Received:
    service: str
    name: str
    trace_id: str


class Collector(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.spans: list[Received] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: Collector

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        request = ExportTraceServiceRequest.FromString(body)
        found = []
        for resource_spans in request.resource_spans:
            attrs = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            for scope in resource_spans.scope_spans:
                for span in scope.spans:
                    found.append(Received(attrs["service.name"], span.name, span.trace_id.hex()))
        with self.server.lock:
            self.server.spans.extend(found)
        reply = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[Collector]:
    server = Collector()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_a_debate_is_one_trace_across_the_services(collector: Collector, tmp_path: Path) -> None:
    stack = Stack(
        tmp_path,
        env={
            "OTEL_EXPORTER_OTLP_ENDPOINT": collector.url,
            "OTEL_BSP_SCHEDULE_DELAY": "200",  # export batches quickly (SDK's own variable)
        },
    ).start()
    try:
        debate_id = stack.post_debate(topic="Should one trace cover a debate?", rounds=1)
        deadline = time.monotonic() + 60
        while stack.debate(debate_id)["status"] in ("queued", "running"):
            assert time.monotonic() < deadline, stack.log()
            time.sleep(0.2)
    finally:
        assert stack.stop() == 0, stack.log()  # shutdown flushes every exporter
    with collector.lock:
        spans = list(collector.spans)
    [request] = [s for s in spans if s.name == "POST /api/debates"]
    assert request.service == "aragora-gateway"
    trace = [s for s in spans if s.trace_id == request.trace_id]
    by_service = {s.service for s in trace}
    assert by_service == {"aragora-gateway", "aragora-orchestrator", "aragora-agent-runner"}
    names = {s.name for s in trace}
    assert {
        "orchestrator-commands process",
        "event_store append",
        "agent-runner process",
        "orchestrator-agent-events process",
        "gateway-projection process",
    } <= names, names
