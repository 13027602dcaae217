"""Wiring of the ratelimit process."""

from __future__ import annotations

import asyncio
import logging
import os

from aragora.ratelimit.limiter import Limiter
from aragora.ratelimit.policy import Policy
from aragora.ratelimit.redis_store import RedisStore
from aragora.ratelimit.service import RateLimitService
from aragora.runtime import bus
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


async def run(settings: Settings, stop: asyncio.Event) -> None:
    limiter = build_limiter(settings)
    await limiter.start()
    conn = await bus.connect(settings.nats_servers, name="aragora-ratelimit")
    service = RateLimitService(limiter)
    await service.start(conn.nc)
    announce(limiter)
    await stop.wait()
    log.info("ratelimit stopping")
    await service.stop()
    await conn.close()
    await limiter.stop()
