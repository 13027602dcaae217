"""The gateway's WebSocket streams: replay after ``since``, live events and token deltas,
no gap or duplicate at the seam, close codes."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

from litestar.exceptions import WebSocketDisconnect
from litestar.testing import WebSocketTestSession

from aragora.contracts import codec
from aragora.contracts.messages import TokenDelta
from aragora.contracts.subjects import (
    DEBATE_EVENTS,
    EVENTS_STREAM,
    token_delta_subject,
)
from tests.integration.gateway_harness import (
    Gateway,
    eventually,
    metric,
)
from tests.integration.test_readmodel import debate_events


def receive_until_closed(ws: WebSocketTestSession, timeout: float = 5.0) -> tuple[list[Any], int]:
    """Every event frame until the server closes; returns (events, close code)."""
    received: list[Any] = []
    while True:
        try:
            frame = json.loads(ws.receive_text(timeout=timeout))
        except WebSocketDisconnect as closed:
            return received, closed.code
        if frame.get("type") != "stream.heartbeat":
            received.append(frame)


async def test_ws_replays_after_since_then_streams_live_without_gap_or_duplicate(
    gateway: Gateway,
) -> None:
    events = debate_events()
    debate_id = events[0].debate_id
    n = len(events)
    await gateway.publish(events[:8])
    await gateway.wait_for_seq(debate_id, 8)
    connections_before = metric("aragora_websocket_connections")

    with await gateway.client.websocket_connect(f"/ws/debates/{debate_id}?since=3") as ws:
        # Published while the stream replays 4..8: the rest arrives live.
        await gateway.publish(events[8:])
        received, code = await asyncio.to_thread(receive_until_closed, ws)

    assert [e["seq"] for e in received] == list(range(4, n + 1))
    assert all(e["debate_id"] == debate_id for e in received)
    assert received[-1]["type"] == "debate.completed"
    assert [codec.decode_debate_event(json.dumps(e).encode()) for e in received] == events[3:]
    assert code == 1000
    await eventually(
        lambda: asyncio.sleep(0, metric("aragora_websocket_connections")),
        lambda value: value == connections_before,
    )


async def test_ws_forwards_token_deltas_live_but_never_stores_them(gateway: Gateway) -> None:
    events = debate_events()
    debate_id = events[0].debate_id
    other = str(uuid.uuid4())
    await gateway.publish(events[:8])
    await gateway.wait_for_seq(debate_id, 8)

    def delta(debate: str, index: int, text: str, done: bool = False) -> TokenDelta:
        return TokenDelta(
            debate_id=debate, turn_id="t-live", agent="demo-1", round=1, phase="propose",
            index=index, text=text, done=done,
        )  # fmt: skip

    with await gateway.client.websocket_connect(f"/ws/debates/{debate_id}") as ws:
        replayed = [json.loads(ws.receive_text(timeout=5)) for _ in range(8)]
        assert [e["seq"] for e in replayed] == list(range(1, 9))  # subscribed: now live
        sent = [delta(debate_id, 0, "Four days "), delta(debate_id, 1, "is enough.", True)]
        for message in [delta(other, 0, "not this debate's"), *sent]:
            await gateway.nats.nc.publish(
                token_delta_subject(message.debate_id), codec.encode(message)
            )
        await gateway.nats.nc.flush()
        live = [json.loads(ws.receive_text(timeout=5)) for _ in sent]  # before the end
        await gateway.publish(events[8:])
        rest, code = await asyncio.to_thread(receive_until_closed, ws)

    received = [*live, *rest]
    deltas = [f for f in received if f["type"] == "agent.token_delta"]
    assert [codec.decode_token_delta(json.dumps(f).encode()) for f in deltas] == sent
    stored = [f for f in received if f["type"] != "agent.token_delta"]
    assert [e["seq"] for e in stored] == list(range(9, len(events) + 1)) and code == 1000
    body = (await gateway.client.get(f"/api/debates/{debate_id}/events")).json()
    assert len(body["events"]) == len(events)
    assert all(e["type"] != "agent.token_delta" for e in body["events"])
    assert await gateway.stream_messages(EVENTS_STREAM.name, DEBATE_EVENTS) == len(events)


async def test_ws_of_a_finished_debate_replays_and_closes(gateway: Gateway) -> None:
    events = debate_events(votes={})  # ends in debate.failed
    debate_id = events[0].debate_id
    n = len(events)
    await gateway.publish(events)
    await gateway.wait_for_seq(debate_id, n)

    with await gateway.client.websocket_connect(f"/ws/debates/{debate_id}") as ws:
        received, code = receive_until_closed(ws)
    assert [e["seq"] for e in received] == list(range(1, n + 1))
    assert (received[-1]["type"], code) == ("debate.failed", 1000)

    with await gateway.client.websocket_connect(f"/ws/debates/{debate_id}?since={n - 1}") as ws:
        received, code = receive_until_closed(ws)
    assert ([e["seq"] for e in received], code) == ([n], 1000)


async def test_ws_of_an_unknown_debate_closes_with_4404(gateway: Gateway) -> None:
    with await gateway.client.websocket_connect(f"/ws/debates/{uuid.uuid4()}") as ws:
        received, code = receive_until_closed(ws)
    assert (received, code) == ([], 4404)


# --- system ----------------------------------------------------------------------------------
