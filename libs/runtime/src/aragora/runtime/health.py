"""Health endpoints of the services without an API: orchestrator, agent-runner, ratelimit.

Each such process serves one port (its ``ARAGORA_<SERVICE>_METRICS_PORT``; 0: none):

* ``GET /healthz``: liveness. 200 while the event loop turns: a heartbeat task stamps the
  time every second; older than :data:`STALL_SECONDS` (a blocked or dead loop) is 503.
  It never looks at NATS or a database: an outage of those must not restart the process.
* ``GET /readyz`` and ``GET /health``: readiness, a JSON body (``status``, ``service``,
  ``instance``, ``version``, ``uptime_seconds``, ``checks``: status and ``latency_ms``
  per dependency). 503 while starting, while stopping, and when a check fails; 200 when
  every check is ``ok`` or only ``degraded`` (still serving, e.g. on a fallback).
* ``GET /metrics``: Prometheus, as before (404 when ``METRICS_ENABLED=false``).

The server is a small threaded WSGI server (prometheus_client's own ``/metrics`` server
is the same kind): a request never waits for the event loop to be free, so liveness can
answer "stalled" with the loop stuck and ``/metrics`` can still be scraped to see why.
Readiness checks are coroutines: the request thread runs them on the loop
(``run_coroutine_threadsafe``) and waits at most :data:`CHECK_TIMEOUT` + 1 s.

A service wires it with one call once its dependencies are up::

    async with health.serving(settings, "audit") as probe:
        conn = await bus.connect(...)
        ...
        probe.ready({"nats": health.nats_check(conn), **health.consumer_checks(consumer)})
        await stop.wait()
        probe.stopping()

A check is ``async () -> Mapping | None``: returning is ``ok`` (the mapping adds detail
to the body; ``{"status": "degraded", ...}`` marks a fallback), raising is ``error``.
Only :class:`CheckFailed` messages reach the body; other exceptions show their type
name, so no URL or credential leaks from a driver's message.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from importlib.metadata import PackageNotFoundError, version
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server
from wsgiref.types import StartResponse, WSGIEnvironment

from prometheus_client import make_wsgi_app

from aragora.runtime.bus import Connection, Consumer
from aragora.runtime.metrics import service_port
from aragora.runtime.settings import Settings

log = logging.getLogger("aragora.health")

Check = Callable[[], Awaitable[Mapping[str, Any] | None]]
LIVENESS_PATHS = ("/healthz",)
READINESS_PATHS = ("/readyz", "/health")
HEARTBEAT_SECONDS = 1.0
STALL_SECONDS = 10.0  # heartbeat older than this: the loop is stuck, liveness fails
CHECK_TIMEOUT = 2.0  # per check; the whole readiness answer waits at most this + 1 s
_REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}


class CheckFailed(Exception):
    """A check's verdict; its message is shown in the readiness body (say no secrets)."""


class Health:
    """Liveness and readiness of one process; the server thread reads, the loop writes."""

    def __init__(
        self,
        service: str,
        instance: str,
        version: str,
        *,
        stall_after: float = STALL_SECONDS,
        check_timeout: float = CHECK_TIMEOUT,
    ) -> None:
        self.service = service
        self.instance = instance
        self.version = version
        self.stall_after = stall_after
        self.check_timeout = check_timeout
        self.phase = "starting"  # -> ready -> stopping
        self._started = time.monotonic()
        self._beat = self._started
        self._checks: dict[str, Check] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    # --- the service's side (event loop) -------------------------------------------------

    def ready(self, checks: Mapping[str, Check]) -> None:
        """Serving now: readiness runs these named checks from here on."""
        self._checks = dict(checks)
        self.phase = "ready"

    def stopping(self) -> None:
        """Shutting down: readiness answers 503 from now on."""
        self.phase = "stopping"

    async def heartbeat(self) -> None:
        self._loop = asyncio.get_running_loop()
        while True:
            self._beat = time.monotonic()
            await asyncio.sleep(HEARTBEAT_SECONDS)

    async def run_checks(self) -> tuple[str, dict[str, dict[str, Any]]]:
        """(status, checks): ``not_ready`` if a check failed, ``degraded`` if one is."""
        names = list(self._checks)
        results = await asyncio.gather(*(self._timed(self._checks[n]) for n in names))
        checks = dict(zip(names, results, strict=True))
        statuses = {c["status"] for c in checks.values()}
        if "error" in statuses:
            return "not_ready", checks
        return ("ready" if statuses <= {"ok"} else "degraded"), checks

    async def _timed(self, check: Check) -> dict[str, Any]:
        started = time.perf_counter()
        try:
            extra = await asyncio.wait_for(check(), self.check_timeout)
        except CheckFailed as exc:
            result: dict[str, Any] = {"status": "error", "error": str(exc)}
        except TimeoutError:
            result = {"status": "error", "error": f"no answer in {self.check_timeout:g}s"}
        except Exception as exc:
            result = {"status": "error", "error": type(exc).__name__}
        else:
            result = {"status": "ok", **(extra or {})}
        result["latency_ms"] = round((time.perf_counter() - started) * 1000, 2)
        return result

    # --- the server's side (request threads) ---------------------------------------------

    def _about(self, status: str) -> dict[str, Any]:
        return {
            "status": status,
            "service": self.service,
            "instance": self.instance,
            "version": self.version,
            "uptime_seconds": int(time.monotonic() - self._started),
        }

    def liveness(self) -> tuple[int, dict[str, Any]]:
        lag = time.monotonic() - self._beat
        stalled = self._loop is None or lag > self.stall_after
        body = self._about("stalled" if stalled else "ok")
        body["heartbeat_age_seconds"] = round(lag, 3)
        return (503 if stalled else 200), body

    def readiness(self) -> tuple[int, dict[str, Any]]:
        loop = self._loop
        if self.phase != "ready" or loop is None:
            return 503, {**self._about(self.phase), "checks": {}}
        try:
            future = asyncio.run_coroutine_threadsafe(self.run_checks(), loop)
        except RuntimeError:  # the loop has closed
            return 503, {**self._about("stopping"), "checks": {}}
        try:
            status, checks = future.result(timeout=self.check_timeout + 1.0)
        except Exception:  # TimeoutError: the loop is too busy (or stuck) to run them
            future.cancel()
            body = {**self._about("not_ready"), "checks": {}}
            body["error"] = "the event loop did not run the checks in time"
            return 503, body
        return (503 if status == "not_ready" else 200), {**self._about(status), "checks": checks}


# --- checks every service uses ------------------------------------------------------------


def nats_check(conn: Connection) -> Check:
    """Connected to a NATS server, which answers a ping (the server as host:port)."""

    async def check() -> dict[str, Any]:
        nc = conn.nc
        url = nc.connected_url
        if not nc.is_connected or url is None:
            raise CheckFailed("reconnecting" if nc.is_reconnecting else "not connected")
        await nc.flush(timeout=int(CHECK_TIMEOUT))
        return {"server": f"{url.hostname}:{url.port}"}

    return check


def jetstream_check(conn: Connection) -> Check:
    """JetStream answers (its account info): the streams can be read and written."""

    async def check() -> dict[str, Any]:
        info = await conn.js.account_info()
        return {"streams": info.streams}

    return check


def consumer_checks(*consumers: Consumer) -> dict[str, Check]:
    """``consumer:<durable>`` per consumer: subscribed here, and known to the server."""

    def one(consumer: Consumer) -> Check:
        async def check() -> dict[str, Any]:
            if not consumer.subscribed:
                raise CheckFailed("not subscribed")
            spec = consumer.spec
            info = await consumer.conn.js.consumer_info(spec.stream, spec.durable)
            return {"pending": info.num_pending or 0, "ack_pending": info.num_ack_pending or 0}

        return check

    return {f"consumer:{c.spec.durable}": one(c) for c in consumers}


def blocking_check(probe: Callable[[], Mapping[str, Any] | None]) -> Check:
    """A synchronous probe (a database query) run in a thread of its own.

    One at a time: while a probe hangs (a database that does not answer), later checks
    fail at once instead of piling up threads; the default executor is never used, so a
    hung probe cannot take the service's own ``to_thread`` workers."""
    busy = threading.Lock()

    async def check() -> Mapping[str, Any] | None:
        if not busy.acquire(blocking=False):
            raise CheckFailed("the previous check has not returned yet")
        loop = asyncio.get_running_loop()
        done: asyncio.Future[Mapping[str, Any] | None] = loop.create_future()

        def settle(result: Mapping[str, Any] | None, error: BaseException | None) -> None:
            if done.done():
                return
            if error is None:
                done.set_result(result)
            else:
                done.set_exception(error)

        def call() -> None:
            result, error = None, None
            try:
                result = probe()
            except Exception as exc:
                error = exc
            finally:
                busy.release()
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(settle, result, error)

        threading.Thread(target=call, name="health-check", daemon=True).start()
        return await done

    return check


# --- the server ----------------------------------------------------------------------------


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a request stuck on a dead loop never holds up the exit


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # probes every few seconds
        pass


def _wsgi_app(health: Health, metrics: bool) -> Callable[..., Iterable[bytes]]:
    prometheus = make_wsgi_app()

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path, method = environ.get("PATH_INFO", ""), environ["REQUEST_METHOD"]
        body: dict[str, Any]
        if path == "/metrics" and metrics:
            result: Iterable[bytes] = prometheus(environ, start_response)
            return result
        if method not in ("GET", "HEAD"):
            code, body = 405, {"error": "GET only"}
        elif path in LIVENESS_PATHS:
            code, body = health.liveness()
        elif path in READINESS_PATHS:
            code, body = health.readiness()
        elif path == "/metrics":
            code, body = 404, {"error": "metrics are disabled (METRICS_ENABLED=false)"}
        else:
            code, body = 404, {"error": "not found", "paths": [*LIVENESS_PATHS, *READINESS_PATHS]}
        payload = json.dumps(body).encode()
        headers = [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(payload))),
            ("Cache-Control", "no-store"),
        ]
        start_response(f"{code} {_REASONS[code]}", headers)
        return [b"" if method == "HEAD" else payload]

    return app


def start_server(health: Health, host: str, port: int, *, metrics: bool = True) -> WSGIServer:
    """Serve health (and ``/metrics`` if ``metrics``) on host:port from a daemon thread."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)

    class HealthServer(_Server):
        address_family = infos[0][0]  # an IPv6 host binds too

    server = make_server(
        host, port, _wsgi_app(health, metrics), HealthServer, handler_class=_QuietHandler
    )
    thread = threading.Thread(target=server.serve_forever, name="health-server", daemon=True)
    thread.start()
    return server


def service_version(service: str) -> str:
    for package in (f"aragora-{service}", "aragora-runtime"):
        with contextlib.suppress(PackageNotFoundError):
            return version(package)
    return "0.0.0"


@contextlib.asynccontextmanager
async def serving(
    settings: Settings, service: str, *, port: int | None = None
) -> AsyncIterator[Health]:
    """Liveness at once, readiness after :meth:`Health.ready`, until the block ends.

    ``port`` defaults to :func:`~aragora.runtime.metrics.service_port` (0: nothing is
    served, the calls still work). A port that is taken is logged at ERROR and skipped:
    health and metrics never stop a service (its probes then fail, which says why)."""
    instance = settings.instance_id or f"{service}-{os.getpid()}"
    health = Health(service, instance, service_version(service))
    beat = asyncio.create_task(health.heartbeat(), name="health-heartbeat")
    await asyncio.sleep(0)  # the heartbeat has the loop: liveness is 200 from the start
    chosen = service_port(settings, service) if port is None else port
    server: WSGIServer | None = None
    if chosen:
        try:
            metrics = settings.metrics_enabled
            server = start_server(health, settings.api_host, chosen, metrics=metrics)
        except OSError as exc:
            log.error("health port %d not served: %s", chosen, exc)
        else:
            where = f"http://{settings.api_host}:{chosen}"
            log.info("health on %s/healthz and /readyz, metrics on /metrics", where)
    try:
        yield health
    finally:
        health.stopping()
        if server is not None:
            await asyncio.to_thread(server.shutdown)
            server.server_close()
        beat.cancel()
        await asyncio.gather(beat, return_exceptions=True)
