"""WebSocket streams: ``/ws/debates/{id}?since=<seq>`` and the firehose ``/ws``.

A debate stream replays the stored events after ``since``, then goes live, and closes
with 1000 after the terminal event. Heartbeats (``{"type": "stream.heartbeat"}``) keep
idle connections alive through proxies. A client that falls too far behind is closed
with 1013 and resumes with ``since`` = the last ``seq`` it saw.

While a turn runs, a debate stream also carries ``agent.token_delta`` frames (coalesced
pieces of the answer being written; no ``seq``, live only, never replayed).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from litestar import WebSocket, websocket
from litestar.datastructures import State
from litestar.exceptions import WebSocketDisconnect
from litestar.params import FromPath, FromQuery

from aragora.gateway import metrics
from aragora.gateway.debates import deps_of
from aragora.gateway.live import ShuttingDown, SlowConsumer
from aragora.gateway.projection import is_terminal_type

log = logging.getLogger("aragora.gateway.websocket")
HEARTBEAT_SECONDS = 15.0
HEARTBEAT = json.dumps({"type": "stream.heartbeat"})
REPLAY_PAGE = 1000


def _port(socket: WebSocket[Any, Any, Any]) -> int:
    server = socket.scope.get("server")
    return int(server[1]) if server and server[1] is not None else 0


@websocket("/ws/debates/{debate_id:str}")
async def debate_stream(
    socket: WebSocket[Any, Any, Any],
    debate_id: FromPath[str],
    state: State,
    since: FromQuery[int] = 0,
) -> None:
    deps = deps_of(state)
    await socket.accept()
    metrics.websocket_connections.inc()
    stats, port = deps.hub.stats, _port(socket)
    stats.opened_on(port, debate_id)
    sub = deps.hub.subscribe(debate_id)

    async def send(text: str) -> None:
        await socket.send_text(text)
        stats.messages_sent += 1

    try:
        if await deps.readmodel.get(debate_id) is None:
            await socket.close(code=4404, reason="unknown debate")
            return
        last = max(since, 0)
        while True:  # replay what is stored
            bodies = await deps.readmodel.events(debate_id, last, REPLAY_PAGE)
            for body in bodies:
                await send(body)
                event = json.loads(body)
                last = event["seq"]
                if is_terminal_type(event["type"]):
                    await socket.close(code=1000, reason="debate ended")
                    return
            if len(bodies) < REPLAY_PAGE:
                break
        while True:  # then live, skipping what the replay already sent
            live = await sub.get(HEARTBEAT_SECONDS)
            if live is None:
                await send(HEARTBEAT)
                continue
            if live.ephemeral:
                await send(live.body)
                continue
            if live.seq <= last:
                continue
            await send(live.body)
            last = live.seq
            if live.terminal:
                await socket.close(code=1000, reason="debate ended")
                return
    except SlowConsumer:
        metrics.ws_connection_errors.inc()
        stats.errors += 1
        stats.slow_consumers += 1
        await socket.close(code=1013, reason="client too slow; reconnect with since=<last seq>")
    except ShuttingDown:
        await socket.close(code=1001, reason="server restarting; reconnect with since=<last seq>")
    except WebSocketDisconnect:
        pass
    except Exception:
        metrics.ws_connection_errors.inc()
        stats.errors += 1
        log.exception("websocket stream failed", extra={"debate_id": debate_id})
        raise
    finally:
        sub.close()
        stats.closed_on(port, debate_id)
        metrics.websocket_connections.dec()


@websocket(["/ws", "/"])
async def firehose(socket: WebSocket[Any, Any, Any], state: State) -> None:
    """Every debate's events as they are projected (live only; no replay)."""
    deps = deps_of(state)
    await socket.accept()
    metrics.websocket_connections.inc()
    stats, port = deps.hub.stats, _port(socket)
    stats.opened_on(port, None)
    sub = deps.hub.subscribe(None)
    try:
        while True:
            live = await sub.get(HEARTBEAT_SECONDS)
            await socket.send_text(HEARTBEAT if live is None else live.body)
            stats.messages_sent += 1
    except SlowConsumer:
        metrics.ws_connection_errors.inc()
        stats.errors += 1
        stats.slow_consumers += 1
        await socket.close(code=1013, reason="client too slow")
    except ShuttingDown:
        await socket.close(code=1001, reason="server restarting")
    except WebSocketDisconnect:
        pass
    finally:
        sub.close()
        stats.closed_on(port, None)
        metrics.websocket_connections.dec()
