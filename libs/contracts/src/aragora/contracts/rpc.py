"""Request/reply messages of the operator debug routes (``aragora.rpc.agent.*``).

The gateway asks, one agent-runner replica (queue group ``agent-runner``) answers; the
gateway never talks to an LLM provider itself. These are not events: nothing is stored,
and a request that no runner answers simply times out. Every message carries an explicit
``type`` tag so a future version can be told apart on the wire.

``error``/``detail`` are safe to show: they never contain API keys or auth headers.
"""

from __future__ import annotations

from typing import Literal

import msgspec

DEFAULT_TEST_PROMPT = "Say hello"
TEST_TIMEOUT_CAP_SECONDS = 30.0
"""An agent test never runs longer than this, whatever ``ARAGORA_AGENT_TIMEOUT_SECONDS`` says."""
STEP_TIMEOUT_SECONDS = 3.0
"""Default timeout of each connectivity step (DNS, TCP, TLS, auth)."""

StepStatus = Literal["ok", "error", "skipped"]


class _Rpc(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    pass


class AgentTestRequest(_Rpc, frozen=True, kw_only=True, tag="rpc.agent.test"):
    """Run one plain completion of ``prompt`` with ``agent`` (no debate, no breaker)."""

    agent: str
    prompt: str = DEFAULT_TEST_PROMPT
    timeout_seconds: float = TEST_TIMEOUT_CAP_SECONDS


class AgentTestReply(_Rpc, frozen=True, kw_only=True, tag="rpc.agent.test_reply"):
    """The answer, or ``error`` (a failure reason such as ``timeout``, ``provider_error``,
    ``rejected``, ``unknown_agent``) and a ``detail``; latency is measured either way."""

    agent: str
    provider: str = ""
    model: str = ""
    text: str = ""
    latency_ms: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    error: str | None = None
    detail: str = ""


class ConnectivityRequest(_Rpc, frozen=True, kw_only=True, tag="rpc.agent.connectivity"):
    """Check every configured agent's provider (or only ``agents`` when given)."""

    agents: list[str] = []
    step_timeout_seconds: float = STEP_TIMEOUT_SECONDS


class ConnectivityStep(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    status: StepStatus
    detail: str = ""
    latency_ms: float | None = None


class AgentConnectivity(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One agent: ``status`` is ``ok``, ``error`` or, for demo agents,
    ``offline (no network needed)`` (then no steps are run)."""

    provider: str
    status: str
    model: str = ""
    base_url: str = ""
    dns: ConnectivityStep | None = None
    tcp: ConnectivityStep | None = None
    tls: ConnectivityStep | None = None
    auth: ConnectivityStep | None = None


class ConnectivityReply(_Rpc, frozen=True, kw_only=True, tag="rpc.agent.connectivity_reply"):
    agents: dict[str, AgentConnectivity]


AgentRpcRequest = AgentTestRequest | ConnectivityRequest
