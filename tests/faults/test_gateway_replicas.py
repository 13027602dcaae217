"""Two gateway replicas sharing one read model (PostgreSQL) and one NATS: each projects
every event with its own consumer, so a WebSocket on either sees every event.

It runs in the serial tier: in the parallel integration run it twice saw no live event for
over 10 s. The cause found: the tests' ASGI client runs each WebSocket on a thread and loop
of its own while the projector publishes from the test's loop, and a push could land
between the stream's empty-queue check and its wait (a 15 s stall until the heartbeat).
Pushes from another loop are now handed to the connection's own loop (``live.py``); in a
real server everything runs on one loop.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from aragora.runtime.natsserver import EmbeddedNats
from tests.conftest import PG_URL, make_settings
from tests.integration.gateway_harness import open_gateway
from tests.integration.test_readmodel import debate_events
from tests.integration.test_ws_protocol import frames


async def test_two_replicas_share_the_read_model_and_stream_every_event(
    nats_server: EmbeddedNats, tmp_path: Path, pg_schema: str
) -> None:
    def settings(name: str) -> Any:
        return make_settings(
            tmp_path / name,
            nats_url=nats_server.url,
            database_url=PG_URL,
            database_schema=pg_schema,
            instance_id=name,
        )

    events = debate_events(rounds=2)
    debate_id = events[0].debate_id
    async with open_gateway(settings("gw-1")) as one, open_gateway(settings("gw-2")) as two:
        await one.publish(events[:4])
        await two.wait_for_seq(debate_id, 4)
        with (
            await one.client.websocket_connect(f"/ws/debates/{debate_id}") as ws1,
            await two.client.websocket_connect(f"/ws/debates/{debate_id}?since=2") as ws2,
        ):
            await one.publish(events[4:])
            # Both projectors run on this test's loop: read in threads, not blocking it.
            got1, code1 = await asyncio.to_thread(frames, ws1, 10.0)
            got2, code2 = await asyncio.to_thread(frames, ws2, 10.0)
        assert [e["seq"] for e in got1] == list(range(1, len(events) + 1)) and code1 == 1000
        assert [e["seq"] for e in got2] == list(range(3, len(events) + 1)) and code2 == 1000
        view1, view2 = await one.view(debate_id), await two.view(debate_id)
        assert view1 == view2 and view1 is not None and view1["status"] == "consensus"
