"""Contracts v1: golden JSON per message, tags, subjects, evolution rules, AsyncAPI."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest

from aragora.contracts import codec, subjects
from aragora.contracts.asyncapi import asyncapi_document
from aragora.contracts.messages import (
    AGENT_EVENT_TYPES,
    BREAKER_EVENT_TYPES,
    COMMAND_TYPES,
    DEBATE_EVENT_TYPES,
    LIVE_TYPES,
    AgentBreakerChanged,
    AgentTurnFailed,
    AgentTurnSucceeded,
    CancelDebate,
    Consensus,
    ConvergenceMeasured,
    DebateCompleted,
    DebateCreated,
    DebateFailed,
    DebateQueued,
    PeerMessage,
    PhaseStarted,
    RoundStarted,
    RunTurn,
    StartDebate,
    TokenDelta,
    TurnCompleted,
    TurnFailed,
    TurnSpec,
    Vote,
    tag_of,
)
from aragora.contracts.security import (
    SECURITY_EVENT_TYPES,
    SecurityEvent,
    security_event_subject,
)

GOLDEN = Path(__file__).parent.parent / "golden" / "v1"
T = datetime(2026, 1, 15, 10, 30, tzinfo=UTC)
D = "5b7e3c52-0d6f-4d8e-9a51-6a1b2c3d4e5f"
ENV = {"occurred_at": T, "correlation_id": "corr-xyz789", "causation_id": "cause-1"}
DEB = {**ENV, "debate_id": D}

SAMPLES: list[msgspec.Struct] = [
    DebateCreated(
        **DEB, event_id="e1", seq=1, topic="4-day week?", agents=["demo-1", "demo-2"],
        rounds=3, consensus="majority", threshold=0.6,
    ),
    RoundStarted(**DEB, event_id="e2", seq=2, round=1),
    PhaseStarted(
        **DEB, event_id="e3", seq=3, round=1, phase="propose",
        turns=[TurnSpec(turn_id="t1", agent="demo-1", stance="affirmative")],
    ),
    TurnCompleted(
        **DEB, event_id="e4", seq=4, turn_id="t1", round=3, phase="vote", agent="demo-1",
        content="I pick demo-2", vote=Vote(choice="demo-2", confidence=0.8, reasoning="clear"),
        latency_ms=120, model="demo",
    ),
    TurnFailed(
        **DEB, event_id="e5", seq=5, turn_id="t2", round=1, phase="critique", agent="demo-2",
        reason="timeout", detail="no answer within 60s",
    ),
    DebateCompleted(
        **DEB, event_id="e6", seq=6, status="consensus",
        consensus=Consensus(
            reached=True, agreement_ratio=0.6667, confidence=0.8, threshold=0.6,
            winner="demo-2", answer="Yes, with a pilot.", supporters=["demo-1", "demo-2"],
            dissenters=["demo-3"],
        ),
    ),
    DebateFailed(**DEB, event_id="e7", seq=7, status="timeout", reason="debate exceeded 1800s"),
    DebateQueued(**DEB, event_id="e8", seq=2, position=3),
    ConvergenceMeasured(
        **DEB, event_id="e9", seq=9, round=2, method="tfidf",
        similarities={"demo-1": 0.91, "demo-2": 0.88}, min_similarity=0.88,
        status="converged", stop_share=1.0, early_stop=True, reason="converged",
    ),
    SecurityEvent(
        **ENV, event_id="s1", action="token.revoke", outcome="success", actor="ada@example.org",
        actor_id="u-1", actor_role="admin", actor_kind="user", target="jti-123",
        ip="203.0.113.7", detail={"method": "POST", "path": "/api/admin/revoke-token"},
    ),
    TokenDelta(
        debate_id=D, turn_id="t3", agent="demo-1", round=1, phase="propose", index=2,
        text="a four-day week ", done=False,
    ),
    CancelDebate(**ENV, event_id="c2", debate_id=D, reason="operator"),
    StartDebate(
        **ENV, event_id="c1", debate_id=D, topic="4-day week?", agents=["demo-1", "demo-2"],
        rounds=3,
    ),
    RunTurn(
        **ENV, event_id="t3", turn_id="t3", debate_id=D, round=1, phase="critique",
        agent="demo-1", stance="negative", topic="4-day week?",
        context=[PeerMessage(agent="demo-2", round=1, phase="propose", content="Yes.")],
        timeout_seconds=60.0,
    ),
    AgentTurnSucceeded(
        **ENV, event_id="r1", debate_id=D, turn_id="t3", agent="demo-1", content="Looks weak.",
        latency_ms=150, provider="demo", model="demo", prompt_tokens=10, completion_tokens=5,
    ),
    AgentTurnFailed(
        **ENV, event_id="r2", debate_id=D, turn_id="t4", agent="demo-2", reason="provider_error",
        detail="HTTP 500", latency_ms=30,
    ),
    AgentBreakerChanged(
        **ENV, event_id="b1", agent="demo-2", state="open", previous="closed",
        consecutive_failures=5, opened_at=T, open_until=T, reason="5 consecutive failures",
    ),
]  # fmt: skip


def _decode(data: bytes) -> msgspec.Struct:
    tag = json.loads(data)["type"]
    if tag.startswith("debate."):
        return codec.decode_debate_event(data)
    if tag.startswith("cmd."):
        return codec.decode_command(data)
    if tag == "agent.breaker_changed":
        return codec.decode_breaker_event(data)
    if tag == "agent.token_delta":
        return codec.decode_token_delta(data)
    if tag == "security.event":
        return codec.decode_security_event(data)
    return codec.decode_agent_event(data)


def test_every_message_type_has_a_golden_sample() -> None:
    sampled = {type(s) for s in SAMPLES}
    assert sampled == {
        *DEBATE_EVENT_TYPES,
        *COMMAND_TYPES,
        *AGENT_EVENT_TYPES,
        *BREAKER_EVENT_TYPES,
        *LIVE_TYPES,
        *SECURITY_EVENT_TYPES,
    }


@pytest.mark.parametrize("message", SAMPLES, ids=lambda m: tag_of(type(m)))
def test_golden_json_round_trip(message: msgspec.Struct) -> None:
    path = GOLDEN / f"{tag_of(type(message))}.json"
    encoded = json.dumps(json.loads(codec.encode(message)), indent=2, sort_keys=True) + "\n"
    if os.environ.get("ARAGORA_UPDATE_GOLDEN") == "1":
        path.write_text(encoded)
    assert path.exists(), f"missing golden file {path}; ARAGORA_UPDATE_GOLDEN=1 writes it"
    assert json.loads(path.read_text()) == json.loads(encoded), "wire format changed"
    assert _decode(path.read_bytes()) == message


def test_decoders_ignore_unknown_fields_for_additive_evolution() -> None:
    body = json.loads(codec.encode(SAMPLES[1]))
    body["added_in_v2"] = {"anything": True}
    assert codec.decode_debate_event(json.dumps(body).encode()) == SAMPLES[1]


def test_old_messages_without_new_defaulted_fields_still_decode() -> None:
    body = json.loads(codec.encode(SAMPLES[3]))
    for optional in ("vote", "latency_ms", "model", "causation_id"):
        body.pop(optional)
    event = codec.decode_debate_event(json.dumps(body).encode())
    assert isinstance(event, TurnCompleted)
    assert event.vote is None


def test_tags_are_unique_and_explicit() -> None:
    types = [
        *DEBATE_EVENT_TYPES,
        *COMMAND_TYPES,
        *AGENT_EVENT_TYPES,
        *BREAKER_EVENT_TYPES,
        *LIVE_TYPES,
        *SECURITY_EVENT_TYPES,
    ]
    tags = [tag_of(t) for t in types]
    assert len(set(tags)) == len(tags)
    assert all(tag != t.__name__ for tag, t in zip(tags, types, strict=True))


def test_subjects_follow_the_public_scheme() -> None:
    assert subjects.debate_event_subject(SAMPLES[1]) == f"aragora.evt.debate.{D}.round_started"  # type: ignore[arg-type]
    assert subjects.agent_event_subject(SAMPLES[-2]) == f"aragora.evt.agent.{D}.turn_failed"  # type: ignore[arg-type]
    assert subjects.command_subject(SAMPLES[-4]) == "aragora.cmd.agent.run_turn"  # type: ignore[arg-type]
    assert subjects.EVENTS_STREAM.subjects == ["aragora.evt.>"]
    assert subjects.COMMANDS_STREAM.retention == "workqueue"
    assert subjects.breaker_event_subject("gpt.4 x") == "aragora.evt.agent.breaker.gpt_4_x"
    assert subjects.is_breaker_subject(subjects.breaker_event_subject("demo-1"))
    assert subjects.BREAKERS_BUCKET == "ARAGORA_BREAKERS"
    assert subjects.token_delta_subject(D) == f"aragora.live.debate.{D}.tokens"
    assert subjects.LIVE_TOKENS == "aragora.live.debate.*.tokens"
    assert security_event_subject("auth.login") == "aragora.evt.security.auth.login"
    assert security_event_subject("admin.a b") == "aragora.evt.security.admin.a_b"
    # Token deltas are ephemeral: no JetStream stream may capture (store) them.
    assert not any(
        s.startswith("aragora.live") or s in (">", "aragora.>")
        for spec in subjects.STREAMS
        for s in spec.subjects
    )


def test_asyncapi_documents_every_message_with_a_schema() -> None:
    doc = asyncapi_document("1.2.3")
    assert doc["asyncapi"].startswith("3.")
    messages = doc["components"]["messages"]
    types = (
        *DEBATE_EVENT_TYPES,
        *COMMAND_TYPES,
        *AGENT_EVENT_TYPES,
        *BREAKER_EVENT_TYPES,
        *LIVE_TYPES,
        *SECURITY_EVENT_TYPES,
    )
    for t in types:
        name = tag_of(t).replace(".", "_")
        ref = messages[name]["payload"]["$ref"].rsplit("/", 1)[-1]
        assert ref in doc["components"]["schemas"]
    addresses = {c["address"] for c in doc["channels"].values()}
    assert "aragora.evt.debate.{debate_id}.completed" in addresses
    assert "aragora.cmd.agent.run_turn" in addresses
    assert "aragora.evt.agent.breaker.{agent}" in addresses
    assert "aragora.live.debate.{debate_id}.tokens" in addresses
    assert "aragora.evt.security.{area}.{verb}" in addresses
    assert "headers" not in messages["agent_token_delta"]  # ephemeral: no Nats-Msg-Id
