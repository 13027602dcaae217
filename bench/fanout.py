"""6. Fan-out: C WebSocket clients on one debate (fake provider at 200 ms): latency from an
event's ``occurred_at`` (when the orchestrator decided it) to its arrival at every client,
p50/p99 over all (client, event) pairs, and the spread between the first and the last
client per event; then K idle connections' memory in the gateway (RSS delta / K).

C = 1,000; K = 10,000 (the process's open-file limit is raised to its hard limit by
``python -m bench``; uvicorn has no connection cap of its own here).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import websockets

from bench import infra
from bench.client import TERMINAL, post_debate
from bench.report import Figure, Result, summary


async def _client(
    url: str,
    headers: dict[str, str],
    out: list[tuple[int, float, float]],
    connected: asyncio.Event,
    counter: list[int],
    total: int,
) -> None:
    async with websockets.connect(
        url,
        additional_headers=headers,
        open_timeout=120,
        max_size=2**24,
        ping_interval=None,
        compression=None,
    ) as ws:
        counter[0] += 1
        if counter[0] >= total:
            connected.set()
        async for frame in ws:
            now = time.time()
            event = json.loads(frame)
            if "seq" in event and "occurred_at" in event:
                occurred = datetime.fromisoformat(event["occurred_at"]).timestamp()
                out.append((event["seq"], occurred, now))
            if event.get("type") in TERMINAL:
                return


async def _fanout(stack: infra.Stack, provider: infra.FakeProvider, clients: int) -> dict[str, Any]:
    provider.configure(latency_ms=3000)  # slow first wave: every client joins before it ends
    async with httpx.AsyncClient(headers=stack.headers, timeout=60) as http:
        debate_id = await post_debate(http, stack, "Fan-out debate")
    url = f"{stack.ws_url}/ws/debates/{debate_id}?since=0"
    received: list[tuple[int, float, float]] = []
    connected, counter = asyncio.Event(), [0]
    tasks = []
    for start in range(0, clients, 200):
        tasks += [
            asyncio.create_task(_client(url, stack.headers, received, connected, counter, clients))
            for _ in range(min(200, clients - start))
        ]
        await asyncio.sleep(0.05)
    await asyncio.wait_for(connected.wait(), 120)
    joined = time.time()
    provider.configure(latency_ms=200)
    gateway = stack.services()["gateway"]
    cpu0, t0 = sum(gateway.cpu_times()[:2]), time.monotonic()
    await asyncio.wait_for(asyncio.gather(*tasks), 300)
    gateway_cores = (sum(gateway.cpu_times()[:2]) - cpu0) / (time.monotonic() - t0)
    live = [(seq, occ, now) for seq, occ, now in received if occ > joined]
    latencies = [(now - occ) * 1000 for _, occ, now in live]
    by_seq: dict[int, list[float]] = {}
    for seq, _, now in live:
        by_seq.setdefault(seq, []).append(now)
    spread = [(max(v) - min(v)) * 1000 for v in by_seq.values() if len(v) == clients]
    return {
        "clients": clients,
        "live_events": len(by_seq),
        "deliveries": len(live),
        "complete_events": len(spread),
        "latency_ms": summary(latencies),
        "spread_ms": summary(spread),
        "gateway_cpu_cores": round(gateway_cores, 3),
        "client_compression": "none (browsers negotiate permessage-deflate)",
    }


async def _idle(stack: infra.Stack, count: int) -> dict[str, Any]:
    provider_wait = "Idle debate"
    async with httpx.AsyncClient(headers=stack.headers, timeout=60) as http:
        debate_id = await post_debate(http, stack, provider_wait)
    gateway = stack.services()["gateway"]
    await asyncio.sleep(2)
    before = infra.rss_mb(gateway)
    url = f"{stack.ws_url}/ws/debates/{debate_id}?since=0"
    sockets: list[Any] = []
    t0 = time.monotonic()
    async with contextlib.AsyncExitStack() as stack_ctx:
        for start in range(0, count, 250):
            batch = await asyncio.gather(
                *(
                    stack_ctx.enter_async_context(
                        websockets.connect(
                            url,
                            additional_headers=stack.headers,
                            open_timeout=120,
                            ping_interval=None,
                            compression=None,
                        )
                    )
                    for _ in range(min(250, count - start))
                )
            )
            sockets += batch
        opened = time.monotonic() - t0
        await asyncio.sleep(3)
        after = infra.rss_mb(gateway)
    return {
        "connections": len(sockets),
        "open_s": round(opened, 2),
        "rss_before_mb": before,
        "rss_after_mb": after,
        "kb_per_connection": (after - before) * 1024 / count,
    }


async def _run(workdir: Path, clients: int, idle: int) -> Result:
    result = Result("fanout", params={"clients": clients, "idle_connections": idle})
    with (
        infra.database() as db,
        infra.fake_provider(200) as provider,
        infra.stack(workdir, db, env=provider.env()) as stack,
    ):
        fan = await _fanout(stack, provider, clients)
        provider.configure(latency_ms=600_000)  # the idle debate never moves
        idle_result = await _idle(stack, idle)
    lat, spread = fan["latency_ms"], fan["spread_ms"]
    result.add(Figure(f"{clients} clients: event to client p50", lat["p50"], "ms"))
    result.add(
        Figure(
            f"{clients} clients: event to client p99",
            lat["p99"],
            "ms",
            target=100.0,
            target_on="value",
        )
    )
    result.add(Figure(f"{clients} clients: first-to-last client p99", spread["p99"], "ms"))
    result.add(
        Figure(
            f"{idle:,} idle connections: gateway RSS per connection",
            idle_result["kb_per_connection"],
            "KB",
        )
    )
    result.details = {"fanout": fan, "idle": idle_result}
    return result


def run(workdir: Path, full: bool = False) -> Result:
    clients = int(os.environ.get("ARAGORA_BENCH_FANOUT_CLIENTS", "1000"))
    idle = int(os.environ.get("ARAGORA_BENCH_IDLE_CONNECTIONS", "10000"))
    return asyncio.run(_run(workdir, clients, idle))
