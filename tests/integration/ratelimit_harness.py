"""Rate-limit test rig: ratelimit services and gateway replicas in one event loop.

Gateways are the real app (``create_app`` + ``running`` as ``aragora.gateway.app.run``
wires them) driven through ``httpx.ASGITransport``, which lets a test pick the TCP peer
address and run a thousand requests at once. Services are ``RateLimitService`` as the
ratelimit process wires it, each with its own NATS connection (queue group ``ratelimit``)
and, with Redis, its own client. Redis is the machine's (a unique key prefix per test) or
a ``redis-server`` of the test's own on a free port.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import httpx
import redis

from aragora.gateway.app import create_app, running
from aragora.gateway.deps import Deps
from aragora.gateway.live import LiveHub
from aragora.gateway.readmodel import ReadModel
from aragora.ratelimit.app import build_limiter
from aragora.ratelimit.limiter import Limiter
from aragora.ratelimit.service import RateLimitService
from aragora.runtime import bus
from aragora.runtime.agents import load_registry
from aragora.runtime.natsserver import free_port
from aragora.runtime.settings import Settings
from tests.conftest import make_settings

SHARED_REDIS = "redis://127.0.0.1:6379/0"


def rl_settings(tmp_path: Path, nats_url: str, **overrides: Any) -> Settings:
    """Limits for tests: nothing whitelisted, an hour's window (no refill during a test)."""
    base: dict[str, Any] = {
        "nats_url": nats_url,
        "rate_limit_whitelist": "none",
        "rate_limit_window_seconds": 3600,
        "rate_limit_prefix": f"aragora-test:{uuid.uuid4().hex[:12]}",
    }
    base.update(overrides)
    return make_settings(tmp_path, **base)


class RedisServer:
    """A ``redis-server`` of the test's own (no persistence), on a free port."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.process = subprocess.Popen(
            ["redis-server", "--save", "", "--appendonly", "no", "--port", str(self.port),
             "--bind", "127.0.0.1"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        while time.monotonic() < deadline:
            try:
                if client.ping():
                    return self
            except redis.RedisError:
                time.sleep(0.02)
        raise RuntimeError(f"redis-server on {self.port} did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


@contextlib.contextmanager
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.stop()


@dataclass
class Replica:
    service: RateLimitService
    limiter: Limiter


@contextlib.asynccontextmanager
async def ratelimit_service(settings: Settings) -> AsyncIterator[Replica]:
    """A ratelimit replica wired like ``aragora.ratelimit.app.run``."""
    limiter = build_limiter(settings)
    await limiter.start()
    conn = await bus.connect(settings.nats_servers, name="test-ratelimit", connect_timeout=5)
    service = RateLimitService(limiter)
    await service.start(conn.nc)
    try:
        yield Replica(service, limiter)
    finally:
        await service.stop()
        await conn.nc.close()
        await limiter.stop()


def settings_env(settings: Settings) -> dict[str, str]:
    """The env vars that give a process ``settings`` (those that differ from the default)."""
    env: dict[str, str] = {}
    for f in fields(settings):
        value = getattr(settings, f.name)
        if value != f.default:
            env[f.metadata["env"]] = (
                ("1" if value else "0") if isinstance(value, bool) else str(value)
            )
    return env


@contextlib.contextmanager
def ratelimit_process(settings: Settings, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``python -m aragora.ratelimit`` as a process of its own, ready when it says so."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ARAGORA_")}
    env = {**clean, **settings_env(settings), "PYTHONUNBUFFERED": "1"}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "aragora.ratelimit"], env=env, stdout=out, stderr=out
        )
    try:
        deadline = time.monotonic() + 30
        while b"ratelimit ready" not in log.read_bytes():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"ratelimit did not start: {log.read_text()[-2000:]}")
            time.sleep(0.05)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class GatewayReplica:
    deps: Deps
    app: Any

    def client(self, peer: str = "192.0.2.10") -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=self.app, client=(peer, 40000))
        return httpx.AsyncClient(transport=transport, base_url="http://gateway")


@contextlib.asynccontextmanager
async def gateway_replica(settings: Settings) -> AsyncIterator[GatewayReplica]:
    deps = Deps(
        settings=settings,
        registry=load_registry(settings),
        readmodel=ReadModel(settings),
        hub=LiveHub(),
    )
    # The limiter on its own: unverified bearer tokens must reach it (auth middleware off;
    # tests/integration/test_auth.py and test_route_roles.py cover authentication).
    app = create_app(deps, own_lifecycle=False, auth=False)
    async with running(deps):
        yield GatewayReplica(deps, app)


def flush_prefix(prefix: str, url: str = SHARED_REDIS) -> None:
    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(f"{prefix}:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


async def wait_for(check: Any, timeout: float = 5.0, interval: float = 0.05) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await check()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not true within {timeout}s: {value!r}")
        await asyncio.sleep(interval)
