"""A small HTTP/1.1 load generator on raw asyncio streams (keep-alive, N connections).

httpx costs ~1 ms of client CPU per request, which on 2 cores would measure the client;
this writes a request and reads the response by Content-Length (or a chunked body's end)
with nothing else in the way. Each connection sends its next request when the previous
response has arrived (closed loop), for ``duration`` seconds or ``total`` requests.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from bench.report import summary


@dataclass
class LoadResult:
    requests: int = 0
    wall_s: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    errors: int = 0

    @property
    def rps(self) -> float:
        return self.requests / self.wall_s if self.wall_s else 0.0

    def as_json(self) -> dict[str, object]:
        return {
            "requests": self.requests,
            "wall_s": round(self.wall_s, 3),
            "rps": round(self.rps, 1),
            "latency_ms": summary(self.latencies_ms),
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "errors": self.errors,
        }


def build_request(
    method: str, path: str, port: int, headers: dict[str, str] | None = None, body: bytes = b""
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    for key, value in (headers or {}).items():
        lines.append(f"{key}: {value}")
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append("Content-Type: application/json")
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = -1
    chunked = False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        key = name.strip().lower()
        if key == b"content-length":
            length = int(value)
        elif key == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if chunked:
        await reader.readuntil(b"0\r\n\r\n")
    elif length > 0:
        await reader.readexactly(length)
    return status


async def run_load(
    port: int,
    make_request: Callable[[int], bytes],
    connections: int = 32,
    duration: float = 5.0,
    total: int | None = None,
) -> LoadResult:
    """Closed-loop load on 127.0.0.1:port; ``make_request(i)`` gives request number i."""
    result = LoadResult()
    deadline = time.monotonic() + duration
    counter = iter(range(10**12))

    async def worker() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while time.monotonic() < deadline:
                i = next(counter)
                if total is not None and i >= total:
                    return
                t0 = time.perf_counter()
                writer.write(make_request(i))
                try:
                    status = await _read_response(reader)
                except (asyncio.IncompleteReadError, ConnectionError):
                    result.errors += 1
                    writer.close()
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                    continue
                result.latencies_ms.append((time.perf_counter() - t0) * 1000)
                result.statuses[status] += 1
                result.requests += 1
        finally:
            writer.close()

    t0 = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(connections)))
    result.wall_s = time.monotonic() - t0
    return result
