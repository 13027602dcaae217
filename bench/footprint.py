"""7. Footprint: ``aragora serve`` time to healthy (spawn to ``/readyz`` 200), idle RSS
per service (and nats-server), and the orchestrator's RSS per active debate (debates held
mid-phase by a slow fake provider).

Baselines in the same run: a bare Python interpreter's RSS (the floor of each service
process) and the time to import the gateway's modules in a fresh interpreter.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

from bench import infra
from bench.client import post_debate
from bench.report import Figure, Result


def _bare_python() -> tuple[float, float]:
    """RSS (MB) of an idle bare interpreter; seconds to import the gateway app module."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(5)"])
    time.sleep(1.0)
    rss = infra.rss_mb(psutil.Process(process.pid))
    process.kill()
    process.wait()
    t0 = time.monotonic()
    subprocess.run([sys.executable, "-c", "import aragora.gateway.app"], check=True)
    return rss, time.monotonic() - t0


def _cpu_seconds(stack: infra.Stack) -> float:
    """CPU time (user + system) every process of the stack has used so far, the
    supervisor included: the work of starting (less sensitive than wall time to other
    load on the machine, though contention inflates it too)."""
    assert stack.process is not None
    procs = [psutil.Process(stack.process.pid), *stack.services().values()]
    total = 0.0
    for proc in procs:
        try:
            times = proc.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return round(total, 2)


async def _active(stack: infra.Stack, n: int) -> dict[str, Any]:
    orchestrator = stack.services()["orchestrator"]
    before = infra.rss_mb(orchestrator)
    async with httpx.AsyncClient(headers=stack.headers, timeout=60) as http:
        await asyncio.gather(*(post_debate(http, stack, f"Held debate {i}") for i in range(n)))
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            running = (
                await http.get(
                    f"{stack.url}/api/debates", params={"limit": 500, "status": "running"}
                )
            ).json()
            started = [d for d in running.get("debates", []) if d.get("last_seq", 0) >= 3]
            if len(started) >= n:
                break
            await asyncio.sleep(0.5)
    await asyncio.sleep(2)
    after = infra.rss_mb(orchestrator)
    return {
        "debates": n,
        "rss_before_mb": before,
        "rss_after_mb": after,
        "kb_per_debate": (after - before) * 1024 / n,
    }


def run(workdir: Path, full: bool = False) -> Result:
    starts = int(os.environ.get("ARAGORA_BENCH_STARTS", "3"))
    held = int(os.environ.get("ARAGORA_BENCH_HELD_DEBATES", "300"))
    result = Result("footprint", params={"starts": starts, "held_debates": held})
    bare_rss, import_s = _bare_python()
    healthy, cpu, idle, active = [], [], {}, {}
    with infra.fake_provider(600_000) as provider:  # turns never answer: debates stay active
        for i in range(starts):
            with (
                infra.database() as db,
                infra.stack(workdir / f"s{i}", db, env=provider.env()) as stack,
            ):
                healthy.append(round(stack.healthy_after, 3))
                cpu.append(_cpu_seconds(stack))
                if i == starts - 1:
                    time.sleep(5)
                    idle = {name: infra.rss_mb(p) for name, p in stack.services().items()}
                    active = asyncio.run(_active(stack, held))
    total = sum(idle.values())
    result.add(
        Figure(
            "time to healthy (best)",
            min(healthy),
            "s",
            baseline=import_s,
            baseline_name="import aragora.gateway.app",
            target=2.0,
            target_on="value",
        )
    )
    result.add(
        Figure(
            "idle RSS, all processes",
            total,
            "MB",
            baseline=bare_rss * len(idle),
            baseline_name=f"{len(idle)} bare interpreters",
            target=250.0,
            target_on="value",
        )
    )
    for name, mb in idle.items():
        result.add(
            Figure(
                f"idle RSS {name}", mb, "MB", baseline=bare_rss, baseline_name="bare interpreter"
            )
        )
    result.add(Figure("orchestrator RSS per active debate", active.get("kb_per_debate"), "KB"))
    result.details = {
        "healthy_s": healthy,
        "cpu_to_healthy_s": cpu,
        "idle_rss_mb": idle,
        "bare_python_rss_mb": bare_rss,
        "import_gateway_s": round(import_s, 3),
        "active": active,
    }
    return result
