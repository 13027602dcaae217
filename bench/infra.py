"""What the benchmarks start: the fake provider, a PostgreSQL database of their own, NATS,
and the whole stack as processes (``aragora serve``), plus CPU/RSS sampling per service.

Every process started here is stopped by the context manager that started it; the
PostgreSQL database is dropped and the Redis keys under the run's prefix deleted.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import psycopg

from aragora.runtime.natsserver import EmbeddedNats, free_port

PG_ADMIN_URL = os.environ.get("ARAGORA_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("ARAGORA_BENCH_REDIS", "redis://127.0.0.1:6379/0")
AGENTS = ["openai", "claude", "gemini"]  # one per adapter, all pointed at the fake provider


def pg_url(database: str) -> str:
    base, _, _ = PG_ADMIN_URL.rpartition("/")
    return f"{base}/{database}"


@contextlib.contextmanager
def database() -> Iterator[str]:
    """A fresh PostgreSQL database for one benchmark; its URL. Dropped afterwards."""
    name = f"aragora_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield pg_url(name)
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class FakeProvider:
    """``aragora-fake-provider`` as a process, at a set latency."""

    latency_ms: int
    url: str = ""
    process: subprocess.Popen[str] | None = None

    def start(self) -> FakeProvider:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "aragora.fake_provider",
                "--port",
                "0",
                "--latency-ms",
                str(self.latency_ms),
            ],
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            # stderr to a file: tracebacks of requests held at shutdown are noise here.
            stderr=self._log(),
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if "listening on" not in line:
            raise RuntimeError(f"fake provider did not start: {line!r}")
        self.url = line.strip().rsplit(" ", 1)[1]
        return self

    @staticmethod
    def _log() -> Any:
        import tempfile

        return tempfile.TemporaryFile(prefix="aragora-bench-fake-provider-")

    def configure(self, **config: Any) -> None:
        httpx.post(f"{self.url}/_fake/config", json=config, timeout=5).raise_for_status()

    def stats(self) -> dict[str, Any]:
        answer: dict[str, Any] = httpx.get(f"{self.url}/_fake/stats", timeout=5).json()
        return answer

    def stop(self) -> None:
        stop_process(self.process)

    def env(self) -> dict[str, str]:
        return {
            "OPENAI_BASE_URL": f"{self.url}/v1",
            "ANTHROPIC_BASE_URL": self.url,
            "GEMINI_BASE_URL": self.url,
        }


def stop_process(process: subprocess.Popen[Any] | None, timeout: float = 30.0) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextlib.contextmanager
def fake_provider(latency_ms: int) -> Iterator[FakeProvider]:
    provider = FakeProvider(latency_ms).start()
    try:
        yield provider
    finally:
        provider.stop()


@contextlib.contextmanager
def nats(workdir: Path, sync: str = "always") -> Iterator[EmbeddedNats]:
    """A nats-server from the wheel with JetStream, on a free port."""
    server = EmbeddedNats(free_port(), workdir / f"nats-{uuid.uuid4().hex[:6]}", sync=sync)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _instance(proc: psutil.Process) -> str | None:
    try:
        return proc.environ().get("ARAGORA_INSTANCE_ID")
    except (psutil.Error, OSError):
        return None


@dataclass
class Stack:
    """``aragora serve`` on PostgreSQL (own database), Redis rate limits (own prefix) and
    the fake provider, with ports of its own."""

    workdir: Path
    database_url: str
    env: dict[str, str] = field(default_factory=dict)
    runners: int = 1
    api_port: int = field(default_factory=free_port)
    ws_port: int = field(default_factory=free_port)
    nats_port: int = field(default_factory=free_port)
    prefix: str = field(default_factory=lambda: f"aragora:bench:{uuid.uuid4().hex[:8]}")
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    healthy_after: float = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.ws_port}"

    @property
    def nats_url(self) -> str:
        return f"nats://127.0.0.1:{self.nats_port}"

    @property
    def data_dir(self) -> Path:
        return self.workdir / "stack"

    @property
    def token(self) -> str:
        return (self.data_dir / "api-token").read_text().strip()

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def full_env(self) -> dict[str, str]:
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("ARAGORA_", "OPENAI_", "ANTHROPIC_", "GEMINI_", "OTEL_"))
        }
        env.update(
            {
                "ARAGORA_NATS_PORT": str(self.nats_port),
                "ARAGORA_DATABASE_URL": self.database_url,
                "ARAGORA_ENABLE_REDIS_RATE_LIMIT": "1",
                "ARAGORA_REDIS_URL": REDIS_URL,
                "ARAGORA_RATE_LIMIT_PREFIX": self.prefix,
                "ARAGORA_LOG_LEVEL": "WARNING",
            }
        )
        env.update(self.env)
        return env

    def start(self, timeout: float = 120.0) -> Stack:
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = (self.workdir / "stack.log").open("ab")
        self.started_at = time.monotonic()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "aragora.cli",
                "serve",
                "--api-port",
                str(self.api_port),
                "--ws-port",
                str(self.ws_port),
                "--data-dir",
                str(self.data_dir),
                "--runners",
                str(self.runners),
            ],
            env=self.full_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        deadline = self.started_at + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"aragora serve exited:\n{self.log()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    self.healthy_after = time.monotonic() - self.started_at
                    return self
            time.sleep(0.02)
        raise RuntimeError(f"stack not ready in {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return (self.workdir / "stack.log").read_text(errors="replace")[-6000:]

    def stop(self) -> None:
        stop_process(self.process, timeout=60)
        with contextlib.suppress(Exception):
            import redis

            client = redis.Redis.from_url(REDIS_URL)
            keys = list(client.scan_iter(f"{self.prefix}*"))
            if keys:
                client.delete(*keys)

    def services(self) -> dict[str, psutil.Process]:
        """Each live service process by its supervisor name, and ``nats``."""
        assert self.process is not None
        found: dict[str, psutil.Process] = {}
        for child in psutil.Process(self.process.pid).children():
            try:
                if "nats-server" in " ".join(child.cmdline()):
                    found["nats"] = child
                elif (name := _instance(child)) is not None:
                    found[name] = child
            except psutil.Error:
                continue
        return found


@contextlib.contextmanager
def stack(workdir: Path, database_url: str, **kwargs: Any) -> Iterator[Stack]:
    running = Stack(workdir, database_url, **kwargs)
    try:
        yield running.start()
    finally:
        running.stop()


class Sampler:
    """CPU seconds and peak RSS of a set of processes between :meth:`start` and
    :meth:`stop`, sampled every ``interval`` seconds in a thread."""

    def __init__(self, procs: dict[str, psutil.Process], interval: float = 0.5) -> None:
        import threading

        self.procs = procs
        self.interval = interval
        self.cpu0: dict[str, float] = {}
        self.peak_rss: dict[str, int] = dict.fromkeys(procs, 0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.t0 = 0.0
        self.wall = 0.0
        self.cpu: dict[str, float] = {}

    def _cpu(self, proc: psutil.Process) -> float:
        try:
            times = proc.cpu_times()
        except psutil.Error:
            return 0.0
        return float(times.user + times.system)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            for name, proc in self.procs.items():
                with contextlib.suppress(psutil.Error):
                    self.peak_rss[name] = max(self.peak_rss[name], proc.memory_info().rss)

    def start(self) -> Sampler:
        self.t0 = time.monotonic()
        self.cpu0 = {name: self._cpu(p) for name, p in self.procs.items()}
        self._thread.start()
        return self

    def stop(self) -> dict[str, dict[str, float]]:
        self._stop.set()
        self._thread.join()
        self.wall = time.monotonic() - self.t0
        out = {}
        for name, proc in self.procs.items():
            cpu = self._cpu(proc) - self.cpu0[name]
            out[name] = {
                "cpu_s": round(cpu, 2),
                "cpu_cores": round(cpu / self.wall, 3) if self.wall else 0.0,
                "peak_rss_mb": round(self.peak_rss[name] / 2**20, 1),
            }
        return out


def rss_mb(proc: psutil.Process) -> float:
    try:
        return round(proc.memory_info().rss / 2**20, 1)
    except psutil.Error:
        return 0.0
