"""kill -9 the embedded nats-server mid-run: the supervisor brings it back on the same port
with the same store, and the services (not restarted) reconnect and carry on.

Resumption is measured end to end: a debate started just after the restart must run to
its end within 10 s of it, which needs the gateway's publish and read-model consumer, the
orchestrator's consumers and relay, and a runner's consumer all working again.
"""

from __future__ import annotations

import asyncio
import time

import nats
import pytest

from aragora.contracts.subjects import EVENTS_STREAM
from aragora.runtime.natsserver import port_open
from tests.e2e.stack import Stack
from tests.faults.conftest import (
    StackFactory,
    assert_all_exactly_once,
    post_debates,
    wait_all_finished,
    wait_for,
)

pytestmark = [pytest.mark.faults, pytest.mark.timeout(240)]

RESUME_WITHIN = 10.0


def events_stream_last_seq(stack: Stack) -> int:
    async def ask() -> int:
        nc = await nats.connect(f"nats://127.0.0.1:{stack.nats_port}", connect_timeout=5)
        try:
            info = await nc.jetstream().stream_info(EVENTS_STREAM.name)
            last: int = info.state.last_seq
            return last
        finally:
            await nc.close()

    return asyncio.run(ask())


def test_services_ride_out_a_nats_restart_without_being_restarted(
    stack_factory: StackFactory,
) -> None:
    stack = stack_factory()
    ids = post_debates(stack, 20, rounds=3)
    wait_for(lambda: all(len(stack.events(d)) >= 4 for d in ids), 60, "debates under way", stack)
    services = {k: v for k, v in stack.named_pids().items() if k != "nats"}
    assert set(services) == {"orchestrator", "agent-runner", "ratelimit", "audit", "gateway"}, (
        services
    )
    stored_before = events_stream_last_seq(stack)

    old_nats = stack.kill("nats")
    killed_at = time.monotonic()
    new_nats = stack.wait_restarted("nats", old_nats, timeout=30)
    wait_for(lambda: port_open("127.0.0.1", stack.nats_port), 30, "nats on its port", stack)
    restarted_at = time.monotonic()
    print(f"nats-server back on its port {restarted_at - killed_at:.1f}s after the kill")
    assert "nats-server exited with -9" in stack.log_path.read_text()

    # A new debate, started as soon as the gateway takes one, ends within the bound.
    probe: list[str] = []

    def start_probe() -> bool:
        response = stack.http.post(
            f"{stack.url}/api/debates",
            json={"topic": "Probe: should services reconnect by themselves?", "rounds": 1},
            timeout=5,
        )
        if response.status_code == 202:
            probe.append(response.json()["id"])
        return bool(probe)

    wait_for(start_probe, RESUME_WITHIN, "gateway accepting debates after the restart", stack)

    def probe_resumed() -> bool:
        # A turn recorded for the probe crossed every hop: gateway -> command -> orchestrator
        # -> store -> relay -> runner -> result -> orchestrator -> relay -> gateway.
        events = stack.events(probe[0])
        return any(e["type"] in ("debate.turn_completed", "debate.turn_failed") for e in events)

    remaining = RESUME_WITHIN - (time.monotonic() - restarted_at)
    wait_for(probe_resumed, remaining, "probe debate resuming", stack)
    resumed = time.monotonic() - restarted_at
    print(f"nats-server {old_nats} -> {new_nats}; a new debate crossed every service "
          f"{resumed:.1f}s after the restart")  # fmt: skip
    assert resumed <= RESUME_WITHIN

    # Same store: the stream kept what it held before the crash.
    assert events_stream_last_seq(stack) >= stored_before
    wait_all_finished(stack, ids, timeout=150)
    print(f"all debates over {time.monotonic() - restarted_at:.1f}s after the restart")
    assert_all_exactly_once(stack, [*ids, *probe])
    # Nobody was restarted: they reconnected.
    assert {k: v for k, v in stack.named_pids().items() if k != "nats"} == services
