"""HTTP observability of the gateway: request metrics, the server span, the slow-request log.

One ASGI middleware (HTTP only; WebSocket streams have their own gauges) does the three:

* ``aragora_http_requests_total{method,route,status}`` and
  ``aragora_http_request_duration_seconds{method,route}``, labelled by the route
  *template* (``/api/debates/{debate_id:str}``), never the raw path, so the series stay
  few (off with ``METRICS_ENABLED=false``);
* a SERVER span ``<METHOD> <route>`` per request, child of the caller's ``traceparent``
  if it sent one, when tracing is on — the ``StartDebate`` it publishes carries it on;
* a log line on ``aragora.gateway.access`` (``api.log``) for every request slower than
  ``ARAGORA_SLOW_REQUEST_MS`` (WARNING, message ``slow request ... duration_ms=N``, which
  the runbook's ``grep -E "duration_ms=[5-9][0-9]{3}|duration_ms=[0-9]{5}"`` finds);
  with 0, every request at INFO.

Requests that match no route are answered by the router before any middleware runs and
are not counted.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send
from prometheus_client import Counter, Histogram

from aragora.runtime import tracing
from aragora.runtime.logs import correlation_id_var
from aragora.runtime.settings import Settings

log = logging.getLogger("aragora.gateway.access")

http_requests = Counter(
    "aragora_http_requests",
    "HTTP requests answered by the gateway, by method, route template and status",
    ["method", "route", "status"],
)
http_request_seconds = Histogram(
    "aragora_http_request_duration_seconds",
    "Time the gateway took to answer an HTTP request, by method and route template",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)


class HttpObservabilityMiddleware(ASGIMiddleware):
    scopes = (ScopeType.HTTP,)

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.perf_counter) -> None:
        self.metrics = settings.metrics_enabled
        self.slow_ms = settings.slow_request_ms
        self.clock = clock
        # The labelled children, looked up once per (method, route, status): ``labels()``
        # takes a lock and builds tuples on every call. As many entries as series.
        self._series: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        started = self.clock()
        method = str(scope.get("method", "GET"))
        route = str(scope.get("path_template") or "unmatched")
        status = [500]  # no response started: the server answers 500

        async def send_and_record(message: Any) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
            await send(message)

        headers = (
            {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
            if tracing.enabled()
            else {}
        )
        with tracing.server_span(f"{method} {route}", headers, method, route) as span:
            try:
                await next_app(scope, receive, send_and_record)
            finally:
                if span is not None:
                    span.set_attribute("http.response.status_code", status[0])
                    if status[0] >= 500:
                        from opentelemetry.trace import Status, StatusCode  # tracing is on

                        span.set_status(Status(StatusCode.ERROR, str(status[0])))
                self._record(method, route, scope.get("path", ""), status[0], started)

    def _record(self, method: str, route: str, path: str, status: int, started: float) -> None:
        elapsed = self.clock() - started
        if self.metrics:
            series = self._series.get((method, route, status))
            if series is None:
                series = (
                    http_requests.labels(method, route, str(status)),
                    http_request_seconds.labels(method, route),
                )
                self._series[(method, route, status)] = series
            series[0].inc()
            series[1].observe(elapsed)
        duration_ms = int(elapsed * 1000)
        if duration_ms >= self.slow_ms:
            log.log(
                logging.WARNING if self.slow_ms else logging.INFO,
                "slow request" if self.slow_ms else "request",
                extra={
                    "method": method,
                    "path": path,
                    "route": route,
                    "status": status,
                    "duration_ms": duration_ms,
                    "correlation_id": correlation_id_var.get(),
                },
            )
