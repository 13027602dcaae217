"""2. Capacity: N debates at once (3 agents x 3 rounds) with the fake provider at 1 s.

For each N: completion ratio within the time allowed, wall time (first POST to the last
terminal event on NATS) / ideal (phases x 1 s: all debates run in parallel), and CPU and
peak RSS per service. Default sizes fit ``make bench``'s 20 minutes on 2 cores; ``--full``
runs the issue's 100, 500, 1,000. The stack is sized so that it is not configuration that
sets the knee: ``ARAGORA_BENCH_CAPACITY_RUNNERS`` agent-runners (default 2, one per core),
each allowed ``3 x N`` turns at once (``ARAGORA_AGENT_CONCURRENCY``, which also sizes its
HTTP pool; the default 64 would itself be the knee), and the open-files limit raised to
the hard limit (every turn in flight holds a socket in the runner and in the provider).
The knee is the largest N run that completed every debate within 1.25 x the ideal.
"""

from __future__ import annotations

import asyncio
import os
import resource
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

from bench import infra
from bench.client import TerminalWatcher, post_debate
from bench.report import Figure, Result

LATENCY_MS = 1000
DEFAULT_SIZES = (25, 50, 100, 200)
FULL_SIZES = (100, 250, 500, 1000)
KNEE_RATIO = 1.25


def _raise_nofile() -> int:
    """Lift the open-files soft limit to the hard one (children inherit it); the limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


async def _one_size(workdir: Path, n: int, allowed: float, runners: int) -> dict[str, Any]:
    with (
        infra.database() as db,
        infra.fake_provider(LATENCY_MS) as provider,
        infra.stack(
            workdir,
            db,
            runners=runners,
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
        "runners": runners,
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
    runners = int(os.environ.get("ARAGORA_BENCH_CAPACITY_RUNNERS", "2"))
    result = Result(
        "capacity",
        params={
            "latency_ms": LATENCY_MS,
            "sizes": list(sizes),
            "agents": infra.AGENTS,
            "rounds": 3,
            "runners": runners,
            "agent_concurrency": "max(64, 3 x N) per runner",
            "open_files_limit": _raise_nofile(),
        },
    )
    rows = []
    for n in sizes:
        allowed = 60 + n * 1.0  # generous: the figure is the ratio, this only bounds the run
        row = asyncio.run(_one_size(workdir / f"n{n}", n, allowed, runners))
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
    within = [
        r["n"]
        for r in rows
        if r["completion_ratio"] == 1 and (r["wall_over_ideal"] or 99) <= KNEE_RATIO
    ]
    result.add(
        Figure(
            f"knee: largest N run within {KNEE_RATIO} x ideal, all completed",
            max(within) if within else 0,
            "debates",
            target=1000,
            target_on="value",
            better="higher",
            note=f"sizes run: {', '.join(str(n) for n in sizes)}; {runners} runner(s)",
        )
    )
    result.details = {"sizes": rows}
    return result
