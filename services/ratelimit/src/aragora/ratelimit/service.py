"""The ratelimit service's NATS responders (``aragora.rpc.ratelimit.*``, queue ``ratelimit``).

Core NATS request/reply: one round trip per check, one replica answers. Each request is
answered in its own task so a slow Redis call never queues the next check behind it.
"""

from __future__ import annotations

import asyncio
import logging
import time

import msgspec
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from aragora.contracts import subjects
from aragora.contracts.ratelimit import (
    RateLimitCheck,
    RateLimitRequest,
    RateLimitStatusRequest,
)
from aragora.ratelimit import metrics
from aragora.ratelimit.limiter import Limiter

log = logging.getLogger("aragora.ratelimit.rpc")
_decoder = msgspec.json.Decoder(RateLimitRequest)
_encoder = msgspec.json.Encoder()
SUBJECTS = (
    subjects.RATE_LIMIT_CHECK_RPC,
    subjects.RATE_LIMIT_STATUS_RPC,
    subjects.RATE_LIMIT_STATS_RPC,
)


class RateLimitService:
    def __init__(self, limiter: Limiter) -> None:
        self.limiter = limiter
        self._subscriptions: list[Subscription] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self, nc: NATS) -> None:
        for subject in SUBJECTS:
            sub = await nc.subscribe(
                subject,
                queue=subjects.RATE_LIMIT_RPC_QUEUE,
                cb=self._on_msg,
                pending_msgs_limit=65536,
            )
            self._subscriptions.append(sub)
        await nc.flush()

    @property
    def subscribed(self) -> bool:
        """Answering: subscribed to every subject (nats.py re-subscribes on reconnect)."""
        return len(self._subscriptions) == len(SUBJECTS)

    async def stop(self) -> None:
        for sub in self._subscriptions:
            try:
                await sub.unsubscribe()
            except Exception as exc:  # a closed connection has nothing left to unsubscribe
                log.debug("rpc unsubscribe failed: %s", exc)
        self._subscriptions.clear()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=2)

    async def _on_msg(self, msg: Msg) -> None:
        task = asyncio.create_task(self._answer(msg))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def answer(self, data: bytes) -> bytes:
        request = _decoder.decode(data)
        reply: msgspec.Struct
        if isinstance(request, RateLimitCheck):
            started = time.perf_counter()
            decision = await self.limiter.check(request)
            metrics.check_seconds.labels(decision.backend).observe(time.perf_counter() - started)
            outcome = "allowed" if decision.allowed else "denied"
            metrics.checks.labels(request.endpoint_class, outcome, decision.backend).inc()
            reply = decision
        elif isinstance(request, RateLimitStatusRequest):
            reply = await self.limiter.status(request.caller)
        else:
            reply = await self.limiter.stats(request.top)
        return _encoder.encode(reply)

    async def _answer(self, msg: Msg) -> None:
        if not msg.reply:
            return
        try:
            data = await self.answer(msg.data)
        except msgspec.DecodeError as exc:
            log.warning("undecodable rate_limit request on %s: %s", msg.subject, exc)
            return
        try:
            await msg.respond(data)
        except Exception as exc:
            log.warning("could not answer %s: %s", msg.subject, exc)
