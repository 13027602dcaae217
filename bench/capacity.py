"""2. Capacity: N debates at once (3 agents x 3 rounds) with the fake provider at 1 s.

For each N: completion ratio within the time allowed, wall time (first POST to the last
terminal event on NATS) / ideal (phases x 1 s: all debates run in parallel), and CPU and
peak RSS per service. Default sizes fit ``make bench``'s 20 minutes on 2 cores; ``--full``
runs the issue's 100, 500, 1,000. Each agent-runner may run ``3 x N`` turns at once
(``ARAGORA_AGENT_CONCURRENCY``; the default 64 would itself be the knee).
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

from bench import infra
from bench.client import TerminalWatcher, post_debate
from bench.report import Figure, Result

LATENCY_MS = 1000
DEFAULT_SIZES = (25, 50, 100)
FULL_SIZES = (100, 500, 1000)


async def _one_size(workdir: Path, n: int, allowed: float) -> dict[str, Any]:
    with (
        infra.database() as db,
        infra.fake_provider(LATENCY_MS) as provider,
        infra.stack(
            workdir,
            db,
            env={
                **provider.env(),
                "ARAGORA_AGENT_CONCURRENCY": str(max(64, 3 * n)),
                "ARAGORA_MAX_CONCURRENT_DEBATES": str(max(1000, n)),
            },
        ) as stack,
    ):
        watcher = await TerminalWatcher(stack.nats_url).start()
        procs = stack.services()
        assert provider.process is not None
        procs["fake-provider"] = psutil.Process(provider.process.pid)
        sampler = infra.Sampler(procs).start()
        t0 = time.monotonic()
        limits = httpx.Limits(max_connections=50)
        async with httpx.AsyncClient(headers=stack.headers, timeout=120, limits=limits) as http:
            ids = await asyncio.gather(
                *(post_debate(http, stack, f"Capacity debate {i}") for i in range(n))
            )
            posted = time.monotonic() - t0
            finished = await watcher.wait_for(set(ids), allowed)
            usage = sampler.stop()
            ended = [watcher.ended[i] for i in ids if i in watcher.ended]
            wall = max(t for t, _ in ended) - t0 if ended else None
            events = (await http.get(f"{stack.url}/api/debates/{ids[0]}/events")).json()
        phases = sum(1 for e in events["events"] if e["type"] == "debate.phase_started")
        await watcher.close()
        provider_requests = provider.stats()["requests"]
    completed = sum(1 for _, kind in ended if kind == "debate.completed")
    ideal = phases * LATENCY_MS / 1000
    return {
        "n": n,
        "posted_in_s": round(posted, 2),
        "all_ended": finished,
        "completed": completed,
        "completion_ratio": completed / n,
        "wall_s": round(wall, 2) if wall else None,
        "phases": phases,
        "ideal_s": ideal,
        "wall_over_ideal": round(wall / ideal, 3) if wall and ideal else None,
        "provider_requests": provider_requests,
        "outcomes": watcher.outcomes,
        "services": usage,
    }


def run(workdir: Path, full: bool = False) -> Result:
    sizes = FULL_SIZES if full else DEFAULT_SIZES
    if os.environ.get("ARAGORA_BENCH_CAPACITY_SIZES"):
        sizes = tuple(int(x) for x in os.environ["ARAGORA_BENCH_CAPACITY_SIZES"].split(","))
    result = Result(
        "capacity",
        params={
            "latency_ms": LATENCY_MS,
            "sizes": list(sizes),
            "agents": infra.AGENTS,
            "rounds": 3,
        },
    )
    rows = []
    for n in sizes:
        allowed = 60 + n * 1.0  # generous: the figure is the ratio, this only bounds the run
        row = asyncio.run(_one_size(workdir / f"n{n}", n, allowed))
        rows.append(row)
        print(
            f"   N={n}: {row['completed']}/{n} completed, wall/ideal {row['wall_over_ideal']}",
            flush=True,
        )
        ideal = row["ideal_s"]
        result.add(
            Figure(
                f"N={n} wall time",
                row["wall_s"],
                "s",
                baseline=ideal,
                baseline_name="ideal: phases x 1 s",
                target=1.25 if n >= 1000 else None,
            )
        )
        result.add(
            Figure(
                f"N={n} completion ratio",
                row["completion_ratio"],
                "",
                target=1.0,
                target_on="value",
                better="higher",
            )
        )
        busiest = max(row["services"].items(), key=lambda kv: kv[1]["cpu_cores"])
        result.add(
            Figure(f"N={n} busiest service CPU", busiest[1]["cpu_cores"], "cores", note=busiest[0])
        )
    result.details = {"sizes": rows}
    return result
