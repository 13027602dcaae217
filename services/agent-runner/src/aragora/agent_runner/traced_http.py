"""A span around every provider HTTP call (used only when tracing is on).

The span (kind CLIENT, named ``<METHOD> <host>``) starts when the request is sent and
ends when the response body is closed, so a streamed answer is covered to its last byte.
It records method, host, path and status, never the query string, headers or bodies
(keys travel in them). No trace context is sent to the provider.
"""

from __future__ import annotations

import math
import os
from collections.abc import AsyncIterator

import httpx
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from aragora.runtime import tracing


class _SpanStream(httpx.AsyncByteStream):
    def __init__(self, inner: httpx.AsyncByteStream, span: Span) -> None:
        self._inner = inner
        self._span = span

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._inner:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        finally:
            self._span.end()


class TracedTransport(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self._inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        span = tracing.start_span(
            f"{request.method} {request.url.host}",
            kind=SpanKind.CLIENT,
            attributes={
                "http.request.method": request.method,
                "server.address": request.url.host,
                "url.path": request.url.path,
            },
        )
        if span is None:
            return await self._inner.handle_async_request(request)
        try:
            response = await self._inner.handle_async_request(request)
        except BaseException as exc:
            span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            span.end()
            raise
        span.set_attribute("http.response.status_code", response.status_code)
        if response.status_code >= 400:
            span.set_status(Status(StatusCode.ERROR, str(response.status_code)))
        if isinstance(response.stream, httpx.AsyncByteStream):
            response.stream = _SpanStream(response.stream, span)
        else:
            span.end()
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


SHARD_SIZE = 32  # requests in flight per connection pool
_PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy")


def _proxied() -> bool:
    """A proxy is configured in the environment (an explicit transport would bypass it)."""
    return any(key.lower() in _PROXY_VARS and value for key, value in os.environ.items())


MAX_SHARDS = 32


class ShardedTransport(httpx.AsyncBaseTransport):
    """Requests spread round-robin over several connection pools.

    httpcore's pool re-examines every waiting request against every connection whenever
    one changes, so one pool with hundreds of streamed calls in flight spends seconds on
    its own bookkeeping (300 concurrent 1 s calls to the fake provider: 6.0 s through one
    pool, 1.6 s through eight). Pools of ~32 keep that cost small.
    """

    def __init__(self, max_in_flight: int) -> None:
        count = max(1, min(MAX_SHARDS, math.ceil(max_in_flight / SHARD_SIZE)))
        per_shard = math.ceil(max_in_flight / count)
        limits = httpx.Limits(max_connections=per_shard, max_keepalive_connections=per_shard)
        self.shards: list[httpx.AsyncBaseTransport] = [
            httpx.AsyncHTTPTransport(limits=limits) for _ in range(count)
        ]
        self._turn = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        shard = self.shards[self._turn % len(self.shards)]
        self._turn += 1
        return await shard.handle_async_request(request)

    async def aclose(self) -> None:
        for shard in self.shards:
            await shard.aclose()


def http_client(max_in_flight: int = 100) -> httpx.AsyncClient:
    """The runner's shared client; provider calls are traced when tracing is on.

    Its pools hold ``max_in_flight`` connections in all (ARAGORA_AGENT_CONCURRENCY): httpx's
    default of 100 would otherwise cap the turns in flight below the runner's concurrency.
    """
    timeout = httpx.Timeout(None, connect=10.0, pool=None)
    if _proxied() and not tracing.enabled():  # httpx applies HTTPS_PROXY & co. itself
        limits = httpx.Limits(max_connections=max_in_flight, max_keepalive_connections=None)
        return httpx.AsyncClient(timeout=timeout, limits=limits)
    transport: httpx.AsyncBaseTransport = ShardedTransport(max_in_flight)
    if tracing.enabled():
        transport = TracedTransport(transport)
    return httpx.AsyncClient(timeout=timeout, transport=transport)
