"""``aragora ask`` against a small real gateway (Litestar + uvicorn, in a background thread).

The fake gateway implements the public contract: ``POST /api/debates`` and the WebSocket
``/ws/debates/{id}?since=<seq>`` replaying a recorded debate (with heartbeats in between).
Scenarios are chosen by topic: ``fail`` -> the debate fails; ``drop`` -> the socket drops
once mid-stream (and the replay after reconnect overlaps, to prove de-duplication);
``dead`` -> the socket always drops. ``--agents nobody`` is rejected with a 400.
"""

from __future__ import annotations

import argparse
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
import uvicorn
from litestar import Litestar, WebSocket, post, websocket
from litestar.exceptions import ValidationException
from litestar.params import FromPath, FromQuery, JSONBody

from aragora.cli import ask
from aragora.cli.client import Backoff, GatewayError, follow_debate
from aragora.contracts.codec import to_builtins
from aragora.contracts.messages import (
    Consensus,
    DebateCompleted,
    DebateCreated,
    DebateEvent,
    DebateFailed,
    PhaseStarted,
    RoundStarted,
    TurnCompleted,
    TurnFailed,
    TurnSpec,
    Vote,
)

AGENTS = ["demo-1", "demo-2"]
DROP_AFTER_SEQ = 5
HEARTBEAT = json.dumps({"type": "stream.heartbeat", "at": "2025-01-01T00:00:00Z"})


# --- a recorded debate ------------------------------------------------------------------------


def _recorded(debate_id: str, topic: str, *, fail: bool) -> list[dict[str, Any]]:
    """One round between two agents, as wire JSON objects; optionally ending in failure."""
    events: list[DebateEvent] = []

    def add(cls: Any, **fields: Any) -> None:
        seq = len(events) + 1
        envelope = {
            "event_id": f"{debate_id}-{seq}",
            "occurred_at": datetime(2025, 1, 1, tzinfo=UTC),
            "correlation_id": debate_id,
            "debate_id": debate_id,
            "seq": seq,
        }
        events.append(cls(**envelope, **fields))

    add(DebateCreated, topic=topic, agents=AGENTS, rounds=1, consensus="majority", threshold=0.6)
    add(RoundStarted, round=1)
    for phase in ("propose", "critique", "revise"):
        turns = [TurnSpec(turn_id=f"{phase}-{a}", agent=a, stance="neutral") for a in AGENTS]
        add(PhaseStarted, round=1, phase=phase, turns=turns)
        for agent in AGENTS:
            turn = {"turn_id": f"{phase}-{agent}", "round": 1, "phase": phase, "agent": agent}
            if fail and phase == "critique":
                add(TurnFailed, **turn, reason="provider_error", detail="HTTP 503")
            else:
                add(TurnCompleted, **turn, content=f"{agent} {phase}: [red]x[/red]")
        if fail and phase == "critique":
            add(DebateFailed, status="failed", reason="every critique failed")
            return [to_builtins(e) for e in events]
    turns = [TurnSpec(turn_id=f"vote-{a}", agent=a, stance="neutral") for a in AGENTS]
    add(PhaseStarted, round=1, phase="vote", turns=turns)
    for agent in AGENTS:
        vote = Vote(choice="demo-2", confidence=0.9, reasoning="better argued")
        add(
            TurnCompleted,
            turn_id=f"vote-{agent}",
            round=1,
            phase="vote",
            agent=agent,
            content="",
            vote=vote,
        )
    consensus = Consensus(
        reached=True,
        agreement_ratio=1.0,
        confidence=0.9,
        threshold=0.6,
        winner="demo-2",
        answer="Spaces, four of them.",
        supporters=AGENTS,
        dissenters=[],
    )
    add(DebateCompleted, status="consensus", consensus=consensus)
    return [to_builtins(e) for e in events]


# --- the fake gateway -------------------------------------------------------------------------


@dataclass
class FakeGateway:
    """State shared with the server thread: debates, scenarios and what clients asked for."""

    url: str = ""
    debates: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    drops_left: dict[str, int] = field(default_factory=dict)
    always_drop: set[str] = field(default_factory=set)
    connections: list[tuple[str, int]] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)

    def app(self) -> Litestar:
        @post("/api/debates", status_code=202)
        async def create(data: JSONBody[dict[str, Any]]) -> dict[str, Any]:
            self.requests.append(data)
            topic = str(data.get("topic", "")).strip()
            if not topic:
                raise ValidationException(detail="topic must not be empty")
            unknown = [a for a in data.get("agents", []) if a.startswith("nobody")]
            if unknown:
                raise ValidationException(
                    detail="unknown agents", extra={"unknown": unknown, "known": AGENTS}
                )
            debate_id = f"d{len(self.debates) + 1}"
            self.debates[debate_id] = _recorded(debate_id, topic, fail="fail" in topic)
            if "drop" in topic:
                self.drops_left[debate_id] = 1
            if "dead" in topic:
                self.always_drop.add(debate_id)
            return {"id": debate_id, "status": "running"}

        @websocket("/ws/debates/{debate_id:str}")
        async def stream(
            socket: WebSocket[Any, Any, Any], debate_id: FromPath[str], since: FromQuery[int] = 0
        ) -> None:
            self.connections.append((debate_id, since))
            if debate_id not in self.debates:
                await socket.close(code=4404)  # before accept: the handshake gets HTTP 403
                return
            await socket.accept()
            if debate_id in self.always_drop:
                await socket.close(code=1011)
                return
            events = self.debates[debate_id]
            replay_from = since
            if since:
                replay_from = max(since - 2, 0)  # overlap: the client must skip duplicates
            await socket.send_text(HEARTBEAT)
            for event in events:
                if event["seq"] <= replay_from:
                    continue
                await socket.send_text(json.dumps(event))
                if event["seq"] == 3:
                    await socket.send_text(HEARTBEAT)
                if event["seq"] == DROP_AFTER_SEQ and self.drops_left.get(debate_id, 0) > 0:
                    self.drops_left[debate_id] -= 1
                    await socket.close(code=1011)
                    return
            await socket.close(code=1000)

        return Litestar(route_handlers=[create, stream], debug=False)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def gateway() -> Iterator[FakeGateway]:
    state = FakeGateway()
    port = _free_port()
    config = uvicorn.Config(
        state.app(), host="127.0.0.1", port=port, log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive(), "the fake gateway did not start"
        assert time.monotonic() < deadline, "the fake gateway did not start in time"
        time.sleep(0.01)
    state.url = f"http://127.0.0.1:{port}"
    yield state
    server.should_exit = True
    thread.join(timeout=5)


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="aragora")
    sub = parser.add_subparsers(dest="command", required=True)
    ask.add_parser(sub)
    return parser.parse_args(["ask", *argv])


def _run(*argv: str) -> int:
    args = _args(*argv)
    code: int = args.func(args)
    return code


# --- tests ------------------------------------------------------------------------------------


def test_completed_debate_streams_plain_lines_and_exits_0(
    gateway: FakeGateway, capsys: pytest.CaptureFixture[str]
) -> None:
    code = _run(
        "Tabs or spaces?", "--agents", "demo-1,demo-2", "--rounds", "1", "--url", gateway.url
    )
    out = capsys.readouterr().out
    assert code == 0
    assert gateway.requests[-1] == {"topic": "Tabs or spaces?", "agents": AGENTS, "rounds": 1}
    assert "Topic: Tabs or spaces?" in out
    assert "== Round 1 ==" in out
    assert "demo-1 [propose, round 1]: demo-1 propose: [red]x[/red]" in out
    assert "demo-1 [vote, round 1] votes -> demo-2 (confidence 0.90): better argued" in out
    assert "Consensus reached" in out
    assert "Winner: demo-2" in out
    assert "Answer: Spaces, four of them." in out
    assert "heartbeat" not in out


def test_failed_debate_exits_1(gateway: FakeGateway, capsys: pytest.CaptureFixture[str]) -> None:
    code = _run("this will fail", "--url", gateway.url)
    out = capsys.readouterr().out
    assert code == 1
    assert "x demo-2 [critique, round 1] failed: provider_error - HTTP 503" in out
    assert "Debate failed" in out
    assert "Reason: every critique failed" in out
    assert "agents" not in gateway.requests[-1]
    assert "rounds" not in gateway.requests[-1]


def test_json_prints_one_event_per_line(
    gateway: FakeGateway, capsys: pytest.CaptureFixture[str]
) -> None:
    code = _run("json please", "--json", "--url", gateway.url)
    lines = capsys.readouterr().out.splitlines()
    assert code == 0
    events = [json.loads(line) for line in lines]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert events[0]["type"] == "debate.created"
    assert events[-1]["type"] == "debate.completed"
    assert events[-1]["consensus"]["winner"] == "demo-2"
    assert all(e["type"].startswith("debate.") for e in events)


def test_reconnects_after_a_drop_without_duplicates(
    gateway: FakeGateway, capsys: pytest.CaptureFixture[str]
) -> None:
    code = _run("drop me once", "--json", "--url", gateway.url)
    captured = capsys.readouterr()
    assert code == 0
    seqs = [json.loads(line)["seq"] for line in captured.out.splitlines()]
    total = len(gateway.debates["d" + str(len(gateway.debates))])
    assert seqs == list(range(1, total + 1))
    debate_id = f"d{len(gateway.debates)}"
    assert [since for d, since in gateway.connections if d == debate_id] == [0, DROP_AFTER_SEQ]
    assert "reconnecting" in captured.err


def test_reconnect_in_plain_mode_shows_each_turn_once(
    gateway: FakeGateway, capsys: pytest.CaptureFixture[str]
) -> None:
    code = _run("drop me in plain", "--url", gateway.url)
    out = capsys.readouterr().out
    assert code == 0
    assert out.count("demo-1 [propose, round 1]") == 1
    assert out.count("demo-2 [propose, round 1]") == 1
    assert out.count("== Round 1 ==") == 1


def test_gives_up_when_the_stream_keeps_dropping(
    gateway: FakeGateway, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        ask, "RECONNECT_BACKOFF", Backoff(initial=0.01, maximum=0.05, give_up_after=0.3)
    )
    code = _run("dead stream", "--url", gateway.url)
    err = capsys.readouterr().err
    assert code == 2
    assert "lost the event stream" in err


def test_bad_request_prints_detail_and_extra_and_exits_2(
    gateway: FakeGateway, capsys: pytest.CaptureFixture[str]
) -> None:
    code = _run("Who?", "--agents", "demo-1,nobody-9", "--url", gateway.url)
    err = capsys.readouterr().err
    assert code == 2
    assert "HTTP 400" in err
    assert "unknown agents" in err
    assert "nobody-9" in err


def test_blank_question_is_rejected_locally(capsys: pytest.CaptureFixture[str]) -> None:
    assert _run("   ", "--url", "http://127.0.0.1:9") == 2
    assert "must not be empty" in capsys.readouterr().err


def test_unreachable_gateway_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{_free_port()}"
    assert _run("anyone there?", "--url", url) == 2
    err = capsys.readouterr().err
    assert f"cannot reach the Aragora gateway at {url}" in err
    assert "make serve" in err


def test_url_comes_from_the_environment(
    gateway: FakeGateway, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARAGORA_URL", gateway.url + "/")
    assert _run("from env") == 0
    assert "Consensus reached" in capsys.readouterr().out


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["q", "--rounds", "0"], ["q", "--rounds", "x"], ["q", "--agents", ","]):
        with pytest.raises(SystemExit) as exc:
            _run(*argv)
        assert exc.value.code == 2, argv
        capsys.readouterr()
    assert _run("q", "--url", "localhost:8080") == 2
    assert "must be http(s)://" in capsys.readouterr().err


def test_live_terminal_view(
    gateway: FakeGateway, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.delenv("NO_COLOR", raising=False)
    code = _run("live view", "--url", gateway.url)
    out = capsys.readouterr().out
    assert code == 0
    assert "live view" in out
    assert "[red]x[/red]" in out
    assert "Consensus reached" in out
    assert "╭" in out  # the outcome panel


async def test_unknown_debate_stream_is_refused(gateway: FakeGateway) -> None:
    stream = follow_debate(gateway.url, "no-such-debate", backoff=Backoff(give_up_after=1))
    with pytest.raises(GatewayError):
        async for _ in stream:
            pass
