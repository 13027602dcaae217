"""Fan-out under the gateway's real server (uvicorn, as ``aragora.gateway.server`` runs it):
live frames are written straight to each connection (``ws.Wire``, ``Session.deliver_now``)
and still reach every follower once, in order, with no gap at the replay seam; the stream
closes with 1000 after the terminal event; permessage-deflate is not negotiated."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from aragora.gateway.server import Servers
from aragora.runtime.natsserver import EmbeddedNats, free_port
from tests.conftest import TEST_TOKEN, make_settings
from tests.integration.gateway_harness import eventually, open_gateway
from tests.integration.test_readmodel import debate_events

FOLLOWERS = 5


async def _until_closed(ws: ClientConnection) -> tuple[list[dict[str, Any]], int | None]:
    frames: list[dict[str, Any]] = []
    try:
        while True:
            frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
            if frame.get("type") != "stream.heartbeat":
                frames.append(frame)
    except ConnectionClosed as closed:
        return frames, closed.rcvd.code if closed.rcvd else None


async def _until_type(ws: ClientConnection, kind: str) -> list[dict[str, Any]]:
    frames: list[dict[str, Any]] = []
    while not frames or frames[-1].get("type") != kind:
        frames.append(json.loads(await asyncio.wait_for(ws.recv(), 10)))
    return frames


async def test_followers_under_uvicorn_get_every_event_once_in_order(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    port = free_port()
    settings = make_settings(tmp_path, nats_url=nats_server.url, api_port=port, ws_port=port)
    async with open_gateway(settings) as gw:
        events = debate_events(rounds=2)
        debate_id = events[0].debate_id
        await gw.publish(events[:3])
        await gw.wait_for_seq(debate_id, 3)
        servers = Servers(gw.client.app, settings)
        servers.start(port)
        try:
            await eventually(lambda: asyncio.sleep(0, servers.servers[port].started), bool)
            headers = {"Authorization": f"Bearer {TEST_TOKEN}"}
            base = f"ws://127.0.0.1:{port}"
            followers = [
                await websockets.connect(
                    f"{base}/ws/debates/{debate_id}?since=0", additional_headers=headers
                )
                for _ in range(FOLLOWERS)
            ]
            firehose = await websockets.connect(f"{base}/ws", additional_headers=headers)
            assert all(
                "Sec-WebSocket-Extensions" not in ws.response.headers  # type: ignore[union-attr]
                for ws in [*followers, firehose]
            )
            # Every connection writes frames directly (the hub calls deliver_now).
            subs = gw.deps.hub._connections
            await eventually(
                lambda: asyncio.sleep(0, [s.deliver_now is not None for s in subs]),
                lambda direct: len(direct) == FOLLOWERS + 1 and all(direct),
            )
            await gw.publish(events[3:])
            results = await asyncio.gather(*(_until_closed(ws) for ws in followers))
            live = await _until_type(firehose, "debate.completed")
            await firehose.close()
        finally:
            await servers.stop_all()
    n = len(events)
    for frames, code in results:
        assert [f["seq"] for f in frames] == list(range(1, n + 1))
        assert frames[-1]["type"] == "debate.completed"
        assert code == 1000
    assert [f["seq"] for f in live] == list(range(4, n + 1))
    assert gw.deps.hub.connections == 0
