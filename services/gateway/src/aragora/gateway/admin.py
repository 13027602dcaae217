"""Operator actions on the gateway process: cache cleanup and a memory dump (admin only).

``POST /api/admin/cleanup-caches`` drops what this gateway keeps in memory for speed (the
breaker summary, cached credential lookups), runs the garbage collector and reports what
it freed and the resident memory before and after.

``POST /api/debug/memory-dump`` (only with ARAGORA_MEMORY_PROFILING=1, which starts
``tracemalloc`` when the gateway starts) writes the top allocations by source line to
ARAGORA_MEMORY_DUMP_PATH (default the runbook's ``/tmp/aragora_memory_dump.json``) and
returns the same report.
"""

from __future__ import annotations

import gc
import json
import os
import time
import tracemalloc
from pathlib import Path
from typing import Any

from litestar import post
from litestar.datastructures import State
from litestar.exceptions import ClientException

from aragora.gateway.deps import Deps

TOP = 50


def rss_mb() -> float:
    """Resident memory of this process (VmRSS), in MiB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return 0.0


@post("/api/admin/cleanup-caches", status_code=200, tags=["admin"])
async def cleanup_caches(state: State) -> dict[str, Any]:
    """Clear the gateway's caches and collect garbage; says what was freed."""
    deps: Deps = state.deps
    before = rss_mb()
    freed: dict[str, int] = {"breaker_summary": int(deps.breaker_summary is not None)}
    deps.breaker_summary = None
    if deps.auth is not None:
        freed.update(deps.auth.forget())
    freed["gc_objects"] = gc.collect()
    return {"freed": freed, "rss_mb_before": before, "rss_mb_after": rss_mb()}


def start_profiling(deps: Deps) -> None:
    if deps.settings.memory_profiling and not tracemalloc.is_tracing():
        tracemalloc.start(10)


@post("/api/debug/memory-dump", status_code=200, tags=["debug"])
async def memory_dump(state: State) -> dict[str, Any]:
    """Top allocations by source line, written to ARAGORA_MEMORY_DUMP_PATH."""
    deps: Deps = state.deps
    if not deps.settings.memory_profiling or not tracemalloc.is_tracing():
        raise ClientException(
            "memory profiling is off: set ARAGORA_MEMORY_PROFILING=1 and restart the gateway",
            status_code=409,
        )
    snapshot = tracemalloc.take_snapshot()
    stats = snapshot.statistics("lineno")
    current, peak = tracemalloc.get_traced_memory()
    report = {
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "service": "gateway",
        "pid": os.getpid(),
        "rss_mb": rss_mb(),
        "traced_current_mb": round(current / 2**20, 2),
        "traced_peak_mb": round(peak / 2**20, 2),
        "top_allocations": [
            {
                "file": str(stat.traceback[0].filename),
                "line": stat.traceback[0].lineno,
                "size_kb": round(stat.size / 1024, 1),
                "count": stat.count,
            }
            for stat in stats[:TOP]
        ],
    }
    path = deps.settings.memory_dump_path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2))
    return {**report, "path": str(path)}
