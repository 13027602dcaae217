"""A span around every provider HTTP call (used only when tracing is on).

The span (kind CLIENT, named ``<METHOD> <host>``) starts when the request is sent and
ends when the response body is closed, so a streamed answer is covered to its last byte.
It records method, host, path and status, never the query string, headers or bodies
(keys travel in them). No trace context is sent to the provider.
"""

from __future__ import annotations

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


def http_client(max_in_flight: int = 100) -> httpx.AsyncClient:
    """The runner's shared client; provider calls are traced when tracing is on.

    Its pool holds ``max_in_flight`` connections (ARAGORA_AGENT_CONCURRENCY): httpx's
    default of 100 would otherwise cap the turns in flight below the runner's concurrency.
    """
    timeout = httpx.Timeout(None, connect=10.0, pool=None)
    limits = httpx.Limits(max_connections=max_in_flight, max_keepalive_connections=max_in_flight)
    if not tracing.enabled():
        return httpx.AsyncClient(timeout=timeout, limits=limits)
    transport = TracedTransport(httpx.AsyncHTTPTransport(limits=limits))
    return httpx.AsyncClient(timeout=timeout, transport=transport)
