"""GCRA in memory (the Redis script does the same): exact bursts, even refill, no
boundary doubling, all-or-nothing over several budgets; the limiter's modes."""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from aragora.contracts.ratelimit import Caller, RateLimitCheck
from aragora.ratelimit.gcra import MemoryGcra, Outcome
from aragora.ratelimit.limiter import Limiter
from aragora.ratelimit.policy import Policy
from aragora.runtime.settings import load_settings


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_burst_then_even_refill() -> None:
    clock = Clock()
    gcra = MemoryGcra(clock=clock)
    budget = [("k", 10)]
    outcomes = [gcra.check(budget, 60.0) for _ in range(11)]
    assert [o.allowed for o in outcomes] == [True] * 10 + [False]
    assert [o.remaining for o in outcomes[:10]] == list(range(9, -1, -1))
    assert abs(outcomes[-1].retry_after_seconds - 6.0) < 1e-6
    assert abs(outcomes[-1].reset_seconds - 60.0) < 1e-6
    clock.now += 6.0
    assert gcra.check(budget, 60.0).allowed
    assert not gcra.check(budget, 60.0).allowed
    assert gcra.peek("k", 10, 60.0)[0] == 0
    clock.now += 60.0
    assert gcra.peek("k", 10, 60.0) == (10, 0.0)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(min_value=0.0, max_value=5.0), min_size=1, max_size=120))
def test_no_burst_beyond_the_limit_at_any_moment(gaps: list[float]) -> None:
    """Over any span d at most limit + d / interval are admitted: a burst never exceeds
    the limit (a fixed window admits twice the limit within an instant at its boundary)."""
    clock = Clock()
    gcra = MemoryGcra(clock=clock)
    admitted: list[float] = []
    for gap in gaps:
        clock.now += gap
        if gcra.check([("k", 5)], 10.0).allowed:
            admitted.append(clock.now)
    interval = 10.0 / 5
    for i, start in enumerate(admitted):
        for j in range(i, len(admitted)):
            assert j - i + 1 <= 5 + (admitted[j] - start) / interval + 1e-9


def test_all_or_nothing_over_class_and_ip_budgets() -> None:
    clock = Clock()
    gcra = MemoryGcra(clock=clock)
    assert gcra.check([("a", 5), ("ip", 2)], 60.0).allowed
    assert gcra.check([("b", 5), ("ip", 2)], 60.0).allowed
    refused = gcra.check([("c", 5), ("ip", 2)], 60.0)
    assert not refused.allowed and refused.index == 1 and refused.limit == 2
    assert gcra.peek("c", 5, 60.0)[0] == 5  # the class budget was not charged


def test_memory_is_bounded() -> None:
    clock = Clock()
    gcra = MemoryGcra(max_keys=100, clock=clock)
    for i in range(250):
        gcra.check([(f"k{i}", 5)], 60.0)
    assert len(gcra) <= 100


async def test_limiter_disabled_and_memory_modes() -> None:
    caller = Caller(key="ip:192.0.2.1", key_type="ip", ip="192.0.2.1")
    request = RateLimitCheck(caller=caller, endpoint_class="read")
    disabled = Limiter(Policy.from_settings(load_settings({"ARAGORA_RATE_LIMIT_DISABLED": "1"})))
    decisions = [await disabled.check(request) for _ in range(500)]
    assert all(d.allowed and d.backend == "disabled" for d in decisions)
    assert "DISABLED" in disabled.state().detail

    limiter = Limiter(Policy.from_settings(load_settings({"ARAGORA_RATE_LIMIT_READ_RPM": "2"})))
    decisions = [await limiter.check(request) for _ in range(3)]
    assert [d.allowed for d in decisions] == [True, True, False]
    assert decisions[-1].backend == "memory" and not decisions[-1].degraded
    state = limiter.state()
    assert (state.backend, state.redis, state.degraded) == ("memory", "not_configured", False)
    stats = await limiter.stats(5)
    assert stats.hits_by_class["read"] == 1
    assert stats.top_limited[0].key == "ip:192.0.2.1"
    status = await limiter.status(caller)
    read = next(c for c in status.counters if c.endpoint_class == "read")
    assert (read.limit, read.remaining) == (2, 0)


class FlakyStore:
    """A Redis store stand-in: times out, refuses, or answers as told."""

    def __init__(self) -> None:
        self.fail: BaseException | None = None
        self.ping_fails = False

    async def check(self, *args: object) -> Outcome:
        if self.fail is not None:
            raise self.fail
        return Outcome(True, 0, 7, 6, 1.0, 0.0)

    async def ping(self) -> None:
        if self.ping_fails:
            raise ConnectionError("refused")


async def test_a_timeout_alone_does_not_fail_over_but_a_refusal_does() -> None:
    store = FlakyStore()
    limiter = Limiter(Policy.from_settings(load_settings({})), store)  # type: ignore[arg-type]
    request = RateLimitCheck(
        caller=Caller(key="ip:192.0.2.1", key_type="ip", ip="192.0.2.1"), endpoint_class="read"
    )
    assert (await limiter.check(request)).backend == "redis"
    store.fail = TimeoutError()
    slow = await limiter.check(request)
    assert slow.backend == "memory" and slow.degraded  # this request only...
    await asyncio.sleep(0.01)  # ...the confirming ping answered: still up
    assert limiter.redis_up
    store.fail = None
    assert (await limiter.check(request)).backend == "redis"

    store.fail, store.ping_fails = TimeoutError(), True
    await limiter.check(request)
    await asyncio.sleep(0.01)
    assert not limiter.redis_up and limiter.state().degraded  # the ping confirmed it

    limiter.redis_up = True
    store.fail = ConnectionRefusedError()
    assert (await limiter.check(request)).backend == "memory"
    assert not limiter.redis_up and limiter.state().redis == "down"
    await limiter.stop()
