"""5. Gateway: req/s and p50/p99 of GET /api/health, GET /api/debates/{id} and
POST /api/debates under a closed-loop load generator on loopback, with rate limiting
(every request checked by the ratelimit service in Redis, limits set out of reach) and
without (loopback whitelisted: the default), against a minimal Litestar app with the same
routes on the same uvicorn settings, in the same run.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from aragora.runtime.natsserver import free_port, port_open
from bench import infra
from bench.client import post_debate
from bench.load import LoadResult, build_request, run_load
from bench.report import Figure, Result

CONNECTIONS = 32
HIGH = "100000000"  # an RPM no benchmark reaches: every request is checked, none refused
RATE_LIMITED = {
    "ARAGORA_RATE_LIMIT_WHITELIST": "none",
    **{
        f"ARAGORA_RATE_LIMIT_{k}_RPM": HIGH
        for k in ("DEBATE", "READ", "WRITE", "AUTH", "ADMIN", "IP")
    },
}


def _requests(port: int, headers: dict[str, str], debate_id: str) -> dict[str, Any]:
    body = json.dumps({"topic": "load test debate", "agents": infra.AGENTS, "rounds": 1}).encode()
    health = build_request("GET", "/api/health", port, headers)
    read = build_request("GET", f"/api/debates/{debate_id}", port, headers)
    create = build_request("POST", "/api/debates", port, headers, body)
    return {"health": lambda i: health, "debate": lambda i: read, "create": lambda i: create}


async def _endpoints(
    port: int, headers: dict[str, str], debate_id: str, duration: float, posts: int
) -> dict[str, LoadResult]:
    makers = _requests(port, headers, debate_id)
    out = {}
    for name in ("health", "debate", "create"):
        total = posts if name == "create" else None
        await run_load(port, makers[name], connections=4, duration=0.5, total=20)  # warm-up
        out[name] = await run_load(port, makers[name], CONNECTIONS, duration, total=total)
    return out


async def _on_stack(
    workdir: Path, env: dict[str, str], duration: float, posts: int
) -> dict[str, LoadResult]:
    with (
        infra.database() as db,
        infra.fake_provider(60_000) as provider,  # debates created under load just wait
        infra.stack(
            workdir, db, env={**provider.env(), **env, "ARAGORA_MAX_CONCURRENT_DEBATES": "100000"}
        ) as stack,
    ):
        async with httpx.AsyncClient(headers=stack.headers, timeout=30) as http:
            debate_id = await post_debate(http, stack, "A debate to read", rounds=1)
            await asyncio.sleep(1.0)
        return await _endpoints(stack.api_port, stack.headers, debate_id, duration, posts)


def _start_baseline(port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "bench.baseline_app", str(port)], stdin=subprocess.DEVNULL
    )


async def _on_baseline(duration: float, posts: int) -> dict[str, LoadResult]:
    port = free_port()
    process = _start_baseline(port)
    try:
        deadline = time.monotonic() + 30
        while not port_open("127.0.0.1", port):
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("the baseline Litestar app did not start")
            await asyncio.sleep(0.05)
        return await _endpoints(port, {}, "0f0e0d0c-0000-4000-8000-000000000000", duration, posts)
    finally:
        infra.stop_process(process)


def run(workdir: Path, full: bool = False) -> Result:
    duration = float(os.environ.get("ARAGORA_BENCH_GATEWAY_SECONDS", "5"))
    posts = int(os.environ.get("ARAGORA_BENCH_GATEWAY_POSTS", "1000"))
    result = Result(
        "gateway",
        params={
            "connections": CONNECTIONS,
            "seconds": duration,
            "posts": posts,
            "load": "bench.load (asyncio, keep-alive)",
        },
    )
    base = asyncio.run(_on_baseline(duration, posts))
    plain = asyncio.run(_on_stack(workdir / "plain", {}, duration, posts))
    limited = asyncio.run(_on_stack(workdir / "limited", RATE_LIMITED, duration, posts))
    labels = {
        "health": "GET /api/health",
        "debate": "GET /api/debates/{id}",
        "create": "POST /api/debates",
    }
    for key, label in labels.items():
        for mode, runs in (("", plain), (" +ratelimit", limited)):
            r, b = runs[key], base[key]
            target = 0.5 if key == "health" and not mode else None
            result.add(
                Figure(
                    f"{label}{mode} req/s",
                    r.rps,
                    "req/s",
                    baseline=b.rps,
                    baseline_name="minimal Litestar",
                    target=target,
                    better="higher",
                )
            )
            p99 = r.as_json()["latency_ms"]["p99"]  # type: ignore[index]
            p50 = r.as_json()["latency_ms"]["p50"]  # type: ignore[index]
            result.add(Figure(f"{label}{mode} p50", p50, "ms"))
            result.add(
                Figure(
                    f"{label}{mode} p99",
                    p99,
                    "ms",
                    target=20.0 if key == "health" and not mode else None,
                    target_on="value",
                )
            )
    result.details = {
        "baseline": {k: v.as_json() for k, v in base.items()},
        "no_rate_limit": {k: v.as_json() for k, v in plain.items()},
        "rate_limited": {k: v.as_json() for k, v in limited.items()},
    }
    return result
