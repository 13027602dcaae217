"""Wiring of the ratelimit process."""

from __future__ import annotations

import asyncio
import logging
import os

from aragora.ratelimit.limiter import Limiter
from aragora.ratelimit.policy import Policy
from aragora.ratelimit.redis_store import RedisStore
from aragora.ratelimit.service import RateLimitService
from aragora.runtime import bus, health
from aragora.runtime.settings import Settings

log = logging.getLogger("aragora.ratelimit")
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


def build_limiter(settings: Settings) -> Limiter:
    """Redis-backed when ``ARAGORA_ENABLE_REDIS_RATE_LIMIT=1``, else in memory."""
    store = None
    if settings.enable_redis_rate_limit:
        store = RedisStore(settings.redis_url or DEFAULT_REDIS_URL, settings.rate_limit_prefix)
    instance = settings.instance_id or f"ratelimit-{os.getpid()}"
    return Limiter(Policy.from_settings(settings), store, instance=instance)


def announce(limiter: Limiter) -> None:
    """Say loudly what is not normal: disabled, emergency, Redis down."""
    state = limiter.state()
    extra = {"backend": state.backend, "redis": state.redis, "mode": state.mode}
    if state.mode == "disabled":
        log.error("rate_limit DISABLED: no request is limited (ARAGORA_RATE_LIMIT_DISABLED=1)")
    elif state.mode == "emergency":
        log.warning("rate_limit EMERGENCY mode: strict limits everywhere", extra=extra)
    log.info("ratelimit ready", extra=extra)


def redis_check(limiter: Limiter) -> health.Check:
    """Redis answers a ping; if not, ``degraded``: the limiter falls back to memory, so the
    service still answers (not ready would only stall rollouts during a Redis outage)."""

    async def check() -> dict[str, str]:
        assert limiter.redis is not None
        try:
            await limiter.redis.ping()
        except Exception as exc:
            detail = "in-memory limits per replica until it returns"
            return {"status": "degraded", "error": type(exc).__name__, "detail": detail}
        return {"backend": limiter.backend}

    return check


async def run(settings: Settings, stop: asyncio.Event) -> None:
    async with health.serving(settings, "ratelimit") as probe:
        limiter = build_limiter(settings)
        await limiter.start()
        conn = await bus.connect(settings.nats_servers, name="aragora-ratelimit")
        service = RateLimitService(limiter)
        await service.start(conn.nc)

        async def rpc_check() -> None:
            if not service.subscribed:
                raise health.CheckFailed("not subscribed")

        checks: dict[str, health.Check] = {"nats": health.nats_check(conn), "rpc": rpc_check}
        if limiter.redis is not None:  # ARAGORA_ENABLE_REDIS_RATE_LIMIT=1
            checks["redis"] = redis_check(limiter)
        probe.ready(checks)
        announce(limiter)
        await stop.wait()
        probe.stopping()
        log.info("ratelimit stopping")
        await service.stop()
        await conn.close()
        await limiter.stop()
