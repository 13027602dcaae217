"""Pure helpers of the benchmarks: percentiles, ratios, the result record, the table.

No I/O but :func:`machine`, :func:`commit` and :func:`write_result`; unit-tested in
``tests/unit/test_bench_report.py``.
"""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).parent / "results"
SCHEMA_VERSION = 1


def percentile(values: Iterable[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100) by linear interpolation; None for no values."""
    data = sorted(values)
    if not data:
        return None
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be within 0..100, got {q}")
    rank = (len(data) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    if low == high:
        return data[low]
    return data[low] + (data[high] - data[low]) * (rank - low)


def summary(values: Sequence[float]) -> dict[str, float | int | None]:
    """count, p50, p90, p99, max of a sample (ms or s: the caller's unit)."""
    return {
        "count": len(values),
        "p50": percentile(values, 50),
        "p90": percentile(values, 90),
        "p99": percentile(values, 99),
        "max": max(values) if values else None,
    }


def ratio(value: float | None, baseline: float | None) -> float | None:
    """value / baseline, None when either is missing or the baseline is 0."""
    if value is None or baseline is None or baseline == 0:
        return None
    return value / baseline


@dataclass
class Figure:
    """One measured figure, its same-run baseline and the issue's target.

    ``better`` says which way is good: ``lower`` (latency, wall/ideal, memory) or
    ``higher`` (throughput). The target applies to ``ratio`` when ``target_on`` is
    ``ratio``, else to ``value``.
    """

    name: str
    value: float | None
    unit: str
    baseline: float | None = None
    baseline_name: str = ""
    target: float | None = None
    target_on: str = "ratio"  # "ratio" or "value"
    better: str = "lower"
    note: str = ""

    @property
    def ratio(self) -> float | None:
        return ratio(self.value, self.baseline)

    @property
    def met(self) -> bool | None:
        """Whether the target is met; None without a target or a figure."""
        subject = self.ratio if self.target_on == "ratio" else self.value
        if self.target is None or subject is None:
            return None
        return subject <= self.target if self.better == "lower" else subject >= self.target

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": self.value,
            "unit": self.unit,
            "baseline": self.baseline,
            "baseline_name": self.baseline_name,
            "ratio": self.ratio,
            "target": self.target,
            "target_on": self.target_on,
            "better": self.better,
            "met": self.met,
            "note": self.note,
        }


@dataclass
class Result:
    """What one benchmark writes to ``bench/results/<name>.json``."""

    name: str
    figures: list[Figure] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    started: float = 0.0
    duration_s: float = 0.0

    def add(self, figure: Figure) -> Figure:
        self.figures.append(figure)
        return figure

    def as_json(self, machine_info: dict[str, Any], commit_id: str) -> dict[str, Any]:
        return {
            "schema": SCHEMA_VERSION,
            "benchmark": self.name,
            "timestamp": datetime.fromtimestamp(self.started or 0, UTC).isoformat(),
            "duration_s": round(self.duration_s, 2),
            "commit": commit_id,
            "machine": machine_info,
            "params": self.params,
            "figures": [f.as_json() for f in self.figures],
            "details": self.details,
        }


def _fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    if abs(value) >= 1000:
        text = f"{value:,.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.3g}"
    return f"{text} {unit}".rstrip()


def table(results: Sequence[Result]) -> str:
    """A plain-text table of every figure: value, baseline, ratio, target, met."""
    rows = [("benchmark", "figure", "value", "baseline", "ratio", "target", "met")]
    for result in results:
        for f in result.figures:
            target = ""
            if f.target is not None:
                sign = "<=" if f.better == "lower" else ">="
                target = f"{f.target_on} {sign} {f.target:g}"
            met = {True: "yes", False: "NO", None: ""}[f.met]
            base = f"{_fmt(f.baseline, f.unit)} ({f.baseline_name})" if f.baseline_name else ""
            rows.append(
                (result.name, f.name, _fmt(f.value, f.unit), base, _fmt(f.ratio), target, met)
            )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


def machine() -> dict[str, Any]:
    """CPU count and model, RAM, kernel, Python, load average at the time of the run."""
    model = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        mem_kb = next(
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal:")
        )
    except (OSError, StopIteration, ValueError):
        mem_kb = 0
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "ram_gb": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "loadavg": [round(x, 2) for x in os.getloadavg()],
    }


def commit() -> str:
    """The checked-out commit, with ``+dirty`` when the tree has changes
    (``ARAGORA_BENCH_COMMIT`` overrides it, e.g. for a run from an exported snapshot)."""
    if os.environ.get("ARAGORA_BENCH_COMMIT"):
        return os.environ["ARAGORA_BENCH_COMMIT"]
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head}+dirty" if dirty else head


def write_result(result: Result, directory: Path = RESULTS_DIR) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{result.name}.json"
    payload = result.as_json(machine(), commit())
    path.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n")
    return path
