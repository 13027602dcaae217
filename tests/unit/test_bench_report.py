"""The benchmark helpers (bench/report.py): percentiles, ratios, targets, the JSON shape."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bench.load import build_request
from bench.report import Figure, Result, percentile, ratio, summary, table, write_result


def test_percentile_interpolates_between_ranks() -> None:
    data = [4.0, 1.0, 3.0, 2.0]
    assert percentile(data, 0) == 1.0
    assert percentile(data, 100) == 4.0
    assert percentile(data, 50) == pytest.approx(2.5)
    assert percentile([7.0], 99) == 7.0
    assert percentile([], 50) is None
    with pytest.raises(ValueError, match=r"within 0\.\.100"):
        percentile(data, 101)


def test_summary_of_an_empty_sample_has_no_figures() -> None:
    assert summary([]) == {"count": 0, "p50": None, "p90": None, "p99": None, "max": None}
    assert summary([1.0, 2.0])["max"] == 2.0


def test_ratio_refuses_a_missing_or_zero_baseline() -> None:
    assert ratio(3.0, 2.0) == 1.5
    assert ratio(3.0, 0.0) is None
    assert ratio(None, 2.0) is None


def test_a_target_is_met_in_the_direction_that_is_better() -> None:
    slow = Figure("wall", 2.2, "s", baseline=2.0, target=1.05)
    assert slow.ratio == pytest.approx(1.1)
    assert slow.met is False
    fast = Figure("req/s", 600.0, "req/s", baseline=1000.0, target=0.5, better="higher")
    assert fast.met is True
    p99 = Figure("p99", 19.0, "ms", target=20.0, target_on="value")
    assert p99.met is True
    assert Figure("no target", 1.0, "s").met is None


def test_result_json_has_figures_machine_and_commit(tmp_path: Path) -> None:
    result = Result("demo", params={"n": 1}, started=1_700_000_000.0, duration_s=1.5)
    result.add(Figure("wall", 2.0, "s", baseline=1.0, baseline_name="ideal", target=1.05))
    path = write_result(result, tmp_path)
    payload = json.loads(path.read_text())
    assert path.name == "demo.json"
    assert payload["benchmark"] == "demo"
    assert payload["timestamp"].startswith("2023-11-14T22:13:20")
    assert {"cpus", "cpu_model", "ram_gb", "loadavg"} <= payload["machine"].keys()
    assert payload["commit"]
    figure = payload["figures"][0]
    assert figure["ratio"] == 2.0
    assert figure["met"] is False
    assert figure["baseline_name"] == "ideal"
    text = table([result])
    assert "wall" in text
    assert "NO" in text


def test_load_request_carries_length_and_headers() -> None:
    raw = build_request("POST", "/api/debates", 8080, {"Authorization": "Bearer t"}, b"{}")
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"POST /api/debates HTTP/1.1\r\n")
    assert b"Content-Length: 2" in head
    assert b"Authorization: Bearer t" in head
    assert body == b"{}"
