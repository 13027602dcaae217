"""6. Fan-out: C WebSocket clients on one debate (fake provider at 200 ms): latency from an
event's ``occurred_at`` (when the orchestrator decided it) to its arrival at every client,
p50/p99 over all (client, event) pairs, and the spread between the first and the last
client per event; then K idle connections' memory in the gateway (RSS delta / K).

The clients run in P processes of their own (``ARAGORA_BENCH_FANOUT_PROCESSES``, default
2), each a minimal WebSocket reader (:class:`_Reader`: an asyncio protocol that stamps the
time in ``data_received``, when the bytes arrive, and decodes the JSON only after the
debate ended). The first version held 1,000 ``websockets`` clients in the bench process
and measured its own backlog: parsing, JSON and task wake-ups per frame took ~100 µs of
a shared core. A core-NATS subscriber in the bench process times each event on the bus,
which splits the latency into "to the bus" (the orchestrator, the store, the relay) and
"bus to client" (the gateway's projection and fan-out).

C = 1,000; K = 10,000 (the process's open-file limit is raised to its hard limit by
``python -m bench``; the stack is started with ``ARAGORA_WS_MAX_CONNECTIONS`` and
``…_PER_IP`` above K, since every client comes from 127.0.0.1).
"""

from __future__ import annotations

import asyncio
import base64
import json
import multiprocessing
import os
import time
from datetime import datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import nats

from bench import infra
from bench.client import post_debate
from bench.report import Figure, Result, summary


class _Reader(asyncio.Protocol):
    """One WebSocket client that only reads: unmasked server frames, no extensions. Keeps
    ``(arrival time, payload)`` of each text frame; answers a close and ends."""

    def __init__(self, request: bytes) -> None:
        self.request = request
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.upgraded = False
        self.frames: list[tuple[float, bytes]] = []
        self.close_code: int | None = None
        loop = asyncio.get_running_loop()
        self.opened: asyncio.Future[None] = loop.create_future()
        self.done: asyncio.Future[None] = loop.create_future()
        self.caught_up: asyncio.Future[None] = loop.create_future()  # see expect()
        self.wanted = 0

    def expect(self, frames: int) -> None:
        """Resolve :attr:`caught_up` once ``frames`` frames arrived (or the stream ended)."""
        self.wanted = frames
        self._check()

    def _check(self) -> None:
        ready = len(self.frames) >= self.wanted or self.done.done()
        if self.wanted and ready and not self.caught_up.done():
            self.caught_up.set_result(None)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(ConnectionError(f"connection lost: {exc}"))
        if not self.done.done():
            self.done.set_result(None)  # without a close frame: close_code stays None
        self._check()

    def data_received(self, data: bytes) -> None:
        now = time.time()
        buf = self.buf
        buf += data
        if not self.upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(buf[: buf.find(b"\r\n")])
            if b" 101 " not in status + b" ":
                self.opened.set_exception(ConnectionError(status.decode(errors="replace")))
                return
            del buf[: end + 4]
            self.upgraded = True
            self.opened.set_result(None)
        pos = 0
        while len(buf) - pos >= 2:
            opcode, length, head = buf[pos] & 0x0F, buf[pos + 1] & 0x7F, 2
            if length == 126:
                if len(buf) - pos < 4:
                    break
                length, head = int.from_bytes(buf[pos + 2 : pos + 4], "big"), 4
            elif length == 127:
                if len(buf) - pos < 10:
                    break
                length, head = int.from_bytes(buf[pos + 2 : pos + 10], "big"), 10
            if len(buf) - pos < head + length:
                break
            payload = bytes(buf[pos + head : pos + head + length])
            pos += head + length
            if opcode == 1:
                self.frames.append((now, payload))
            elif opcode == 8:
                self.close_code = int.from_bytes(payload[:2], "big") if payload else 1005
                self._send(0x88, payload[:2])
                assert self.transport is not None
                self.transport.close()
                if not self.done.done():
                    self.done.set_result(None)
                self._check()
                return
            elif opcode == 9:
                self._send(0x8A, payload)
        del buf[:pos]
        self._check()

    def _send(self, first: int, payload: bytes) -> None:
        """A masked frame (clients must mask); payloads here are < 126 bytes."""
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        assert self.transport is not None
        self.transport.write(bytes((first, 0x80 | len(payload))) + mask + masked)


async def _open(url: str, headers: dict[str, str]) -> _Reader:
    parts = urlsplit(url)
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [
        f"GET {parts.path}?{parts.query} HTTP/1.1",
        f"Host: {parts.netloc}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode()
    loop = asyncio.get_running_loop()
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    _, reader = await loop.create_connection(lambda: _Reader(request), host, port)
    await asyncio.wait_for(reader.opened, 120)
    return reader


async def _open_many(url: str, headers: dict[str, str], count: int) -> list[_Reader]:
    readers: list[_Reader] = []
    for start in range(0, count, 200):
        readers += await asyncio.gather(
            *(_open(url, headers) for _ in range(min(200, count - start)))
        )
    return readers


def _client_process(url: str, headers: dict[str, str], count: int, pipe: Connection) -> None:
    """Open ``count`` clients, say so, wait until the server ends every stream, then send
    back ``(seq, occurred_at, arrival)`` of each event received and the close codes."""

    async def main() -> None:
        readers = await _open_many(url, headers, count)
        pipe.send("connected")
        stored = pipe.recv()  # the debate's events so far: caught up once each has them
        for reader in readers:
            reader.expect(stored)
        await asyncio.wait_for(asyncio.gather(*(r.caught_up for r in readers)), 180)
        pipe.send("caught up")
        await asyncio.wait_for(
            asyncio.gather(*(r.done for r in readers), return_exceptions=True), 300
        )
        received: list[tuple[int, float, float]] = []
        codes: dict[str, int] = {}
        for reader in readers:
            codes[str(reader.close_code)] = codes.get(str(reader.close_code), 0) + 1
            for arrival, payload in reader.frames:
                event = json.loads(payload)
                if "seq" in event and "occurred_at" in event:
                    occurred = datetime.fromisoformat(event["occurred_at"]).timestamp()
                    received.append((event["seq"], occurred, arrival))
                else:  # token deltas (live only, no seq), heartbeats
                    codes["frames without seq"] = codes.get("frames without seq", 0) + 1
        pipe.send((received, codes))

    asyncio.run(main())


async def _bus_times(stack: infra.Stack) -> tuple[Any, dict[int, float]]:
    """When each debate event of the stack appeared on core NATS (by ``seq``)."""
    seen: dict[int, float] = {}
    nc = await nats.connect(stack.nats_url, name="bench-fanout")

    async def on_event(msg: Any) -> None:
        with_seq = json.loads(msg.data)
        if isinstance(with_seq, dict) and "seq" in with_seq:
            seen.setdefault(with_seq["seq"], time.time())

    await nc.subscribe("aragora.evt.>", cb=on_event)
    await nc.flush()
    return nc, seen


async def _recv(pipe: Connection, timeout: float) -> Any:
    loop = asyncio.get_running_loop()
    if not await loop.run_in_executor(None, pipe.poll, timeout):
        raise TimeoutError("fan-out client process did not answer")
    return pipe.recv()


async def _fanout(
    stack: infra.Stack,
    provider: infra.FakeProvider,
    clients: int,
    processes: int,
    first_wave_ms: int = 8000,
) -> dict[str, Any]:
    # A slow first wave: every client connects and receives the replay before it ends, so
    # the events measured (those decided after) reach clients that are all following live.
    provider.configure(latency_ms=first_wave_ms)
    nc, on_bus = await _bus_times(stack)
    async with httpx.AsyncClient(headers=stack.headers, timeout=60) as http:
        debate_id = await post_debate(http, stack, "Fan-out debate")
    url = f"{stack.ws_url}/ws/debates/{debate_id}?since=0"
    spawn = multiprocessing.get_context("spawn")
    shares = [clients // processes + (i < clients % processes) for i in range(processes)]
    pipes, procs = [], []
    for share in shares:
        ours, theirs = spawn.Pipe()
        proc = spawn.Process(target=_client_process, args=(url, stack.headers, share, theirs))
        proc.start()
        pipes.append(ours)
        procs.append(proc)
    try:
        t0 = time.monotonic()
        for pipe in pipes:
            assert await _recv(pipe, 180) == "connected"
        connected = time.monotonic() - t0
        async with httpx.AsyncClient(headers=stack.headers, timeout=60) as http:
            view = (await http.get(f"{stack.url}/api/debates/{debate_id}")).json()
        for pipe in pipes:
            pipe.send(view["last_seq"])
        for pipe in pipes:
            assert await _recv(pipe, 180) == "caught up"
        joined = time.time()
        join_s = time.monotonic() - t0
        provider.configure(latency_ms=200)
        gateway = stack.services()["gateway"]
        cpu0, t0 = sum(gateway.cpu_times()[:2]), time.monotonic()
        answers = [await _recv(pipe, 320) for pipe in pipes]
        gateway_cpu = sum(gateway.cpu_times()[:2]) - cpu0
        wall = time.monotonic() - t0
    finally:
        for proc in procs:
            proc.join(10)
            if proc.is_alive():
                proc.kill()
        await nc.close()
    received = [item for got, _ in answers for item in got]
    codes: dict[str, int] = {}
    for _, got_codes in answers:
        for code, n in got_codes.items():
            codes[code] = codes.get(code, 0) + n
    other_frames = codes.pop("frames without seq", 0)
    live = [(seq, occ, now) for seq, occ, now in received if occ > joined]
    latencies = [(now - occ) * 1000 for _, occ, now in live]
    by_seq: dict[int, list[float]] = {}
    for seq, _, now in live:
        by_seq.setdefault(seq, []).append(now)
    complete = {seq: v for seq, v in by_seq.items() if len(v) == clients}
    spread = [(max(v) - min(v)) * 1000 for v in complete.values()]
    occurred = {seq: occ for seq, occ, _ in live}
    to_bus = [(on_bus[s] - occurred[s]) * 1000 for s in complete if s in on_bus]
    bus_to_first = [(min(v) - on_bus[s]) * 1000 for s, v in complete.items() if s in on_bus]
    return {
        "clients": clients,
        "client_processes": processes,
        "connect_s": round(connected, 2),
        "connect_and_replay_s": round(join_s, 2),
        "live_events": len(by_seq),
        "deliveries": len(live),
        "complete_events": len(complete),
        "close_codes": codes,
        "latency_ms": summary(latencies),
        "spread_ms": summary(spread),
        "occurred_to_bus_ms": summary(to_bus),
        "bus_to_first_client_ms": summary(bus_to_first),
        "per_event_ms": [  # seq, occurred (s after the clients joined), to bus, first, last
            [
                s,
                round(occurred[s] - joined, 3),
                round((on_bus.get(s, occurred[s]) - occurred[s]) * 1000, 1),
                round((min(v) - occurred[s]) * 1000, 1),
                round((max(v) - occurred[s]) * 1000, 1),
            ]
            for s, v in sorted(complete.items())
        ],
        "gateway_cpu_cores": round(gateway_cpu / wall, 3),
        # Frames sent while measured: live events and token deltas (the bulk of them).
        "frames_without_seq": other_frames,
        "gateway_cpu_us_per_frame": round(gateway_cpu * 1e6 / max(len(live) + other_frames, 1), 1),
        "client_compression": "none (the gateway does not negotiate permessage-deflate)",
    }


async def _idle(stack: infra.Stack, count: int) -> dict[str, Any]:
    async with httpx.AsyncClient(headers=stack.headers, timeout=60) as http:
        debate_id = await post_debate(http, stack, "Idle debate")
    gateway = stack.services()["gateway"]
    await asyncio.sleep(2)
    before = infra.rss_mb(gateway)
    url = f"{stack.ws_url}/ws/debates/{debate_id}?since=0"
    t0 = time.monotonic()
    readers = await _open_many(url, stack.headers, count)
    opened = time.monotonic() - t0
    await asyncio.sleep(3)
    after = infra.rss_mb(gateway)
    still_open = sum(not r.done.done() for r in readers)
    closed: dict[str, int] = {}
    for reader in readers:
        if reader.done.done():
            closed[str(reader.close_code)] = closed.get(str(reader.close_code), 0) + 1
    for reader in readers:
        assert reader.transport is not None
        reader.transport.close()
    return {
        "connections": len(readers),
        "still_open": still_open,
        "closed_by_server": closed,  # close code -> connections (None: no close frame)
        "open_s": round(opened, 2),
        "rss_before_mb": before,
        "rss_after_mb": after,
        "kb_per_connection": (after - before) * 1024 / count,
    }


async def _run(workdir: Path, clients: int, idle: int, processes: int) -> Result:
    result = Result(
        "fanout",
        params={"clients": clients, "idle_connections": idle, "client_processes": processes},
    )
    limit = str(max(clients, idle) + 100)
    with (
        infra.database() as db,
        infra.fake_provider(200) as provider,
        infra.stack(
            workdir,
            db,
            env={
                **provider.env(),
                "ARAGORA_WS_MAX_CONNECTIONS": limit,
                "ARAGORA_WS_MAX_CONNECTIONS_PER_IP": limit,
            },
        ) as stack,
    ):
        # Baseline: one follower of a debate on the same stack, the pipeline without fan-out.
        single = await _fanout(stack, provider, 1, 1, first_wave_ms=2000)
        fan = await _fanout(stack, provider, clients, processes)
        provider.configure(latency_ms=600_000)  # the idle debate never moves
        idle_result = await _idle(stack, idle)
    lat, spread, one = fan["latency_ms"], fan["spread_ms"], single["latency_ms"]
    result.add(
        Figure(
            f"{clients} clients: event to client p50",
            lat["p50"],
            "ms",
            baseline=one["p50"],
            baseline_name="1 client, same stack",
        )
    )
    result.add(
        Figure(
            f"{clients} clients: event to client p99",
            lat["p99"],
            "ms",
            baseline=one["p99"],
            baseline_name="1 client, same stack",
            target=100.0,
            target_on="value",
        )
    )
    result.add(Figure(f"{clients} clients: first-to-last client p99", spread["p99"], "ms"))
    result.add(
        Figure(
            f"{clients} clients: gateway CPU per delivered frame",
            fan["gateway_cpu_us_per_frame"],
            "µs",
        )
    )
    result.add(
        Figure(
            f"{idle:,} idle connections: gateway RSS per connection",
            idle_result["kb_per_connection"],
            "KB",
        )
    )
    result.details = {"fanout": fan, "single_client": single, "idle": idle_result}
    return result


def run(workdir: Path, full: bool = False) -> Result:
    clients = int(os.environ.get("ARAGORA_BENCH_FANOUT_CLIENTS", "1000"))
    idle = int(os.environ.get("ARAGORA_BENCH_IDLE_CONNECTIONS", "10000"))
    processes = int(os.environ.get("ARAGORA_BENCH_FANOUT_PROCESSES", "2"))
    return asyncio.run(_run(workdir, clients, idle, max(1, min(processes, clients))))
