"""Per-agent circuit breaker: a pure state machine over :class:`BreakerState`.

closed --(``failures_to_open`` consecutive failures)--> open
open --(``cooldown_seconds`` elapsed; next call)--> half_open
half_open --(``successes_to_close`` successes)--> closed
half_open --(any failure)--> open (cooldown again)

In half-open at most ``half_open_max_calls`` trial calls run at once (across every replica,
since the state lives in NATS KV); further calls are refused as if the breaker were open.
A trial slot whose caller died is reclaimed once it is older than the cooldown.

Defaults per vendor (:func:`vendor`: the provider kind, or for an OpenAI-compatible agent
the vendor its base URL points at) (failures to open / cooldown seconds; every kind closes after
2 successes and allows 1 half-open call): anthropic 3/30, openai 5/60, mistral 4/45,
openrouter 5/90, gemini 4/45, demo and any other kind 5/30.

Environment overrides, per kind (``KIND`` upper-cased, ``-`` as ``_``, e.g.
``OPENAI_COMPATIBLE``; ``DEFAULT`` for kinds without a table entry):

* ``ARAGORA_BREAKER_<KIND>_FAILURES`` (failures to open)
* ``ARAGORA_BREAKER_<KIND>_COOLDOWN_SECONDS``
* ``ARAGORA_BREAKER_<KIND>_SUCCESSES`` (successes to close)
* ``ARAGORA_BREAKER_<KIND>_HALF_OPEN_MAX_CALLS``

Storage and sharing: ``aragora.runtime.breakers`` (bucket ``ARAGORA_BREAKERS``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from urllib.parse import urlsplit

import msgspec

from aragora.runtime.agents import AgentSpec
from aragora.runtime.breakers import BreakerState, reset_state

__all__ = [
    "BreakerPolicy",
    "BreakerState",
    "allow",
    "on_failure",
    "on_success",
    "policy_for",
    "reset",
    "vendor",
]


class BreakerPolicy(msgspec.Struct, frozen=True, kw_only=True):
    failures_to_open: int
    cooldown_seconds: float
    successes_to_close: int = 2
    half_open_max_calls: int = 1


DEFAULT_POLICY = BreakerPolicy(failures_to_open=5, cooldown_seconds=30.0)
POLICIES: dict[str, BreakerPolicy] = {
    "anthropic": BreakerPolicy(failures_to_open=3, cooldown_seconds=30.0),
    "openai": BreakerPolicy(failures_to_open=5, cooldown_seconds=60.0),
    "mistral": BreakerPolicy(failures_to_open=4, cooldown_seconds=45.0),
    "openrouter": BreakerPolicy(failures_to_open=5, cooldown_seconds=90.0),
    "gemini": BreakerPolicy(failures_to_open=4, cooldown_seconds=45.0),
    "demo": BreakerPolicy(failures_to_open=5, cooldown_seconds=30.0),
}
_ENV_FIELDS = {
    "FAILURES": ("failures_to_open", int),
    "COOLDOWN_SECONDS": ("cooldown_seconds", float),
    "SUCCESSES": ("successes_to_close", int),
    "HALF_OPEN_MAX_CALLS": ("half_open_max_calls", int),
}


_VENDOR_HOSTS = {
    "openai.com": "openai",
    "openrouter.ai": "openrouter",
    "mistral.ai": "mistral",
    "anthropic.com": "anthropic",
    "googleapis.com": "gemini",
}


def vendor(spec: AgentSpec | None) -> str:
    """The policy table's key for an agent: its provider kind, or for an OpenAI-compatible
    agent the vendor behind its base URL (OpenRouter, Mistral, OpenAI); other servers
    (Ollama, vLLM, a stand-in) use the ``default`` policy."""
    if spec is None:
        return "default"
    if spec.provider != "openai-compatible":
        return spec.provider
    host = (urlsplit(spec.base_url).hostname or "").lower()
    for suffix, name in _VENDOR_HOSTS.items():
        if host == suffix or host.endswith("." + suffix):
            return name
    return "default"


def env_prefix(provider_kind: str) -> str:
    section = provider_kind if provider_kind in POLICIES else "default"
    return f"ARAGORA_BREAKER_{section.upper().replace('-', '_')}_"


def policy_for(provider_kind: str, environ: Mapping[str, str] | None = None) -> BreakerPolicy:
    """The table's policy for ``provider_kind`` with any environment overrides applied."""
    env = os.environ if environ is None else environ
    policy = POLICIES.get(provider_kind, DEFAULT_POLICY)
    prefix = env_prefix(provider_kind)
    changes: dict[str, int | float] = {}
    for suffix, (field, kind) in _ENV_FIELDS.items():
        raw = env.get(prefix + suffix)
        if raw is None or not raw.strip():
            continue
        try:
            value = kind(raw)
        except ValueError:
            raise ValueError(f"{prefix + suffix}={raw!r} is not a number") from None
        if value <= 0:
            raise ValueError(f"{prefix + suffix} must be positive, got {raw!r}")
        changes[field] = value
    return msgspec.structs.replace(policy, **changes) if changes else policy


def _open(state: BreakerState, policy: BreakerPolicy, now: float, failures: int) -> BreakerState:
    return BreakerState(
        state="open",
        consecutive_failures=failures,
        opened_at=now,
        open_until=now + policy.cooldown_seconds,
        updated_at=now,
    )


def allow(state: BreakerState, policy: BreakerPolicy, now: float) -> tuple[bool, BreakerState]:
    """May a call start now? Returns the decision and the state to store (maybe unchanged)."""
    if state.state == "closed":
        return True, state
    if state.state == "open":
        opened = state.opened_at if state.opened_at is not None else now
        if now < opened + policy.cooldown_seconds:
            return False, state
        return True, msgspec.structs.replace(
            state,
            state="half_open",
            successes=0,
            open_until=None,
            half_open_in_flight=1,
            updated_at=now,
        )
    in_flight = state.half_open_in_flight
    if in_flight >= policy.half_open_max_calls and now - state.updated_at > policy.cooldown_seconds:
        in_flight = 0  # the trial callers never reported back (a runner died): reclaim
    if in_flight >= policy.half_open_max_calls:
        return False, state
    return True, msgspec.structs.replace(state, half_open_in_flight=in_flight + 1, updated_at=now)


def on_success(state: BreakerState, policy: BreakerPolicy, now: float) -> BreakerState:
    if state.state == "closed":
        if state.consecutive_failures == 0:
            return state
        return msgspec.structs.replace(state, consecutive_failures=0, updated_at=now)
    if state.state == "open":
        return state  # a call admitted before the breaker opened: no evidence of recovery
    successes = state.successes + 1
    if successes >= policy.successes_to_close:
        return BreakerState(updated_at=now)
    return msgspec.structs.replace(
        state,
        successes=successes,
        half_open_in_flight=max(0, state.half_open_in_flight - 1),
        updated_at=now,
    )


def on_failure(state: BreakerState, policy: BreakerPolicy, now: float) -> BreakerState:
    if state.state == "closed":
        failures = state.consecutive_failures + 1
        if failures >= policy.failures_to_open:
            return _open(state, policy, now, failures)
        return msgspec.structs.replace(state, consecutive_failures=failures, updated_at=now)
    if state.state == "open":
        return state  # already open: keep the cooldown that is running
    return _open(state, policy, now, state.consecutive_failures + 1)


def reset(now: float) -> BreakerState:
    """Closed, with no history (an operator's reset)."""
    return reset_state(now)
