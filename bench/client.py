"""Client side of the benchmarks: create debates over HTTP, follow them over WebSocket or
NATS, and read phase timings out of the debate events."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime
from typing import Any

import httpx
import nats
import websockets

from bench.infra import AGENTS, Stack

TERMINAL = ("debate.completed", "debate.failed")


async def post_debate(
    http: httpx.AsyncClient, stack: Stack, topic: str, rounds: int = 3, agents: list[str] = AGENTS
) -> str:
    response = await http.post(
        f"{stack.url}/api/debates", json={"topic": topic, "agents": agents, "rounds": rounds}
    )
    if response.status_code != 202:
        raise RuntimeError(f"POST /api/debates: {response.status_code} {response.text[:200]}")
    debate_id: str = response.json()["id"]
    return debate_id


async def follow(
    stack: Stack, debate_id: str, since: int = 0
) -> list[tuple[float, dict[str, Any]]]:
    """Every debate event of one debate over WebSocket until the server closes the stream,
    each with the monotonic time it was received."""
    url = f"{stack.ws_url}/ws/debates/{debate_id}?since={since}"
    out: list[tuple[float, dict[str, Any]]] = []
    async with websockets.connect(
        url, additional_headers=stack.headers, open_timeout=30, max_size=2**24
    ) as ws:
        async for frame in ws:
            event = json.loads(frame)
            if str(event.get("type", "")).startswith("debate."):
                out.append((time.monotonic(), event))
    return out


class TerminalWatcher:
    """Core-NATS subscription to every debate's terminal events: when each debate ended."""

    def __init__(self, nats_url: str) -> None:
        self.nats_url = nats_url
        self.ended: dict[str, tuple[float, str]] = {}
        self.outcomes: dict[str, int] = {}
        self._nc: Any = None
        self.changed = asyncio.Event()

    async def start(self) -> TerminalWatcher:
        self._nc = await nats.connect(self.nats_url, name="bench-watcher")

        async def on_end(msg: Any) -> None:
            event = json.loads(msg.data)
            self.ended.setdefault(event["debate_id"], (time.monotonic(), event["type"]))
            outcome = f"{event['type']}:{event.get('status', '')}:{event.get('reason', '')[:60]}"
            self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
            self.changed.set()

        for suffix in ("completed", "failed"):
            await self._nc.subscribe(f"aragora.evt.debate.*.{suffix}", cb=on_end)
        await self._nc.flush()
        return self

    async def wait_for(self, ids: set[str], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not ids <= self.ended.keys():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), min(left, 1.0))
            except TimeoutError:
                pass
        return True

    async def close(self) -> None:
        if self._nc is not None:
            await self._nc.close()


def _ts(event: dict[str, Any]) -> float:
    return datetime.fromisoformat(event["occurred_at"]).timestamp()


def phases(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per phase: its length by the events' own timestamps (``phase_started`` to
    the next ``phase_started`` or the terminal event) and its slowest turn's provider call
    as the agent-runner measured it (``latency_ms``)."""
    rows: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    for event in sorted(events, key=lambda e: e["seq"]):
        kind = event["type"]
        if kind == "debate.phase_started" or kind in TERMINAL:
            if current is not None:
                current["ms"] = (_ts(event) - current["t0"]) * 1000
                rows.append(current)
                current = None
            if kind == "debate.phase_started":
                current = {
                    "phase": event["phase"],
                    "round": event["round"],
                    "t0": _ts(event),
                    "turns": len(event["turns"]),
                    "slowest_turn_ms": 0.0,
                }
        elif kind == "debate.turn_completed" and current is not None:
            latency = float(event.get("latency_ms") or 0)
            current["slowest_turn_ms"] = max(current["slowest_turn_ms"], latency)
    return rows
