"""1. Overhead: one debate at a time (3 agents x 3 rounds), fake provider at 200 ms.

Ideal = phases run x one provider latency (agents run in parallel within a phase). Wall =
from sending ``POST /api/debates`` to receiving the terminal event on the debate's
WebSocket. Per phase, the events' own timestamps give the phase's length; what exceeds the
provider latency is orchestration (store append, relay, bus hops, runner, decide).
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import httpx

from bench import infra
from bench.client import TERMINAL, follow, phases, post_debate
from bench.report import Figure, Result, percentile, summary

LATENCY_MS = 200


async def _bare_provider_ms(provider: infra.FakeProvider, calls: int = 10) -> list[float]:
    """One provider call straight from this process: the latency an ideal caller pays."""
    body = {"model": "fake-model", "messages": [{"role": "user", "content": "hello"}]}
    out = []
    async with httpx.AsyncClient(timeout=10) as http:
        for _ in range(calls):
            t0 = time.monotonic()
            (await http.post(f"{provider.url}/v1/chat/completions", json=body)).raise_for_status()
            out.append((time.monotonic() - t0) * 1000)
    return out


async def _one(http: httpx.AsyncClient, stack: infra.Stack, i: int) -> dict[str, Any]:
    t0 = time.monotonic()
    debate_id = await post_debate(http, stack, f"Benchmark debate {i}: is overhead small?")
    received = await follow(stack, debate_id)
    t_end = next(t for t, e in received if e["type"] in TERMINAL)
    events = [e for _, e in received]
    rows = phases(events)
    return {
        "debate_id": debate_id,
        "status": events[-1].get("status"),
        "wall_s": t_end - t0,
        "phases": len(rows),
        "phase_rows": [
            {k: round(v, 2) if isinstance(v, float) else v for k, v in r.items() if k != "t0"}
            for r in rows
        ],
    }


async def _debates(
    workdir: Path, debates: int, env: dict[str, str]
) -> tuple[list[float], list[dict[str, Any]]]:
    with (
        infra.database() as db,
        infra.fake_provider(LATENCY_MS) as provider,
        infra.stack(workdir, db, env={**provider.env(), **env}) as stack,
    ):
        bare = await _bare_provider_ms(provider)
        async with httpx.AsyncClient(headers=stack.headers, timeout=30) as http:
            await _one(http, stack, 0)  # warm-up: first imports, connections, JIT caches
            runs = []
            for i in range(debates):
                runs.append(await _one(http, stack, i + 1))
                await asyncio.sleep(0.5)
    return bare, runs


async def _run(workdir: Path, debates: int) -> Result:
    result = Result(
        "overhead",
        params={
            "latency_ms": LATENCY_MS,
            "agents": infra.AGENTS,
            "rounds": 3,
            "debates": debates,
            "warmup": 1,
        },
    )
    bare, runs = await _debates(workdir / "default", debates, {})
    _, no_fsync = await _debates(workdir / "nosync", 3, {"ARAGORA_NATS_SYNC": "default"})
    ratios = [r["wall_s"] / (r["phases"] * LATENCY_MS / 1000) for r in runs]  # type: ignore[operator]
    over_nominal = [
        row["ms"] - LATENCY_MS
        for r in runs
        for row in r["phase_rows"]  # type: ignore[attr-defined]
    ]
    over_turn = [
        row["ms"] - row["slowest_turn_ms"]
        for r in runs
        for row in r["phase_rows"]  # type: ignore[attr-defined]
    ]
    bare_p50 = percentile(bare, 50) or 0.0
    walls = [float(r["wall_s"]) for r in runs]  # type: ignore[arg-type]
    n_phases = [int(r["phases"]) for r in runs]  # type: ignore[call-overload]
    wall_p50 = percentile(walls, 50)
    ideal = (percentile(n_phases, 50) or 0) * LATENCY_MS / 1000
    result.add(
        Figure(
            "wall time (p50 of debates)",
            wall_p50,
            "s",
            baseline=ideal,
            baseline_name="ideal: phases x 200 ms",
            target=1.05,
        )
    )
    result.add(Figure("wall/ideal, worst debate", max(ratios), "x", target=1.05, target_on="value"))
    result.add(
        Figure(
            "wall vs bare provider calls",
            wall_p50,
            "s",
            baseline=(percentile(n_phases, 50) or 0) * bare_p50 / 1000,
            baseline_name="phases x bare call p50",
        )
    )
    nosync = [r["wall_s"] / (r["phases"] * LATENCY_MS / 1000) for r in no_fsync]
    result.add(
        Figure(
            "wall/ideal with ARAGORA_NATS_SYNC=default",
            percentile(nosync, 50),
            "x",
            note="JetStream fsync every 2 min instead of before each ack (3 debates)",
        )
    )
    o = summary(over_nominal)
    result.add(
        Figure(
            "orchestration per phase p50",
            o["p50"],
            "ms",
            note="phase length by event timestamps minus 200 ms",
        )
    )
    result.add(Figure("orchestration per phase p99", o["p99"], "ms"))
    t = summary(over_turn)
    result.add(
        Figure(
            "phase minus slowest turn p50",
            t["p50"],
            "ms",
            note="excludes the runner's HTTP call (its latency_ms)",
        )
    )
    result.add(Figure("phase minus slowest turn p99", t["p99"], "ms"))
    result.details = {
        "bare_provider_call_ms": summary(bare),
        "wall_over_ideal": [round(x, 3) for x in ratios],
        "orchestration_per_phase_ms": o,
        "phase_minus_slowest_turn_ms": t,
        "debates": runs,
        "nats_sync_default_wall_over_ideal": [round(x, 3) for x in nosync],
    }
    return result


def run(workdir: Path, full: bool = False) -> Result:
    debates = int(os.environ.get("ARAGORA_BENCH_OVERHEAD_DEBATES", "5"))
    return asyncio.run(_run(workdir, debates))
