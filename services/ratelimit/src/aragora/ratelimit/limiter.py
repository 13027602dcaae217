"""The limiter: Redis when configured and up, memory otherwise; answers the three RPCs.

Fallback: the first Redis error (connection refused or reset; a 1 s timeout confirmed by
a ping) marks Redis down and the same request is answered from the in-memory budgets, so
requests keep flowing; health then says ``redis: down`` and ``degraded``. A probe pings
Redis every 0.5 s while it is down (every second while up, so an idle service notices
too) and switches back on the first answer. Memory budgets are per replica and start full, so
while Redis is down a caller may get up to one budget per replica extra.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from typing import TYPE_CHECKING

import msgspec

from aragora.contracts.ratelimit import (
    ENDPOINT_CLASSES,
    Backend,
    BackendState,
    Caller,
    ClassCounter,
    LimitedKey,
    RateLimitCheck,
    RateLimitDecision,
    RateLimitStatsReply,
    RateLimitStatusReply,
    RedisState,
)
from aragora.ratelimit.gcra import MemoryGcra, Outcome
from aragora.ratelimit.policy import Policy

if TYPE_CHECKING:  # redis-py loads only with a Redis store (the gateway's fallback has none)
    from aragora.ratelimit.redis_store import RedisStore

log = logging.getLogger("aragora.ratelimit")
PROBE_DOWN_SECONDS = 0.5
PROBE_UP_SECONDS = 1.0


class Limiter:
    def __init__(self, policy: Policy, redis: RedisStore | None = None, instance: str = ""):
        self.policy = policy
        self.redis = redis
        self.instance = instance
        self.memory = MemoryGcra()
        self.redis_up = redis is not None
        self.checks = 0
        self.hits: Counter[str] = Counter()  # memory-mode 429s per class
        self.limited: Counter[str] = Counter()  # memory-mode 429s per "class|key"
        self._probe: asyncio.Task[None] | None = None
        self._confirm: asyncio.Task[None] | None = None

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        if self.redis is None:
            return
        try:
            await self.redis.warm()
        except Exception as exc:
            self._down(exc)
        self._probe = asyncio.create_task(self._probe_loop(), name="redis-probe")

    async def stop(self) -> None:
        for task in (self._probe, self._confirm):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self.redis is not None:
            with contextlib.suppress(Exception):
                await self.redis.aclose()

    def _down(self, exc: BaseException) -> None:
        if self.redis_up:
            self.redis_up = False
            log.error(
                "rate_limit backend redis down: in-memory limits until it returns",
                extra={"error": type(exc).__name__, "redis": "down"},
            )

    def _failed(self, exc: BaseException) -> None:
        """A command failed. Refused or reset: Redis is down. Timed out (1 s): maybe only
        this host is overloaded, so a ping decides, and only this request goes to memory."""
        import redis.exceptions  # loaded already: only a Redis store fails this way

        if not isinstance(exc, TimeoutError | redis.exceptions.TimeoutError):
            self._down(exc)
        elif self._confirm is None or self._confirm.done():
            self._confirm = asyncio.create_task(self._ping_or_down(), name="redis-confirm")

    async def _ping_or_down(self) -> None:
        assert self.redis is not None
        try:
            await self.redis.ping()
        except Exception as exc:
            self._down(exc)

    async def _probe_loop(self) -> None:
        assert self.redis is not None
        while True:
            await asyncio.sleep(PROBE_UP_SECONDS if self.redis_up else PROBE_DOWN_SECONDS)
            try:
                if not self.redis_up:
                    await self.redis.reset()  # so that no stale connection fails us again
                await self.redis.ping()
            except Exception as exc:
                self._down(exc)
                continue
            if not self.redis_up:
                self.redis_up = True
                log.warning("rate_limit backend redis restored: shared limits again")

    # --- state ----------------------------------------------------------------------------

    @property
    def backend(self) -> str:
        if self.policy.disabled:
            return "disabled"
        return "redis" if self.redis is not None and self.redis_up else "memory"

    def state(self) -> BackendState:
        redis: RedisState = "up" if self.redis_up else "down"
        if self.redis is None:
            redis = "not_configured"
        degraded = self.redis is not None and not self.redis_up
        detail = ""
        if self.policy.disabled:
            detail = "RATE LIMITING DISABLED (ARAGORA_RATE_LIMIT_DISABLED=1)"
        elif degraded:
            detail = "redis unreachable: in-memory limits per replica until it returns"
        elif self.policy.emergency:
            detail = "emergency limits (ARAGORA_RATE_LIMIT_EMERGENCY=1)"
        return BackendState(
            backend="disabled"
            if self.policy.disabled
            else ("redis" if redis == "up" else "memory"),
            redis=redis,
            mode=self.policy.mode,
            degraded=degraded,
            detail=detail,
            instance=self.instance,
        )

    # --- check ----------------------------------------------------------------------------

    async def check(self, request: RateLimitCheck) -> RateLimitDecision:
        self.checks += 1
        policy = self.policy
        budgets = policy.budgets(request.caller, request.endpoint_class)
        if policy.disabled:
            limit = budgets[0][1]
            return RateLimitDecision(
                allowed=True, limit=limit, remaining=limit, reset_seconds=0.0, backend="disabled"
            )
        cost = max(1, request.cost)
        outcome: Outcome | None = None
        if self.redis is not None and self.redis_up:
            try:
                outcome = await self.redis.check(
                    budgets,
                    policy.window_seconds,
                    cost,
                    request.endpoint_class,
                    request.caller.key,
                )
            except Exception as exc:
                self._failed(exc)
        backend: Backend = "redis" if outcome is not None else "memory"
        if outcome is None:
            outcome = self.memory.check(budgets, policy.window_seconds, cost)
            if not outcome.allowed:
                self._count_hit(request.endpoint_class, request.caller.key)
        return RateLimitDecision(
            allowed=outcome.allowed,
            limit=outcome.limit,
            remaining=outcome.remaining,
            reset_seconds=round(outcome.reset_seconds, 3),
            retry_after_seconds=round(outcome.retry_after_seconds, 3),
            scope="class" if outcome.index == 0 else "ip",
            backend=backend,
            degraded=self.redis is not None and backend == "memory",
        )

    def _count_hit(self, endpoint_class: str, key: str) -> None:
        self.hits[endpoint_class] += 1
        self.limited[f"{endpoint_class}|{key}"] += 1
        if len(self.limited) > 10_000:
            self.limited = Counter(dict(self.limited.most_common(1_000)))

    # --- status and stats -----------------------------------------------------------------

    async def status(self, caller: Caller | None) -> RateLimitStatusReply:
        if caller is None:
            latency_ms = None
            if self.redis is not None and self.redis_up:
                started = time.perf_counter()
                try:
                    await self.redis.ping()  # health asks: tell the truth now
                    latency_ms = round((time.perf_counter() - started) * 1000, 2)
                except Exception as exc:
                    self._down(exc)
            state = msgspec.structs.replace(self.state(), redis_latency_ms=latency_ms)
            return RateLimitStatusReply(state=state)
        window = self.policy.window_seconds
        budgets = [self.policy.budgets(caller, c)[0] for c in ENDPOINT_CLASSES]
        if caller.ip:
            budgets.append((f"ip-all:{caller.ip}", self.policy.ip_ceiling()))
        peeked: list[tuple[int, float]] | None = None
        if self.redis is not None and self.redis_up:
            try:
                peeked = await self.redis.peek(budgets, window)
            except Exception as exc:
                self._failed(exc)
        if peeked is None:
            peeked = [self.memory.peek(key, limit, window) for key, limit in budgets]
        names = [*ENDPOINT_CLASSES, "ip"][: len(budgets)]
        counters = [
            ClassCounter(
                endpoint_class=name,
                limit=limit,
                remaining=remaining,
                reset_seconds=round(max(0.0, reset), 3),
                window_seconds=window,
            )
            for name, (_, limit), (remaining, reset) in zip(names, budgets, peeked, strict=True)
        ]
        return RateLimitStatusReply(state=self.state(), counters=counters)

    async def stats(self, top: int) -> RateLimitStatsReply:
        top = max(1, min(top, 100))
        hits: dict[str, int] = dict(self.hits)
        ranked = self.limited.most_common(top)
        if self.redis is not None and self.redis_up:
            try:
                hits, ranked = await self.redis.stats(top)
            except Exception as exc:
                self._failed(exc)
        limited = []
        for member, count in ranked:
            endpoint_class, _, key = member.partition("|")
            limited.append(LimitedKey(key=key, endpoint_class=endpoint_class, hits=count))
        return RateLimitStatsReply(
            state=self.state(),
            hits_by_class={c: hits.get(c, 0) for c in ENDPOINT_CLASSES},
            top_limited=limited,
            checks=self.checks,
        )
