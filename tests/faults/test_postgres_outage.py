"""Fault injection: PostgreSQL becomes unreachable for 10 s while debates run.

Every service reaches PostgreSQL only through a :class:`TcpProxy` the test cuts (open
connections dropped, new ones blackholed: a partition, or a hung server) and later
restores, without restarting anything. What must hold:

* the gateway reports the outage (health ``degraded``, database ``error``) within seconds,
  and refuses new debates fast with a clean 503 instead of hanging or answering 500;
* after the database is back, health recovers and every debate the API accepted (202)
  finishes exactly once, with no service restarted; a new debate also completes.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import pytest

from tests.conftest import PG_URL
from tests.e2e.conftest import TERMINAL, assert_exactly_once
from tests.e2e.stack import Stack
from tests.faults.proxy import TcpProxy

pytestmark = pytest.mark.faults

OUTAGE_SECONDS = 10.0
ROUNDS = 6  # long enough (~5 s of 100 ms turns) to be mid-run when the cut comes


def _health(stack: Stack) -> tuple[dict[str, Any], float]:
    started = time.monotonic()
    response = stack.http.get(f"{stack.url}/api/health", timeout=15)
    body: dict[str, Any] = response.json()
    return body, time.monotonic() - started


def _wait_database(stack: Stack, status: str, within: float) -> tuple[dict[str, Any], float]:
    """Poll health until checks.database.status is ``status``; (body, seconds taken)."""
    started = time.monotonic()
    body: dict[str, Any] = {}
    while time.monotonic() - started < within:
        body, _ = _health(stack)
        if body["checks"]["database"]["status"] == status:
            return body, time.monotonic() - started
        time.sleep(0.2)
    raise AssertionError(f"database not {status!r} within {within}s: {body}\n{stack.log()}")


def _post(stack: Stack, topic: str) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = stack.http.post(
        f"{stack.url}/api/debates", json={"topic": topic, "rounds": ROUNDS}, timeout=30
    )
    return response, time.monotonic() - started


def _assert_clean_503(response: httpx.Response, elapsed: float) -> None:
    assert response.status_code == 503, response.text
    assert elapsed < 5.0, f"POST took {elapsed:.1f}s to fail"
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers.get("retry-after")
    body = response.json()
    assert "database is unavailable" in body["detail"], body
    assert body["correlation_id"] == response.headers["x-correlation-id"]
    text = response.text.lower()
    for leak in ("traceback", "postgresql://", "psycopg", "pool", "password", "127.0.0.1"):
        assert leak not in text, response.text


def _events_when_finished(stack: Stack, debate_id: str, timeout: float) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    events: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        events = stack.events(debate_id)
        if events and events[-1]["type"] in TERMINAL:
            return events
        time.sleep(0.25)
    raise AssertionError(f"debate {debate_id} did not finish: last {events[-1:]}\n{stack.log()}")


def test_debates_survive_a_postgres_outage_without_restarts(tmp_path: Path, pg_schema: str) -> None:
    upstream = urlparse(PG_URL)
    with TcpProxy(upstream.port or 5432, upstream.hostname or "127.0.0.1") as proxy:
        netloc = upstream.netloc.rsplit("@", 1)[0] + f"@127.0.0.1:{proxy.port}"
        stack = Stack(
            tmp_path,
            env={
                "ARAGORA_DATABASE_URL": upstream._replace(netloc=netloc).geturl(),
                "ARAGORA_DATABASE_SCHEMA": pg_schema,
                "ARAGORA_DEMO_LATENCY_MS": "100",
            },
        ).start()
        try:
            pids = stack.service_pids()
            assert set(pids) == {"orchestrator", "agent_runner", "gateway", "nats"}
            assert _health(stack)[0]["status"] == "healthy"
            assert proxy.connections > 0  # the services really talk to PostgreSQL through it
            before = [stack.post_debate(topic=f"Before #{i}?", rounds=ROUNDS) for i in range(3)]
            deadline = time.monotonic() + 20
            while not all(len(stack.events(d)) >= 3 for d in before):  # each one under way
                assert time.monotonic() < deadline, stack.log()
                time.sleep(0.1)
            assert all(stack.debate(d)["status"] == "running" for d in before)

            # --- outage -----------------------------------------------------------------
            proxy.cut("blackhole")
            cut_at = time.monotonic()
            health, took = _wait_database(stack, "error", within=6.0)
            assert health["status"] == "degraded", health
            assert health["checks"]["nats"]["status"] == "ok", health
            health, took = _health(stack)  # still answering quickly while it lasts
            assert health["checks"]["database"]["status"] == "error", health
            assert took < 4.0, f"health took {took:.1f}s during the outage"

            accepted: list[str] = []
            response, elapsed = _post(stack, "During the outage?")
            _assert_clean_503(response, elapsed)
            while time.monotonic() - cut_at < OUTAGE_SECONDS - 1.5:
                response, elapsed = _post(stack, f"During the outage #{len(accepted)}?")
                if response.status_code == 202:  # acked: it must not be lost
                    accepted.append(response.json()["id"])
                else:
                    _assert_clean_503(response, elapsed)
                time.sleep(0.5)
            time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - cut_at)))

            # --- recovery, with nothing restarted ---------------------------------------
            proxy.restore()
            _wait_database(stack, "ok", within=15.0)
            assert _health(stack)[0]["status"] == "healthy"
            assert stack.service_pids() == pids, "a service was restarted"

            after = stack.post_debate(topic="After the outage?", rounds=1)
            for debate_id in [*before, *accepted, after]:
                events = _events_when_finished(stack, debate_id, timeout=45)
                assert_exactly_once(events)
                view = stack.debate(debate_id)
                assert view["status"] in ("consensus", "no_consensus"), view["status"]
                assert view["last_seq"] == len(events)
            assert stack.service_pids() == pids, "a service was restarted"
        finally:
            code = stack.stop()
        assert code == 0, stack.log()
