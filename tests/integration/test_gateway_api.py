"""The gateway's HTTP and WebSocket API against a real nats-server and real databases.

The app runs under Litestar's ``AsyncTestClient``, which drives its lifespan: the gateway
connects to the fixture's nats-server, creates the streams, opens the read model and
projects ``aragora.evt.debate.>`` from JetStream. The test publishes debate events the way
the orchestrator's outbox relay does (codec JSON, ``Nats-Msg-Id`` = event id) and reads
them back through the API.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from typing import Any

from httpx import Response

from aragora.contracts import codec
from aragora.contracts.messages import DebateCompleted, StartDebate
from aragora.contracts.subjects import (
    COMMANDS_STREAM,
    DEBATE_EVENTS,
    EVENTS_STREAM,
    START_DEBATE,
)
from aragora.runtime.natsserver import EmbeddedNats
from aragora.runtime.settings import Settings
from tests.integration.gateway_harness import (
    DEMO_AGENTS,
    Gateway,
    error_text,
    eventually,
    metric,
    open_gateway,
)
from tests.integration.test_readmodel import debate_events


async def test_post_accepts_the_debate_and_sends_a_start_command(gateway: Gateway) -> None:
    response = await gateway.client.post(
        "/api/debates",
        json={
            "topic": "  Tabs or spaces?  ",
            "agents": ["demo-2", "demo-4"],
            "rounds": 2,
            "consensus": "unanimous",
        },
        headers={"X-Correlation-ID": "corr-test-post"},
    )
    assert response.status_code == 202, response.text
    body = response.json()
    debate_id = body["id"]
    assert body == {"id": debate_id, "status": "running"}
    assert str(uuid.UUID(debate_id)) == debate_id
    assert response.headers["location"] == f"/api/debates/{debate_id}"
    assert response.headers["x-correlation-id"] == "corr-test-post"

    # The command really is in the work-queue stream, deduplicated by its event id.
    assert await gateway.stream_messages(COMMANDS_STREAM.name) == 1
    sub = await gateway.nats.js.pull_subscribe(
        START_DEBATE, durable="test-probe", stream=COMMANDS_STREAM.name
    )
    [msg] = await sub.fetch(1, timeout=2)
    assert msg.subject == "aragora.cmd.debate.start" == START_DEBATE
    command = codec.decode_command(msg.data)
    assert isinstance(command, StartDebate)
    assert msg.headers is not None and msg.headers["Nats-Msg-Id"] == command.event_id
    assert command.debate_id == debate_id
    assert command.topic == "Tabs or spaces?"
    assert command.agents == ["demo-2", "demo-4"]
    assert (command.rounds, command.consensus) == (2, "unanimous")
    assert command.threshold == gateway.deps.settings.consensus_threshold
    assert command.correlation_id == "corr-test-post"

    # The provisional view can be read at once, before any orchestrator has run.
    view = await gateway.view(debate_id)
    assert view is not None
    assert view["id"] == debate_id
    assert (view["status"], view["topic"], view["agents"]) == (
        "running",
        "Tabs or spaces?",
        ["demo-2", "demo-4"],
    )
    assert (view["rounds"], view["last_seq"], view["turns"]) == (2, 0, [])
    listed = (await gateway.client.get("/api/debates?status=running")).json()
    assert [d["id"] for d in listed["debates"]] == [debate_id] and listed["count"] == 1


async def test_post_fills_defaults_and_makes_a_correlation_id(gateway: Gateway) -> None:
    response = await gateway.client.post("/api/debates", json={"topic": "Defaults?"})
    assert response.status_code == 202, response.text
    assert response.headers["x-correlation-id"].startswith("corr-")
    raw = await gateway.nats.js.get_last_msg(COMMANDS_STREAM.name, START_DEBATE)
    command = codec.decode_command(raw.data or b"")
    assert isinstance(command, StartDebate)
    assert command.agents == gateway.deps.registry.default_agents == DEMO_AGENTS[:3]
    assert command.rounds == gateway.deps.settings.default_rounds
    assert command.consensus == "majority"
    assert command.correlation_id == response.headers["x-correlation-id"]


async def test_idempotency_key_returns_the_same_debate_and_one_command(
    gateway: Gateway,
) -> None:
    key = f"key-{uuid.uuid4()}"
    request = {"topic": "Retry me", "rounds": 1}
    first = await gateway.client.post(
        "/api/debates", json=request, headers={"Idempotency-Key": key}
    )
    again = await gateway.client.post(
        "/api/debates", json=request, headers={"Idempotency-Key": key}
    )
    assert first.status_code == again.status_code == 202
    assert first.json()["id"] == again.json()["id"]
    assert await gateway.stream_messages(COMMANDS_STREAM.name) == 1  # Nats-Msg-Id dedup

    other = await gateway.client.post(
        "/api/debates", json=request, headers={"Idempotency-Key": f"{key}-2"}
    )
    plain = await gateway.client.post("/api/debates", json=request)
    ids = {first.json()["id"], other.json()["id"], plain.json()["id"]}
    assert len(ids) == 3
    assert await gateway.stream_messages(COMMANDS_STREAM.name) == 3
    listed = (await gateway.client.get("/api/debates")).json()
    assert listed["count"] == 3


BAD_BODIES: list[tuple[str, Any, list[str]]] = [
    ("rounds 0", {"topic": "x", "rounds": 0}, ["rounds", ">= 1"]),
    ("rounds 13", {"topic": "x", "rounds": 13}, ["rounds", "<= 12"]),
    ("rounds text", {"topic": "x", "rounds": "three"}, ["rounds", "int"]),
    ("rounds fraction", {"topic": "x", "rounds": 2.5}, ["rounds", "int"]),
    ("blank topic", {"topic": " \t\n "}, ["topic", "blank"]),
    ("empty topic", {"topic": ""}, ["topic", "length"]),
    ("long topic", {"topic": "x" * 4001}, ["topic", "4000"]),
    ("topic number", {"topic": 5}, ["topic", "str"]),
    ("missing topic", {"rounds": 2}, ["topic"]),
    ("unknown field", {"topic": "x", "colour": "red"}, ["colour", "unknown"]),
    (
        "unknown agent",
        {"topic": "x", "agents": ["demo-1", "gpt-9"]},
        ["agents", "gpt-9", "known: demo-1, demo-2, demo-3, demo-4, demo-5"],
    ),
    ("duplicate agents", {"topic": "x", "agents": ["demo-1", "demo-1"]}, ["agents", "once"]),
    ("one agent", {"topic": "x", "agents": ["demo-1"]}, ["agents", "got 1"]),
    ("no agents", {"topic": "x", "agents": []}, ["agents", "got 0"]),
    ("nine agents", {"topic": "x", "agents": [f"a{i}" for i in range(9)]}, ["agents", "got 9"]),
    ("agents string", {"topic": "x", "agents": "demo-1,demo-2"}, ["agents", "array"]),
    ("agent number", {"topic": "x", "agents": ["demo-1", 2]}, ["agents", "str"]),
    ("consensus mode", {"topic": "x", "consensus": "most"}, ["consensus", "most"]),
    ("array body", ["topic"], ["object"]),
]


async def test_bad_requests_are_400_naming_the_field(gateway: Gateway) -> None:
    for case, body, fragments in BAD_BODIES:
        response = await gateway.client.post("/api/debates", json=body)
        assert response.status_code == 400, (case, response.text)
        text = error_text(response)
        for fragment in fragments:
            assert fragment in text, (case, fragment, text)

    for case, raw in [("invalid JSON", b'{"topic": '), ("not JSON", b"topic=x")]:
        response = await gateway.client.post(
            "/api/debates", content=raw, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 400, (case, response.text)
        assert response.json()["status_code"] == 400 and response.json()["detail"], case

    # Nothing was accepted: no command on the bus, no debate in the read model.
    assert await gateway.stream_messages(COMMANDS_STREAM.name) == 0
    assert (await gateway.client.get("/api/debates")).json() == {"debates": [], "count": 0}


# --- reads -----------------------------------------------------------------------------------


async def test_unknown_debates_are_404_and_bad_queries_400(gateway: Gateway) -> None:
    missing = str(uuid.uuid4())
    for path in (f"/api/debates/{missing}", f"/api/debates/{missing}/events"):
        response = await gateway.client.get(path)
        assert response.status_code == 404, path
        assert response.headers["content-type"].startswith("application/json")
        assert {k: response.json()[k] for k in ("status_code", "code", "detail", "error")} == {
            "status_code": 404,
            "code": "not_found",
            "detail": f"no debate {missing}",
            "error": f"no debate {missing}",
        }

    for query, field in [
        ("/api/debates?status=bogus", "status"),
        ("/api/debates?limit=0", "limit"),
        ("/api/debates?limit=501", "limit"),
        ("/api/debates?limit=ten", "limit"),
        (f"/api/debates/{missing}/events?after=-1", "after"),
        (f"/api/debates/{missing}/events?limit=0", "limit"),
        (f"/api/debates/{missing}/events?limit=10001", "limit"),
    ]:
        response = await gateway.client.get(query)
        assert response.status_code == 400, (query, response.text)
        assert f"{field}: " in error_text(response), query

    for _ in range(3):
        posted = await gateway.client.post("/api/debates", json={"topic": "listed"})
        assert posted.status_code == 202
    for query, count in [
        ("/api/debates?limit=1", 1),
        ("/api/debates?limit=500", 3),
        ("/api/debates?status=running", 3),
        ("/api/debates?status=consensus", 0),
    ]:
        response = await gateway.client.get(query)
        assert response.status_code == 200, query
        assert response.json()["count"] == len(response.json()["debates"]) == count, query


# --- projection ------------------------------------------------------------------------------


async def test_published_events_are_projected_once_and_in_order(
    nats_server: EmbeddedNats, db_settings: Settings
) -> None:
    settings = dataclasses.replace(db_settings, nats_url=nats_server.url)
    async with open_gateway(settings) as gw:
        posted = await gw.client.post(
            "/api/debates",
            json={"topic": "Tabs or spaces?", "agents": ["demo-1", "demo-2", "demo-3"]},
        )
        debate_id = posted.json()["id"]
        events = debate_events(debate_id)
        n = len(events)
        outcomes_before = metric("aragora_debates_total", {"status": "consensus"})

        await gw.publish(events[:5])
        view = await gw.wait_for_seq(debate_id, 5)
        assert view["last_seq"] == 5 and view["status"] == "running"
        assert view["current_phase"] == "propose"
        assert [t["status"] for t in view["turns"]] == ["completed", "completed", "pending"]
        assert await gw.event_seqs(debate_id, "?after=2") == [3, 4, 5]

        # Redeliveries: the same msg ids (dropped by JetStream) and new ids (reach the
        # projector, which must recognise them by seq), then the rest of the debate.
        await gw.publish(events[:5])
        await gw.publish(events[:5], fresh_msg_ids=True)
        await gw.publish(events[5:])
        view = await gw.wait_for_seq(debate_id, n)
        assert await gw.stream_messages(EVENTS_STREAM.name, DEBATE_EVENTS) == n + 5

        assert view["status"] == "consensus" and view["completed_at"] is not None
        assert view["consensus"]["winner"] == "demo-2"
        assert len(view["votes"]) == 3  # not 6: no event was applied twice
        assert len(view["turns"]) == 13  # 3 agents x (propose, critique, revise, vote) + synthesis
        assert all(t["status"] == "completed" for t in view["turns"])
        assert await gw.event_seqs(debate_id) == list(range(1, n + 1))
        assert await gw.event_seqs(debate_id, "?after=3&limit=4") == [4, 5, 6, 7]
        assert await gw.event_seqs(debate_id, f"?after={n}") == []
        body = (await gw.client.get(f"/api/debates/{debate_id}/events")).json()
        assert [codec.decode_debate_event(json.dumps(e).encode()) for e in body["events"]] == (
            events
        )
        assert isinstance(events[-1], DebateCompleted)
        assert body["events"][-1]["type"] == "debate.completed"
        listed = (await gw.client.get("/api/debates?status=consensus")).json()
        assert [d["id"] for d in listed["debates"]] == [debate_id]
        assert metric("aragora_debates_total", {"status": "consensus"}) == outcomes_before + 1


async def test_events_delivered_out_of_order_are_retried_until_contiguous(
    gateway: Gateway,
) -> None:
    events = debate_events()
    debate_id = events[0].debate_id
    # seq 4 reaches the projector before 3: refused as a gap, redelivered, then applied.
    await gateway.publish([*events[:2], events[3], events[2], *events[4:8]])
    view = await gateway.wait_for_seq(debate_id, 8)
    assert view["last_seq"] == 8
    assert await gateway.event_seqs(debate_id) == list(range(1, 9))


# --- WebSocket -------------------------------------------------------------------------------


async def test_health_is_healthy_then_degraded_when_nats_stops(
    gateway: Gateway, nats_server: EmbeddedNats
) -> None:
    await gateway.client.post("/api/debates", json={"topic": "count me"})
    response = await gateway.client.get("/api/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "healthy"
    assert isinstance(body["version"], str) and body["version"]
    assert isinstance(body["uptime_seconds"], int) and body["uptime_seconds"] >= 0
    checks = body["checks"]
    assert checks["database"]["status"] == "ok"
    assert checks["database"]["backend"] == "sqlite"
    assert isinstance(checks["database"]["latency_ms"], int | float)
    assert checks["nats"]["status"] == "ok"
    assert checks["websocket"]["status"] == "ok"
    assert isinstance(checks["websocket"]["connections"], int)
    assert isinstance(checks["memory_mb"], int | float) and checks["memory_mb"] > 0
    assert checks["active_debates"] == 1

    nats_server.stop()

    async def health() -> Response:
        return await gateway.client.get("/api/health")

    response = await eventually(health, lambda r: r.json()["status"] != "healthy")
    assert response.status_code == 200  # degraded still serves reads
    body = response.json()
    assert body["status"] == "degraded"
    assert body["checks"]["nats"]["status"] == "error"
    assert body["checks"]["database"]["status"] == "ok"
    assert body["checks"]["active_debates"] == 1

    # Without the bus a debate cannot start; reads still work.
    refused = await gateway.client.post("/api/debates", json={"topic": "too late"})
    assert refused.status_code == 503
    assert "bus" in refused.json()["detail"]
    assert (await gateway.client.get("/api/debates")).json()["count"] == 1
    assert (await gateway.client.get("/readyz")).status_code == 503


async def test_agents_asyncapi_and_metrics(gateway: Gateway) -> None:
    agents = (await gateway.client.get("/api/agents")).json()
    assert agents["mode"] == "demo"
    assert "demo" in agents["note"]
    assert agents["default_agents"] == ["demo-1", "demo-2", "demo-3"]
    assert [a["name"] for a in agents["agents"]][: len(DEMO_AGENTS)] == DEMO_AGENTS
    assert "demo-flaky" in [a["name"] for a in agents["agents"]]
    assert {a["provider"] for a in agents["agents"]} == {"demo"}

    response = await gateway.client.get("/api/asyncapi.json")
    assert response.status_code == 200
    doc = response.json()
    assert doc["asyncapi"].startswith("3.")
    addresses = {c["address"] for c in doc["channels"].values()}
    assert "aragora.evt.debate.{debate_id}.created" in addresses
    assert "aragora.evt.debate.{debate_id}.completed" in addresses
    assert doc["operations"]

    response = await gateway.client.get("/api/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert "aragora_debates" in text
    assert "# TYPE aragora_debates_total counter" in text
    assert "# TYPE aragora_websocket_connections gauge" in text
    assert "aragora_websocket_connections " in text
