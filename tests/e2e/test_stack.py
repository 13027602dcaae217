"""End to end: `aragora serve` as processes, debates over HTTP and WebSocket."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from aragora.agent_runner.providers.demo import topic_is_agreeable
from tests.conftest import PG_URL
from tests.e2e.conftest import assert_exactly_once
from tests.e2e.stack import Stack, alive
from tests.plugins.fake_provider import FakeProviderProcess

pytestmark = pytest.mark.e2e


def test_a_debate_runs_to_consensus_over_http_and_websocket(stack: Stack) -> None:
    debate_id = stack.post_debate(
        topic="Should we adopt a 4-day work week?", agents=["demo-1", "demo-2", "demo-3"]
    )
    streamed = stack.stream(debate_id, since=0)
    assert_exactly_once(streamed)
    view = stack.debate(debate_id)
    assert view["status"] in ("consensus", "no_consensus")
    assert view["completed_at"] is not None
    phases = {(t["round"], t["phase"]) for t in view["turns"]}
    assert {"propose", "critique", "revise", "vote", "synthesis"} == {p for _, p in phases}
    assert all(t["status"] == "completed" for t in view["turns"])
    assert len(view["votes"]) == 3
    assert view["proof"]["checksum"]
    assert view["synthesis"]
    consensus = view["consensus"]
    assert set(consensus) >= {"reached", "agreement_ratio", "confidence", "answer"}
    assert set(consensus["supporters"]) | set(consensus["dissenters"]) == set(view["agents"])
    # The REST replay is the same record the socket streamed, and `after` pages it.
    assert stack.events(debate_id) == streamed
    assert [e["seq"] for e in stack.events(debate_id, after=10)][:2] == [11, 12]
    # Resuming the stream from a seq replays only what follows, on the API port too.
    tail = stack.stream(debate_id, since=len(streamed) - 2, port=stack.api_port)
    assert tail == streamed[-2:]


def test_both_outcomes_happen_and_statuses_filter(stack: Stack) -> None:
    topics = [f"Topic number {i}: should we do thing {i}?" for i in range(40)]
    agreeable = next(t for t in topics if topic_is_agreeable(t, 0))
    contentious = next(t for t in topics if not topic_is_agreeable(t, 0))
    ids = {
        "consensus": stack.post_debate(topic=agreeable, rounds=1),
        "no_consensus": stack.post_debate(topic=contentious, rounds=1),
    }
    for expected, debate_id in ids.items():
        view = stack.wait_finished(debate_id)
        assert view["status"] == expected, view
        assert_exactly_once(stack.events(debate_id))
    listed = stack.http.get(f"{stack.url}/api/debates", params={"status": "no_consensus"}).json()
    assert ids["no_consensus"] in [d["id"] for d in listed["debates"]]
    assert all(d["status"] == "no_consensus" for d in listed["debates"])


def test_aragora_ask_streams_the_debate_live_and_exits_zero(stack: Stack) -> None:
    result = subprocess.run(
        [
            *(sys.executable, "-m", "aragora.cli", "ask", "Is coffee better than tea?"),
            *("--rounds", "1", "--url", stack.url),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        # No token given: the CLI finds the one `aragora serve` keeps in the data dir.
        env={**os.environ, "ARAGORA_DATA_DIR": str(stack.data_dir)},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "demo-1" in result.stdout
    assert "vote" in result.stdout.lower()


def test_health_reports_real_checks(stack: Stack) -> None:
    health = stack.http.get(f"{stack.url}/api/health").json()
    assert health["status"] == "healthy"
    assert health["checks"]["database"]["status"] == "ok"
    assert health["checks"]["nats"]["status"] == "ok"
    assert health["mode"] == "demo"


def test_kill_9_of_the_orchestrator_mid_debate_still_ends_once(tmp_path: Path) -> None:
    stack = Stack(tmp_path, env={"ARAGORA_DEMO_LATENCY_MS": "250"}).start()
    try:
        debate_id = stack.post_debate(topic="Will this survive a crash?", rounds=3)
        deadline = time.monotonic() + 30
        while len(stack.events(debate_id)) < 8:
            assert time.monotonic() < deadline, stack.log()
            time.sleep(0.05)
        orchestrator = stack.service_pids()["orchestrator"]
        os.kill(orchestrator, signal.SIGKILL)
        view = stack.wait_finished(debate_id, timeout=90)
        assert stack.service_pids()["orchestrator"] != orchestrator  # it was restarted
        assert view["status"] in ("consensus", "no_consensus"), view
        assert_exactly_once(stack.events(debate_id))
    finally:
        stack.stop()


def test_openai_compatible_agents_debate_through_the_fake_provider(
    tmp_path: Path, fake_provider: FakeProviderProcess
) -> None:
    agents_file = tmp_path / "agents.toml"
    agents_file.write_text(
        "default = ['gpt-a', 'gpt-b']\n"
        + "".join(
            f"[[agents]]\nname = '{name}'\nprovider = 'openai-compatible'\n"
            f"model = 'fake-model'\nbase_url = '{fake_provider.base_url}'\n"
            for name in ("gpt-a", "gpt-b")
        )
    )
    stack = Stack(tmp_path, env={"ARAGORA_AGENTS_FILE": str(agents_file)}).start()
    try:
        agents = stack.http.get(f"{stack.url}/api/agents").json()
        assert agents["mode"] == "providers"
        debate_id = stack.post_debate(topic="Is HTTP/3 worth it?", rounds=1)
        view = stack.wait_finished(debate_id)
        assert view["agents"] == ["gpt-a", "gpt-b"]
        assert view["status"] == "consensus", view
        assert all(t["model"] for t in view["turns"])
        assert fake_provider.stats()["requests"] == 2 * 3 + 2 + 1  # turns, votes, synthesis
    finally:
        stack.stop()


def test_postgresql_event_store_end_to_end(tmp_path: Path, pg_schema: str) -> None:
    stack = Stack(
        tmp_path, env={"ARAGORA_DATABASE_URL": PG_URL, "ARAGORA_DATABASE_SCHEMA": pg_schema}
    ).start()
    try:
        debate_id = stack.post_debate(topic="Is PostgreSQL the record?", rounds=1)
        stack.wait_finished(debate_id)
        assert_exactly_once(stack.events(debate_id))
        with psycopg.connect(PG_URL) as conn:
            stored = conn.execute(
                f'SELECT count(*) FROM "{pg_schema}".aragora_events WHERE originator_id = %s',
                (debate_id,),
            ).fetchone()
        assert stored is not None
        assert stored[0] == len(stack.events(debate_id))
    finally:
        stack.stop()


def test_sigterm_stops_every_process_and_a_restart_keeps_the_history(tmp_path: Path) -> None:
    stack = Stack(tmp_path).start()
    debate_id = stack.post_debate(topic="Does history survive a restart?", rounds=1)
    stack.wait_finished(debate_id)
    pids = stack.service_pids()
    assert set(pids) == {"orchestrator", "agent_runner", "gateway", "nats"}
    assert stack.stop() == 0
    assert not [name for name, pid in pids.items() if alive(pid)]

    again = Stack(tmp_path)
    again.api_port, again.ws_port, again.nats_port = stack.api_port, stack.ws_port, stack.nats_port
    again.env["ARAGORA_NATS_PORT"] = str(stack.nats_port)
    again.start()
    try:
        assert again.debate(debate_id)["status"] != "running"
        assert_exactly_once(again.events(debate_id))
    finally:
        again.stop()


def test_the_documented_subscriber_script_follows_debates_from_outside(stack: Stack) -> None:
    debate_id = stack.post_debate(topic="Can outsiders follow along?", rounds=1)
    stack.wait_finished(debate_id)
    count = len(stack.events(debate_id))
    everything = stack.http.get(f"{stack.url}/api/debates", params={"limit": 500}).json()["debates"]
    total = sum(d["last_seq"] for d in everything)
    script = Path(__file__).parent.parent.parent / "docs" / "examples" / "subscribe.py"
    nats_url = f"nats://127.0.0.1:{stack.nats_port}"
    out = subprocess.run(
        [sys.executable, str(script), nats_url, str(total)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    lines = [line for line in out.stdout.splitlines() if line.startswith(debate_id[:8])]
    assert len(lines) == count
    assert "debate.completed" in lines[-1]
