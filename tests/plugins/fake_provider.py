"""Pytest fixture running the fake OpenAI-compatible provider as a real subprocess."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

STARTUP_TIMEOUT_S = 15.0
_READY_PREFIX = "fake-provider listening on "


class FakeProviderProcess:
    """A running fake provider: ``base_url`` is what an OpenAI client is given."""

    def __init__(self, process: subprocess.Popen[str], root_url: str) -> None:
        self.process = process
        self.root_url = root_url
        self.base_url = f"{root_url}/v1"

    def configure(self, **config: Any) -> dict[str, Any]:
        """POST /_fake/config (latency_ms, fail_mode, fail_count, fail_rate, retry_after...)."""
        response = httpx.post(f"{self.root_url}/_fake/config", json=config, timeout=5)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def stats(self) -> dict[str, Any]:
        """GET /_fake/stats: requests, failures_injected, by_path, config."""
        response = httpx.get(f"{self.root_url}/_fake/stats", timeout=5)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def reset(self) -> None:
        """POST /_fake/reset: startup config, zero counters, end pending hangs."""
        httpx.post(f"{self.root_url}/_fake/reset", timeout=5).raise_for_status()


def _read_ready_line(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while (remaining := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([process.stdout], [], [], remaining)
        if not ready:
            break
        line = process.stdout.readline()
        if not line:
            raise RuntimeError(f"fake provider exited early (rc={process.wait()})")
        if line.startswith(_READY_PREFIX):
            return line[len(_READY_PREFIX) :].strip()
    raise RuntimeError("fake provider did not report its address in time")


@contextmanager
def start_fake_provider(*args: str) -> Iterator[FakeProviderProcess]:
    """Run ``python -m aragora.fake_provider --port 0 ARGS`` until the block exits."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "aragora.fake_provider",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            *args,
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        yield FakeProviderProcess(process, _read_ready_line(process))
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


@pytest.fixture
def fake_provider() -> Iterator[FakeProviderProcess]:
    """A fresh fake provider process for one test."""
    with start_fake_provider() as server:
        yield server
