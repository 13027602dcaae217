"""The debug request/reply contract: subjects, explicit tags, defaults, compact replies."""

from __future__ import annotations

import msgspec

from aragora.contracts import subjects
from aragora.contracts.rpc import (
    AgentConnectivity,
    AgentRpcRequest,
    AgentTestReply,
    AgentTestRequest,
    ConnectivityReply,
    ConnectivityRequest,
)


def test_subjects_are_request_reply_names() -> None:
    assert subjects.AGENT_TEST_RPC == "aragora.rpc.agent.test"
    assert subjects.AGENT_CONNECTIVITY_RPC == "aragora.rpc.agent.connectivity"
    assert subjects.AGENT_RPC_QUEUE == "agent-runner"


def test_requests_carry_explicit_tags_and_defaults() -> None:
    decoded = msgspec.json.decode(
        b'{"type":"rpc.agent.test","agent":"claude"}', type=AgentRpcRequest
    )
    assert decoded == AgentTestRequest(agent="claude", prompt="Say hello", timeout_seconds=30.0)
    check = msgspec.json.decode(b'{"type":"rpc.agent.connectivity"}', type=AgentRpcRequest)
    assert isinstance(check, ConnectivityRequest)
    assert check.agents == []
    assert msgspec.to_builtins(AgentTestReply(agent="x", error="timeout"))["type"] == (
        "rpc.agent.test_reply"
    )


def test_demo_connectivity_is_only_provider_and_status() -> None:
    reply = ConnectivityReply(
        agents={"demo-1": AgentConnectivity(provider="demo", status="offline (no network needed)")}
    )
    assert msgspec.to_builtins(reply) == {
        "type": "rpc.agent.connectivity_reply",
        "agents": {"demo-1": {"provider": "demo", "status": "offline (no network needed)"}},
    }
