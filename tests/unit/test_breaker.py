"""The circuit breaker's pure state machine and its policies."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aragora.agent_runner.breaker import (
    BreakerPolicy,
    BreakerState,
    allow,
    on_failure,
    on_success,
    policy_for,
    reset,
)
from aragora.runtime.breakers import MemoryBreakerStore

P = BreakerPolicy(failures_to_open=3, cooldown_seconds=30.0)
CLOSED = BreakerState()


def tripped(now: float = 100.0) -> BreakerState:
    state = CLOSED
    for _ in range(P.failures_to_open):
        state = on_failure(state, P, now)
    return state


def test_policy_table_and_env_overrides() -> None:
    assert policy_for("anthropic", {}) == BreakerPolicy(failures_to_open=3, cooldown_seconds=30)
    assert policy_for("openai", {}).cooldown_seconds == 60
    assert policy_for("mistral", {}).failures_to_open == 4
    assert policy_for("openrouter", {}).cooldown_seconds == 90
    assert policy_for("gemini", {}) == BreakerPolicy(failures_to_open=4, cooldown_seconds=45)
    for kind in ("demo", "openai-compatible", "something-new"):
        policy = policy_for(kind, {})
        assert (policy.failures_to_open, policy.cooldown_seconds) == (5, 30)
        assert (policy.successes_to_close, policy.half_open_max_calls) == (2, 1)
    env = {
        "ARAGORA_BREAKER_DEMO_FAILURES": "9",
        "ARAGORA_BREAKER_DEMO_COOLDOWN_SECONDS": "1.5",
        "ARAGORA_BREAKER_DEFAULT_HALF_OPEN_MAX_CALLS": "3",
        "ARAGORA_BREAKER_DEFAULT_SUCCESSES": "4",
    }
    assert policy_for("demo", env) == BreakerPolicy(failures_to_open=9, cooldown_seconds=1.5)
    other = policy_for("openai-compatible", env)
    assert (other.half_open_max_calls, other.successes_to_close) == (3, 4)
    with pytest.raises(ValueError, match="ARAGORA_BREAKER_OPENAI_FAILURES"):
        policy_for("openai", {"ARAGORA_BREAKER_OPENAI_FAILURES": "many"})
    with pytest.raises(ValueError, match="positive"):
        policy_for("openai", {"ARAGORA_BREAKER_OPENAI_FAILURES": "0"})


def test_opens_after_consecutive_failures_only() -> None:
    state = on_failure(on_failure(CLOSED, P, 1), P, 2)
    assert state.state == "closed" and state.consecutive_failures == 2
    state = on_success(state, P, 3)
    assert state.consecutive_failures == 0
    assert on_success(state, P, 4) is state  # nothing to write
    opened = tripped(100)
    assert opened.state == "open"
    assert opened.opened_at == 100 and opened.open_until == 130
    assert allow(opened, P, 129.9) == (False, opened)
    assert on_failure(opened, P, 110) is opened  # the cooldown is not extended
    assert on_success(opened, P, 110) is opened  # a late success proves nothing


def test_half_open_allows_one_trial_call_and_closes_after_two_successes() -> None:
    ok, half = allow(tripped(100), P, 130)
    assert ok and half.state == "half_open" and half.half_open_in_flight == 1
    refused, same = allow(half, P, 131)
    assert not refused and same is half  # the limit is enforced
    half = on_success(half, P, 132)
    assert half.state == "half_open" and half.successes == 1 and half.half_open_in_flight == 0
    ok, half = allow(half, P, 133)
    assert ok and half.half_open_in_flight == 1
    closed = on_success(half, P, 134)
    assert closed.state == "closed" and closed.consecutive_failures == 0
    assert closed.half_open_in_flight == 0


def test_half_open_failure_reopens_with_a_new_cooldown() -> None:
    _, half = allow(tripped(100), P, 140)
    reopened = on_failure(half, P, 141)
    assert reopened.state == "open" and reopened.open_until == 171
    assert reopened.half_open_in_flight == 0


def test_a_trial_slot_whose_caller_vanished_is_reclaimed_after_the_cooldown() -> None:
    _, half = allow(tripped(100), P, 130)
    assert allow(half, P, 150)[0] is False
    ok, again = allow(half, P, 161)
    assert ok and again.half_open_in_flight == 1


def test_reset_closes() -> None:
    state = reset(5.0)
    assert state.state == "closed" and state.updated_at == 5.0
    assert allow(state, P, 6)[0]


@given(
    st.lists(
        st.tuples(st.sampled_from(["allow", "ok", "fail"]), st.floats(0, 20)),
        max_size=60,
    ),
    st.integers(1, 3),
)
def test_invariants_hold_for_any_sequence(steps: list[tuple[str, float]], max_calls: int) -> None:
    policy = BreakerPolicy(failures_to_open=3, cooldown_seconds=10, half_open_max_calls=max_calls)
    state, now = CLOSED, 0.0
    for action, dt in steps:
        now += dt
        before = state
        if action == "allow":
            ok, state = allow(state, policy, now)
            if before.state == "open" and now < (before.open_until or 0):
                assert not ok
            if before.state == "closed":
                assert ok
        elif action == "ok":
            state = on_success(state, policy, now)
        else:
            state = on_failure(state, policy, now)
        assert 0 <= state.half_open_in_flight <= max_calls
        assert state.state != "half_open" or state.successes < policy.successes_to_close
        assert state.state != "closed" or state.consecutive_failures < policy.failures_to_open
        assert (state.state == "open") == (state.open_until is not None)


async def test_memory_store_applies_changes() -> None:
    store = MemoryBreakerStore()
    old, new = await store.update("demo-1", lambda s: on_failure(s, P, 1))
    assert old == CLOSED and new.consecutive_failures == 1
    assert (await store.get("demo-1")) == new
    assert list(await store.all()) == ["demo-1"]
