"""Health endpoints of the services without an API (aragora.runtime.health).

The orchestrator, agent-runner, ratelimit and audit services run in this process as their
``app.run`` wires them, against a real nats-server (and the machine's Redis for the
ratelimit service), each serving its port.
Liveness must stay 200 through a NATS outage; readiness goes 503 and comes back.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest

from aragora.agent_runner.app import run as run_agent_runner
from aragora.audit.app import run as run_audit
from aragora.orchestrator.app import run as run_orchestrator
from aragora.ratelimit.app import run as run_ratelimit
from aragora.runtime import health
from aragora.runtime.natsserver import EmbeddedNats, free_port
from aragora.runtime.settings import Settings
from tests.conftest import make_settings
from tests.integration.gateway_harness import eventually

pytestmark = pytest.mark.integration

Main = Callable[[Settings, asyncio.Event], Coroutine[Any, Any, None]]
Answer = tuple[int, dict[str, Any]]
SERVICES: dict[str, tuple[Main, set[str]]] = {
    "orchestrator": (
        run_orchestrator,
        {"nats", "jetstream", "event_store"}
        | {"consumer:orchestrator-commands", "consumer:orchestrator-agent-events"},
    ),
    "agent-runner": (run_agent_runner, {"nats", "jetstream", "consumer:agent-runner"}),
    "ratelimit": (run_ratelimit, {"nats", "rpc", "redis"}),
    "audit": (run_audit, {"nats", "jetstream", "audit_store", "consumer:audit"}),
}


@contextlib.asynccontextmanager
async def running(settings: Settings, *mains: Main) -> AsyncIterator[None]:
    stop = asyncio.Event()
    tasks = [asyncio.create_task(main(settings, stop)) for main in mains]
    try:
        yield
    finally:
        stop.set()
        results = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 60)
        assert not [r for r in results if isinstance(r, BaseException)], results


async def get(client: httpx.AsyncClient, url: str) -> Answer:
    response = await client.get(url, timeout=10)
    body: dict[str, Any] = response.json()
    return response.status_code, body


def answered(status: int) -> Callable[[Answer], bool]:
    return lambda answer: answer[0] == status


async def test_each_service_is_live_and_ready_and_not_ready_while_nats_is_down(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    ports = {name: free_port() for name in SERVICES}
    settings = make_settings(
        tmp_path,
        nats_url=nats_server.url,
        orchestrator_metrics_port=ports["orchestrator"],
        agent_runner_metrics_port=ports["agent-runner"],
        ratelimit_metrics_port=ports["ratelimit"],
        audit_metrics_port=ports["audit"],
        enable_redis_rate_limit=True,
        redis_url="redis://127.0.0.1:6379/0",
        rate_limit_prefix=f"aragora-test:{uuid.uuid4().hex[:12]}",
    )
    base = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    mains = [main for main, _ in SERVICES.values()]
    async with running(settings, *mains), httpx.AsyncClient() as client:
        for name, (_, checks) in SERVICES.items():
            status, body = await eventually(
                partial(get, client, f"{base[name]}/readyz"), answered(200), 30
            )
            assert body["status"] == "ready", body
            assert (body["service"], body["version"]) == (name, "0.1.0")
            assert body["instance"].startswith(f"{name}-")  # no ARAGORA_INSTANCE_ID here
            assert set(body["checks"]) == checks, body
            for check in body["checks"].values():
                assert check["status"] == "ok" and check["latency_ms"] >= 0, body
            assert (await get(client, f"{base[name]}/health")) [0] == 200  # fmt: skip
            status, live = await get(client, f"{base[name]}/healthz")
            assert (status, live["status"], live["service"]) == (200, "ok", name)
            metrics = await client.get(f"{base[name]}/metrics")
            assert metrics.status_code == 200 and "process_resident_memory_bytes" in metrics.text
        orchestrator = (await get(client, f"{base['orchestrator']}/readyz"))[1]["checks"]
        assert orchestrator["event_store"]["backend"] == "sqlite"
        audit = (await get(client, f"{base['audit']}/readyz"))[1]["checks"]["audit_store"]
        assert (audit["backend"], audit["last_seq"]) == ("sqlite", 0), audit
        redis = (await get(client, f"{base['ratelimit']}/readyz"))[1]["checks"]["redis"]
        assert (redis["status"], redis["backend"]) == ("ok", "redis"), redis

        nats_server.stop()
        for name in SERVICES:
            status, body = await eventually(
                partial(get, client, f"{base[name]}/readyz"), answered(503), 30
            )
            assert body["status"] == "not_ready", body
            assert body["checks"]["nats"]["status"] == "error", body
            status, live = await get(client, f"{base[name]}/healthz")
            assert (status, live["status"]) == (200, "ok"), live

        nats_server.start()
        for name in SERVICES:
            status, body = await eventually(
                partial(get, client, f"{base[name]}/readyz"), answered(200), 30
            )
            assert {c["status"] for c in body["checks"].values()} == {"ok"}, body


async def test_ratelimit_without_redis_is_ready_but_degraded(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    port = free_port()
    settings = make_settings(
        tmp_path,
        nats_url=nats_server.url,
        ratelimit_metrics_port=port,
        enable_redis_rate_limit=True,
        redis_url=f"redis://127.0.0.1:{free_port()}/0",  # nothing listens there
    )
    async with running(settings, run_ratelimit), httpx.AsyncClient() as client:
        status, body = await eventually(
            lambda: get(client, f"http://127.0.0.1:{port}/readyz"),
            lambda r: bool(r[1]["checks"]),
            30,
        )
        assert (status, body["status"]) == (200, "degraded"), body
        redis = body["checks"]["redis"]
        assert redis["status"] == "degraded" and redis["error"], redis
        assert "redis://" not in str(body)  # the URL never reaches the body
        assert body["checks"]["nats"]["status"] == "ok"


async def test_a_stuck_event_loop_fails_liveness_and_readiness(tmp_path: Path) -> None:
    port = free_port()
    settings = make_settings(tmp_path, metrics_enabled=False)
    url = f"http://127.0.0.1:{port}"
    async with health.serving(settings, "orchestrator", port=port) as probe:
        probe.stall_after, probe.check_timeout = 0.5, 0.2

        async def fine() -> None:
            return None

        probe.ready({"fine": fine})
        async with httpx.AsyncClient() as client:
            assert (await client.get(f"{url}/healthz")).status_code == 200
            assert (await client.get(f"{url}/readyz")).status_code == 200
            # METRICS_ENABLED=false: health is still served, /metrics is not
            assert (await client.get(f"{url}/metrics")).status_code == 404

        seen: dict[str, Any] = {}
        release = threading.Event()

        def probe_while_stuck() -> None:  # the loop is blocked: ask from another thread
            try:
                with httpx.Client(base_url=url, timeout=10) as sync:
                    for _ in range(200):
                        live = sync.get("/healthz")
                        if live.status_code == 503:
                            break
                        time.sleep(0.05)
                    seen["live"] = live
                    seen["ready"] = sync.get("/readyz")
            finally:
                release.set()

        thread = threading.Thread(target=probe_while_stuck)
        thread.start()
        release.wait(30)  # blocks the event loop until the thread has its answers
        thread.join()
        assert seen["live"].status_code == 503, seen["live"].text
        assert seen["live"].json()["status"] == "stalled"
        assert seen["ready"].status_code == 503
        assert seen["ready"].json()["error"] == "the event loop did not run the checks in time"

        async with httpx.AsyncClient() as client:
            await eventually(lambda: client.get(f"{url}/healthz"), lambda r: r.status_code == 200)
            probe.stopping()
            stopping = await client.get(f"{url}/readyz")
            assert (stopping.status_code, stopping.json()["status"]) == (503, "stopping")
