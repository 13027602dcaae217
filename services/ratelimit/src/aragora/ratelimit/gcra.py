"""GCRA (generic cell rate algorithm), in memory; the Redis script does the same in Lua.

A budget of ``limit`` per ``period`` admits one unit every ``period / limit`` and a burst
of at most ``limit``. The only state per key is its TAT (theoretical arrival time): a
request of ``cost`` moves it ``cost * interval`` ahead of ``max(TAT, now)`` and is
admitted when the new TAT is at most ``period`` ahead of now. Unlike a fixed window it
never admits twice the limit around a window boundary, and unlike a log it stores one
number per key.

A request consumes several budgets at once (its class's and its IP's): all or nothing.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Outcome:
    """The binding budget: the first one that refused, else the one with least left."""

    allowed: bool
    index: int
    limit: int
    remaining: int
    reset_seconds: float
    retry_after_seconds: float


def step(tat: float, now: float, limit: int, period: float, cost: int) -> tuple[bool, float, int]:
    """(allowed, new TAT if admitted, remaining) for one budget; times in seconds."""
    interval = period / limit
    tat = max(tat, now)
    new_tat = tat + cost * interval
    diff = now - (new_tat - period)
    if diff < 0:
        return False, tat, max(0, math.floor((now - (tat - period)) / interval + 1e-9))
    return True, new_tat, math.floor(diff / interval + 1e-9)


def combine(
    limits: Sequence[int],
    steps: Sequence[tuple[bool, float, int]],
    now: float,
    period: float,
    cost: int = 1,
) -> Outcome:
    denied = [i for i, (ok, _, _) in enumerate(steps) if not ok]
    if denied:
        # Retry when the slowest refusing budget has room for this request.
        def retry(i: int) -> float:
            return steps[i][1] + cost * period / limits[i] - period - now

        i = max(denied, key=retry)
        return Outcome(False, i, limits[i], 0, max(0.0, steps[i][1] - now), max(0.0, retry(i)))
    i = min(range(len(steps)), key=lambda j: steps[j][2])
    return Outcome(True, i, limits[i], steps[i][2], max(0.0, steps[i][1] - now), 0.0)


class MemoryGcra:
    """Per-process budgets; bounded: expired keys go first, then the oldest."""

    def __init__(self, max_keys: int = 100_000, clock: Callable[[], float] = time.monotonic):
        self._tat: dict[str, float] = {}
        self.max_keys = max_keys
        self.clock = clock

    def check(self, budgets: Sequence[tuple[str, int]], period: float, cost: int = 1) -> Outcome:
        now = self.clock()
        limits = [limit for _, limit in budgets]
        steps = [step(self._tat.get(key, now), now, limit, period, cost) for key, limit in budgets]
        outcome = combine(limits, steps, now, period, cost)
        if outcome.allowed:
            for (key, _), (_, new_tat, _) in zip(budgets, steps, strict=True):
                self._tat.pop(key, None)  # re-insert: dict order is age order
                self._tat[key] = new_tat
            if len(self._tat) > self.max_keys:
                self._evict(now)
        return outcome

    def peek(self, key: str, limit: int, period: float) -> tuple[int, float]:
        """(remaining, seconds until fully refilled) without consuming anything."""
        now = self.clock()
        tat = max(self._tat.get(key, now), now)
        interval = period / limit
        return max(0, min(limit, math.floor((now - (tat - period)) / interval + 1e-9))), tat - now

    def _evict(self, now: float) -> None:
        for key in [k for k, tat in self._tat.items() if tat <= now]:
            del self._tat[key]
        while len(self._tat) > self.max_keys:
            del self._tat[next(iter(self._tat))]

    def __len__(self) -> int:
        return len(self._tat)
