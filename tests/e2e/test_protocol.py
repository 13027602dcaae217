"""End to end: every consensus mode, failure path and early stop with demo agents, the
signed receipt verified offline, the leaderboard, queueing and cancellation."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from aragora.contracts.values import Vote
from aragora.orchestrator import tally
from tests.e2e.conftest import assert_exactly_once
from tests.e2e.stack import Stack

pytestmark = pytest.mark.e2e
TRIO = ["demo-stubborn", "demo-agreeable", "demo-contrarian"]
TOPIC = "Should cities ban cars downtown?"


def debate(stack: Stack, agents: list[str], **protocol: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"topic": TOPIC, "agents": agents, "protocol": protocol}
    view = stack.wait_finished(stack.post_debate(**body))
    assert_exactly_once(stack.events(view["id"]))
    return view


def predicted(view: dict[str, Any]) -> tuple[bool, str | None]:
    """What the pure rules say about the votes the debate recorded."""
    ballots = [
        (v["agent"], Vote(choice=v["choice"], confidence=v["confidence"])) for v in view["votes"]
    ]
    answers = {t["agent"]: t["content"] for t in view["turns"] if t["phase"] == "revise"}
    c = tally.tally(
        agents=view["agents"],
        ballots=ballots,
        candidates=[a for a in view["agents"] if a in answers],
        threshold=view["consensus"]["threshold"],
        answers=answers,
    )
    return c.reached, c.winner


@pytest.mark.parametrize(
    ("mode", "status"),
    [
        ("majority", "consensus"),
        ("supermajority", "consensus"),
        ("unanimous", "no_consensus"),
        ("any", "consensus"),
    ],
)
def test_voting_modes_end_as_the_rules_predict(stack: Stack, mode: str, status: str) -> None:
    # stubborn votes for itself, agreeable for the first candidate (stubborn),
    # contrarian for itself: 2 of 3 for demo-stubborn.
    view = debate(stack, TRIO, consensus=mode, rounds=2)
    assert view["status"] == status
    assert view["consensus"]["method"] == mode
    assert predicted(view) == (status == "consensus", "demo-stubborn")
    assert view["synthesis"]


def test_judge_mode_follows_the_judge(stack: Stack) -> None:
    view = debate(stack, TRIO, consensus="judge", judge_selection="last", rounds=2)
    assert view["judge"]["agent"] == "demo-contrarian"
    assert view["status"] == "consensus"
    assert view["consensus"]["winner"] == view["judge"]["choice"] == "demo-contrarian"
    assert view["consensus"]["confidence"] == pytest.approx(view["judge"]["confidence"])


def test_none_mode_only_synthesises(stack: Stack) -> None:
    view = debate(stack, TRIO, consensus="none", rounds=1)
    assert view["status"] == "no_consensus"
    assert view["votes"] == []
    assert view["synthesis"]
    assert view["ratings"] == []


def test_flaky_agent_failures_are_listed_and_the_debate_goes_on(stack: Stack) -> None:
    view = debate(stack, ["demo-flaky", "demo-1", "demo-2"], rounds=2)
    assert view["status"] in ("consensus", "no_consensus")
    assert view["failures"]
    assert {f["agent"] for f in view["failures"]} == {"demo-flaky"}
    assert {f["reason"] for f in view["failures"]} == {"provider_error"}


def test_a_slow_agent_times_out_and_the_others_carry_on(stack: Stack) -> None:
    view = debate(stack, ["demo-slow", "demo-1", "demo-2"], rounds=1, turn_timeout_seconds=1)
    assert view["status"] == "consensus"
    assert ("demo-slow", "propose", "timeout") in {
        (f["agent"], f["phase"], f["reason"]) for f in view["failures"]
    }
    assert "demo-slow" not in view["consensus"]["supporters"]


def test_stop_votes_end_the_debate_early(stack: Stack) -> None:
    view = debate(stack, ["demo-stubborn", "demo-agreeable", "demo-1"], rounds=5)
    stops = [c for c in view["convergence"] if c["early_stop"]]
    assert stops
    assert view["reason"].startswith(f"early stop in round {stops[0]['round']}")
    assert max(t["round"] for t in view["turns"]) < 5


def test_insufficient_participation_fails_the_debate(stack: Stack) -> None:
    view = debate(stack, ["demo-slow", "demo-1"], rounds=1, turn_timeout_seconds=1)
    assert view["status"] == "failed"
    assert view["error"].startswith("insufficient_participation")


def test_receipt_verifies_offline_and_one_flipped_byte_fails(stack: Stack, tmp_path: Path) -> None:
    view = debate(stack, TRIO, rounds=1)
    response = stack.http.get(f"{stack.url}/api/debates/{view['id']}/receipt")
    assert response.status_code == 200
    assert response.json()["receipt"]["verdict"] in ("PASS", "CONDITIONAL")
    path = tmp_path / "receipt.json"
    path.write_bytes(response.content)

    def verify() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "aragora.cli", "receipt", "verify", str(path)],
            capture_output=True,
            text=True,
            check=False,
        )

    assert verify().returncode == 0, verify().stdout + verify().stderr
    data = bytearray(response.content)
    position = data.index(b"demo-stubborn")
    data[position] ^= 0x01
    path.write_bytes(bytes(data))
    assert verify().returncode == 1
    html = stack.http.get(
        f"{stack.url}/api/debates/{view['id']}/receipt", params={"format": "html"}
    )
    assert html.headers["content-type"].startswith("text/html")


def test_listing_and_leaderboard_reflect_finished_debates(stack: Stack) -> None:
    debate(stack, TRIO, consensus="unanimous", rounds=1)
    listed = stack.http.get(
        f"{stack.url}/api/debates", params={"status": "no_consensus", "limit": 10}
    )
    assert listed.json()["debates"]
    assert all(d["status"] == "no_consensus" for d in listed.json()["debates"])
    board = stack.http.get(f"{stack.url}/api/agents/leaderboard").json()
    ranked = [row["agent"] for row in board["agents"]]
    assert ranked[0] == "demo-stubborn"  # it won every voting debate above
    agent = stack.http.get(f"{stack.url}/api/agents/demo-stubborn").json()
    assert agent["ratings"]["all"]["games"] >= 1
    assert agent["history"]


def test_excess_debates_queue_in_order_and_can_be_cancelled(tmp_path: Path) -> None:
    stack = Stack(
        tmp_path,
        env={"ARAGORA_MAX_CONCURRENT_DEBATES": "1", "ARAGORA_DEMO_LATENCY_MS": "100"},
    ).start()
    try:
        # One at a time, each seen by the orchestrator before the next: FIFO by arrival.
        # The first runs 3 rounds (about 40 turns of 100 ms): it holds the only slot while
        # the other two arrive, however slow the machine is.
        ids: list[str] = []
        for i, expected in enumerate(("running", "queued", "queued")):
            ids.append(stack.post_debate(topic=f"Queued debate {i}?", rounds=3 if i == 0 else 1))
            deadline = time.monotonic() + 20
            while not (view := stack.debate(ids[-1]))["last_seq"]:
                assert time.monotonic() < deadline, stack.log()
                time.sleep(0.05)
            assert view["status"] == expected, view
        assert stack.debate(ids[1])["queue_position"] == 1
        assert stack.debate(ids[2])["queue_position"] == 2
        cancelled = stack.http.post(f"{stack.url}/api/debates/{ids[2]}/cancel")
        assert cancelled.status_code == 202
        assert stack.wait_finished(ids[2])["status"] == "cancelled"
        for debate_id in ids[:2]:
            assert stack.wait_finished(debate_id)["status"] in ("consensus", "no_consensus")
        events = stack.events(ids[1])
        assert [e["type"] for e in events[:3]] == [
            "debate.created",
            "debate.queued",
            "debate.round_started",
        ]
        again = stack.http.post(f"{stack.url}/api/debates/{ids[2]}/cancel")
        assert again.status_code == 409
    finally:
        stack.stop()


def test_a_debate_past_its_deadline_ends_timeout_and_is_counted(stack: Stack) -> None:
    body = {
        "topic": "Will this run out of time?",
        "agents": ["demo-slow", "demo-1", "demo-2"],
        "protocol": {"debate_timeout_seconds": 1, "rounds": 2},
    }
    view = stack.wait_finished(stack.post_debate(**body))
    assert view["status"] == "timeout"
    assert_exactly_once(stack.events(view["id"]))
    metrics = stack.http.get(f"{stack.url}/api/metrics").text
    assert 'aragora_debates_total{status="timeout"} 1.0' in metrics


def test_ask_takes_protocol_flags(stack: Stack) -> None:
    result = subprocess.run(
        [
            *(sys.executable, "-m", "aragora.cli", "ask", TOPIC, "--url", stack.url),
            *("--agents", ",".join(TRIO), "--preset", "light", "--consensus", "judge"),
        ],
        env={**os.environ, "ARAGORA_DATA_DIR": str(stack.data_dir)},  # the CLI finds the token
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "judge" in result.stdout
    assert "Synthesis:" in result.stdout
