"""The runbook's operator routes with real data: errors, WebSocket stats, caches, memory."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

from aragora.contracts import codec
from aragora.contracts.messages import AgentBreakerChanged, PhaseStarted, TurnFailed
from aragora.runtime.natsserver import EmbeddedNats
from tests.conftest import make_settings
from tests.integration.gateway_harness import Gateway, eventually, open_gateway
from tests.integration.test_gateway_streams import receive_until_closed
from tests.integration.test_readmodel import debate_events


async def test_system_errors_lists_failed_turns_debates_and_open_breakers(
    gateway: Gateway,
) -> None:
    events = debate_events(votes={})  # nobody votes: the debate fails
    await gateway.publish(events)
    await gateway.wait_for_seq(events[0].debate_id, events[-1].seq)
    other = debate_events()
    started = next(e for e in other if isinstance(e, PhaseStarted))
    opening = other[: started.seq]
    turn = started.turns[0]
    failed = TurnFailed(
        event_id=str(uuid.uuid4()),
        occurred_at=datetime.now(UTC),
        correlation_id="corr-turn",
        debate_id=started.debate_id,
        seq=started.seq + 1,
        turn_id=turn.turn_id,
        round=started.round,
        phase=started.phase,
        agent=turn.agent,
        reason="provider_error",
        detail="HTTP 500 server error",
    )
    await gateway.publish([*opening, failed])
    await gateway.wait_for_seq(started.debate_id, failed.seq)
    breaker = AgentBreakerChanged(
        event_id=str(uuid.uuid4()),
        occurred_at=datetime.now(UTC),
        correlation_id="corr-breaker",
        agent="claude",
        state="open",
        previous="closed",
        consecutive_failures=3,
        reason="consecutive failures",
    )
    await gateway.nats.js.publish("aragora.evt.agent.breaker.claude", codec.encode(breaker))

    async def fetch() -> dict[str, object]:
        response = await gateway.client.get("/api/system/errors?limit=50")
        assert response.status_code == 200
        body: dict[str, object] = response.json()
        return body

    body = await eventually(fetch, lambda b: b["count"] == 3)
    entries = body["errors"]
    assert isinstance(entries, list)
    kinds = {e["kind"] for e in entries}
    assert {"turn_failed", "debate_failed", "circuit_breaker_open"} <= kinds
    failed_turn = next(e for e in entries if e["kind"] == "turn_failed")
    assert failed_turn["debate_id"] == started.debate_id and failed_turn["agent"] == turn.agent
    assert "HTTP 500" in failed_turn["detail"] and failed_turn["reason"] == "provider_error"
    times = [e["occurred_at"] for e in entries]
    assert times == sorted(times, reverse=True)  # newest first
    one = (await gateway.client.get("/api/system/errors?limit=1")).json()
    assert one["count"] == 1 and one["limit"] == 1
    only = await gateway.client.get(f"/api/system/errors?debate_id={events[0].debate_id}")
    assert {e["debate_id"] for e in only.json()["errors"]} == {events[0].debate_id}


async def test_ws_stats_counts_connections_per_debate_and_messages(gateway: Gateway) -> None:
    events = debate_events()
    debate_id = events[0].debate_id
    await gateway.publish(events[:3])
    await gateway.wait_for_seq(debate_id, 3)
    settings = gateway.deps.settings
    with await gateway.client.websocket_connect(f"/ws/debates/{debate_id}") as ws:
        for _ in range(3):
            ws.receive_text()  # the replay; the stream now waits for live events
        # (the test client's socket blocks this loop: read the counters the route serves)
        live = gateway.deps.hub.stats.view(settings.api_port, settings.ws_port)
        await gateway.publish(events[3:])
        received, code = await asyncio.to_thread(receive_until_closed, ws)
    assert code == 1000 and len(received) == len(events) - 3
    assert live["connections"] == 1
    assert live["debates"] == [{"debate_id": debate_id, "connections": 1}]
    after = await eventually(
        lambda: gateway.client.get("/api/ws/stats"), lambda r: r.json()["connections"] == 0
    )
    body = after.json()
    assert body["connections_opened_total"] == 1
    assert body["messages_sent_total"] == len(events)
    assert body["debates"] == [] and body["errors_total"] == 0


async def test_cleanup_caches_reports_what_it_freed(gateway: Gateway) -> None:
    response = await gateway.client.post("/api/admin/cleanup-caches")
    assert response.status_code == 200
    body = response.json()
    assert body["freed"]["gc_objects"] >= 0 and "auth_users" in body["freed"]
    assert body["rss_mb_before"] > 0 and body["rss_mb_after"] > 0


async def test_memory_dump_needs_profiling_then_writes_the_runbook_report(
    gateway: Gateway, nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    off = await gateway.client.post("/api/debug/memory-dump")
    assert off.status_code == 409 and "ARAGORA_MEMORY_PROFILING=1" in off.json()["detail"]
    dump = tmp_path / "dump.json"
    settings = make_settings(
        tmp_path / "profiled",
        nats_url=nats_server.url,
        memory_profiling=True,
        memory_dump_path=dump,
    )
    async with open_gateway(settings) as profiled:
        response = await profiled.client.post("/api/debug/memory-dump")
    assert response.status_code == 200, response.text
    report = json.loads(dump.read_text())
    assert report["top_allocations"] and report["top_allocations"][0]["size_kb"] > 0
    assert {"file", "line", "size_kb", "count"} <= set(report["top_allocations"][0])
    assert response.json()["path"] == str(dump)
