"""GCRA in Redis: one Lua script, one EVALSHA per check, atomic across every replica.

Keys (``ARAGORA_RATE_LIMIT_PREFIX``, default ``aragora:rl``):

* ``<prefix>:<class>:<key>`` and ``<prefix>:ip-all:<ip>``: a budget's TAT in ms (string),
  expiring when the budget is full again;
* ``<prefix>:stats:denied`` (sorted set ``<class>|<key>`` -> 429s, top 1,000 kept) and
  ``<prefix>:stats:hits`` (hash class -> 429s), both kept a day after the last 429.

Time comes from Redis (``TIME``), so replicas with skewed clocks still agree. There are no
retries: a failing Redis is noticed within one request and the caller falls back to
memory at once. Commands in flight are bounded by the pool size (a semaphore, so a burst
waits for a connection instead of failing, and waiting never counts as Redis failing).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from aragora.ratelimit.gcra import Outcome

REDIS_TIMEOUT = 1.0
"""Deadline of one Redis command once it has a connection. A stopped Redis is noticed at
once (connection refused or reset); only a hung one takes this long."""

CHECK_SCRIPT = """
local n = #KEYS - 2
local cost = tonumber(ARGV[1])
local period = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local tats, news, rems, oks = {}, {}, {}, {}
local denied = false
for i = 1, n do
  local limit = tonumber(ARGV[4 + i])
  local interval = period / limit
  local tat = tonumber(redis.call('GET', KEYS[i])) or now
  if tat < now then tat = now end
  local new_tat = tat + cost * interval
  local diff = now - (new_tat - period)
  tats[i] = tat
  if diff < 0 then
    oks[i] = false
    denied = true
    rems[i] = math.max(0, math.floor((now - (tat - period)) / interval + 1e-9))
  else
    oks[i] = true
    news[i] = new_tat
    rems[i] = math.floor(diff / interval + 1e-9)
  end
end
if denied then
  local best, best_retry = 0, -1
  for i = 1, n do
    if not oks[i] then
      local retry = tats[i] + cost * period / tonumber(ARGV[4 + i]) - period - now
      if retry > best_retry then best, best_retry = i, retry end
    end
  end
  redis.call('ZINCRBY', KEYS[n + 1], 1, ARGV[3])
  if redis.call('ZCARD', KEYS[n + 1]) > 1000 then
    redis.call('ZREMRANGEBYRANK', KEYS[n + 1], 0, -1001)
  end
  redis.call('HINCRBY', KEYS[n + 2], ARGV[4], 1)
  redis.call('EXPIRE', KEYS[n + 1], 86400)
  redis.call('EXPIRE', KEYS[n + 2], 86400)
  return {0, best, tonumber(ARGV[4 + best]), 0, math.ceil(tats[best] - now),
          math.ceil(math.max(0, best_retry))}
end
local best = 1
for i = 1, n do
  redis.call('SET', KEYS[i], string.format('%.3f', news[i]), 'PX',
             math.max(1, math.ceil(news[i] - now)))
  if rems[i] < rems[best] then best = i end
end
return {1, best, tonumber(ARGV[4 + best]), rems[best], math.ceil(news[best] - now), 0}
"""


class RedisStore:
    def __init__(self, url: str, prefix: str, max_connections: int = 32) -> None:
        self.prefix = prefix
        pool = aioredis.BlockingConnectionPool.from_url(
            url,
            max_connections=max_connections,
            timeout=None,  # never waits: the semaphore hands out at most max_connections
            socket_timeout=REDIS_TIMEOUT,
            socket_connect_timeout=REDIS_TIMEOUT,
            retry=Retry(NoBackoff(), 0),
        )
        self._slots = asyncio.Semaphore(max_connections)
        self.max_connections = max_connections
        self.client = aioredis.Redis(connection_pool=pool)
        self._check = self.client.register_script(CHECK_SCRIPT)
        self.denied_key = f"{prefix}:stats:denied"
        self.hits_key = f"{prefix}:stats:hits"

    async def check(
        self,
        budgets: Sequence[tuple[str, int]],
        period: float,
        cost: int,
        endpoint_class: str,
        who: str,
    ) -> Outcome:
        keys = [f"{self.prefix}:{key}" for key, _ in budgets]
        args: list[Any] = [cost, int(period * 1000), f"{endpoint_class}|{who}", endpoint_class]
        args += [limit for _, limit in budgets]
        async with self._slots, asyncio.timeout(REDIS_TIMEOUT):
            raw = await self._check(keys=[*keys, self.denied_key, self.hits_key], args=args)
        allowed, index, limit, remaining, reset_ms, retry_ms = (int(x) for x in raw)
        return Outcome(
            allowed=bool(allowed),
            index=index - 1,
            limit=limit,
            remaining=remaining,
            reset_seconds=reset_ms / 1000,
            retry_after_seconds=retry_ms / 1000,
        )

    async def peek(
        self, budgets: Sequence[tuple[str, int]], period: float
    ) -> list[tuple[int, float]]:
        """(remaining, seconds until full) of each budget, consuming nothing."""
        async with (
            self._slots,
            asyncio.timeout(REDIS_TIMEOUT),
            self.client.pipeline(transaction=False) as pipe,
        ):
            pipe.time()
            pipe.mget([f"{self.prefix}:{key}" for key, _ in budgets])
            (seconds, micros), tats = await pipe.execute()
        now = seconds * 1000 + micros // 1000
        out = []
        for (_, limit), raw in zip(budgets, tats, strict=True):
            tat = max(float(raw), now) if raw is not None else now
            interval = period * 1000 / limit
            remaining = math.floor((now - (tat - period * 1000)) / interval + 1e-9)
            out.append((max(0, min(limit, remaining)), (tat - now) / 1000))
        return out

    async def stats(self, top: int) -> tuple[dict[str, int], list[tuple[str, int]]]:
        async with (
            self._slots,
            asyncio.timeout(REDIS_TIMEOUT),
            self.client.pipeline(transaction=False) as pipe,
        ):
            pipe.hgetall(self.hits_key)
            pipe.zrevrange(self.denied_key, 0, max(0, top - 1), withscores=True)
            hits, ranked = await pipe.execute()
        return (
            {k.decode(): int(v) for k, v in hits.items()},
            [(member.decode(), int(score)) for member, score in ranked],
        )

    async def ping(self) -> None:
        async with self._slots, asyncio.timeout(REDIS_TIMEOUT):
            await self.client.ping()

    async def warm(self) -> None:
        """Open the whole pool now, so that a first burst does not wait on connects."""
        await asyncio.gather(*(self.ping() for _ in range(self.max_connections)))

    async def reset(self) -> None:
        """Drop every pooled connection: after an outage they are all dead."""
        await self.client.connection_pool.disconnect()

    async def aclose(self) -> None:
        await self.client.aclose()
