"""WebSocket bookkeeping for ``GET /api/ws/stats``: who is connected where, what was sent.

Counted in-process by this gateway replica (each replica reports its own connections;
sum them across replicas, as Prometheus does with ``aragora_websocket_connections``).
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from litestar import get
from litestar.datastructures import State


class WsStats:
    def __init__(self) -> None:
        self.started = time.time()
        self.by_port: Counter[int] = Counter()
        self.by_debate: Counter[str] = Counter()
        self.opened = 0
        self.messages_sent = 0
        self.errors = 0
        self.slow_consumers = 0
        self.refused = 0

    def opened_on(self, port: int, debate_id: str | None) -> None:
        self.opened += 1
        self.by_port[port] += 1
        self.by_debate[debate_id or "*"] += 1

    def closed_on(self, port: int, debate_id: str | None) -> None:
        key = debate_id or "*"
        self.by_port[port] -= 1
        self.by_debate[key] -= 1
        if self.by_port[port] <= 0:
            del self.by_port[port]
        if self.by_debate[key] <= 0:
            del self.by_debate[key]

    def view(self, api_port: int, ws_port: int, top: int = 50) -> dict[str, Any]:
        names = {api_port: "api", ws_port: "websocket"}
        return {
            "connections": sum(self.by_port.values()),
            "servers": [
                {"port": port, "server": names.get(port, "other"), "connections": n}
                for port, n in sorted(self.by_port.items())
            ],
            "debates": [
                {"debate_id": None if key == "*" else key, "connections": n}
                for key, n in self.by_debate.most_common(top)
            ],
            "connections_opened_total": self.opened,
            "messages_sent_total": self.messages_sent,
            "errors_total": self.errors,
            "slow_consumer_closes_total": self.slow_consumers,
            "refused_total": self.refused,
            "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.started)),
        }


@get("/api/ws/stats", tags=["websocket"])
async def ws_stats(state: State) -> dict[str, Any]:
    """Open WebSocket connections per server port and per debate (``debate_id`` null: the
    firehose), with messages sent and errors since this gateway started."""
    deps = state.deps  # (not deps_of: this module is imported by the hub itself)
    stats: WsStats = deps.hub.stats
    return stats.view(deps.settings.api_port, deps.settings.ws_port)
