"""``python -m bench [NAME ...] [--full]``: run benchmarks, print a table, write JSON.

Names: overhead, capacity, pipeline, replay, gateway, fanout, footprint (default: all, in
that order). ``--full`` (or ``ARAGORA_BENCH_FULL=1``) runs the issue's full sizes where the
default run is smaller to fit ``make bench`` in 20 minutes (see docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import importlib
import os
import resource
import sys
import tempfile
import time
import traceback
from pathlib import Path

from bench.report import Result, table, write_result

NAMES = ("overhead", "capacity", "pipeline", "replay", "gateway", "fanout", "footprint")


def _raise_nofile() -> None:
    """WebSocket fan-out and capacity open thousands of sockets: lift the soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("names", nargs="*", help=f"any of {', '.join(NAMES)} (default: all)")
    parser.add_argument("--full", action="store_true", help="the issue's full sizes")
    args = parser.parse_args(argv)
    names = args.names or list(NAMES)
    unknown = [n for n in names if n not in NAMES]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(NAMES)}")
    full = args.full or os.environ.get("ARAGORA_BENCH_FULL") == "1"
    _raise_nofile()
    results: list[Result] = []
    failed = []
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        print(f"== {name}{' (full size)' if full else ''}", flush=True)
        started = time.time()
        with tempfile.TemporaryDirectory(prefix=f"aragora-bench-{name}-") as tmp:
            try:
                result: Result = module.run(Path(tmp), full=full)
            except Exception:
                traceback.print_exc()
                failed.append(name)
                continue
        result.started = started
        result.duration_s = time.time() - started
        path = write_result(result)
        results.append(result)
        print(table([result]), flush=True)
        print(f"-> {path} ({result.duration_s:.0f} s)\n", flush=True)
    if len(results) > 1:
        print(table(results))
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
