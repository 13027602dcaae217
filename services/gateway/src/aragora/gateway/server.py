"""The gateway process: the app under uvicorn on the API port and the WebSocket port.

SIGUSR1 (the runbook's "restart WebSocket handler") closes every WebSocket stream with
1012 (service restart; clients resume with ``since``) and restarts the WebSocket port's
server, while the API port keeps serving requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator

import uvicorn
from litestar import Litestar
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Receive, Scope, Send

from aragora.gateway import metrics
from aragora.gateway.app import create_app, running
from aragora.gateway.deps import Deps
from aragora.gateway.live import LiveHub
from aragora.gateway.readmodel import ReadModel
from aragora.gateway.ws import RAW_SEND
from aragora.runtime import process
from aragora.runtime.agents import load_registry
from aragora.runtime.settings import Settings

log = logging.getLogger("aragora.gateway")
ws_log = logging.getLogger("aragora.gateway.websocket")
RELOAD_DEBOUNCE_SECONDS = 2.0  # `kill -USR1 $(pgrep -f aragora)` also signals the supervisor


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the process owns SIGTERM/SIGINT/SIGUSR1."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def with_raw_send(app: ASGIApp) -> ASGIApp:
    """The app, with uvicorn's own ``send`` in each WebSocket scope (``ws.Wire``)."""

    async def asgi(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.WEBSOCKET:
            scope[RAW_SEND] = send  # type: ignore[literal-required]
        await app(scope, receive, send)

    return asgi


class Servers:
    """One uvicorn server per port; the WebSocket port's can be restarted alone."""

    def __init__(self, app: Litestar, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.tasks: dict[int, asyncio.Task[None]] = {}
        self.servers: dict[int, _Server] = {}

    def start(self, port: int) -> None:
        s = self.settings
        server = _Server(
            uvicorn.Config(
                with_raw_send(self.app),
                host=s.api_host,
                port=port,
                log_config=None,
                access_log=False,
                lifespan="off",
                ws="websockets-sansio",  # ws.Wire writes fan-out frames to it directly
                # No permessage-deflate: it compresses each event once per connection
                # (20 s instead of 5.6 s to reach 1,000 followers, twice the memory per
                # idle connection; docs/benchmarks.md) and rules out the shared frame.
                ws_per_message_deflate=False,
                ws_max_size=s.ws_max_message_bytes,
                timeout_graceful_shutdown=10,
            )
        )
        self.servers[port] = server
        self.tasks[port] = asyncio.create_task(server.serve(), name=f"http-{port}")

    async def stop(self, port: int) -> None:
        self.servers[port].should_exit = True
        await asyncio.gather(self.tasks.pop(port), return_exceptions=True)
        del self.servers[port]

    async def stop_all(self) -> None:
        for server in self.servers.values():
            server.should_exit = True
        await asyncio.gather(*self.tasks.values(), return_exceptions=True)


async def reload_websockets(deps: Deps, servers: Servers) -> None:
    s = deps.settings
    closed = deps.hub.close_all(1012, "WebSocket handler reloading")
    ws_log.warning("SIGUSR1: reloading the WebSocket handler", extra={"closing": closed})
    if s.ws_port != s.api_port and s.ws_port in servers.servers:
        await servers.stop(s.ws_port)
        servers.start(s.ws_port)
    ws_log.info(
        "WebSocket handler reloaded",
        extra={"closed": closed, "ws_port": s.ws_port, "api_port": s.api_port},
    )


async def run(settings: Settings, stop: asyncio.Event) -> None:
    deps = Deps(
        settings=settings,
        registry=load_registry(settings),
        readmodel=ReadModel(settings),
        hub=LiveHub(settings.ws_send_queue),
    )
    metrics.websocket_max_connections.set(settings.ws_max_connections)
    servers = Servers(create_app(deps, own_lifecycle=False), settings)
    reload = asyncio.Event()
    last_reload = [0.0]

    def on_usr1() -> None:
        now = time.monotonic()
        if now - last_reload[0] >= RELOAD_DEBOUNCE_SECONDS:
            last_reload[0] = now
            reload.set()

    unregister = process.on_reload(on_usr1)
    async with running(deps):
        for port in dict.fromkeys((settings.api_port, settings.ws_port)):
            servers.start(port)
        log.info(
            "gateway ready",
            extra={
                "api": f"http://{settings.api_host}:{settings.api_port}",
                "ws_port": settings.ws_port,
            },
        )
        stopped = asyncio.create_task(stop.wait())
        try:
            while True:
                reloading = asyncio.create_task(reload.wait())
                done, _ = await asyncio.wait(
                    [stopped, reloading, *servers.tasks.values()],
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if done == {reloading}:
                    reload.clear()
                    await reload_websockets(deps, servers)
                    continue
                reloading.cancel()
                break
        finally:
            unregister()
            deps.hub.close_all()  # open streams end with 1001; clients resume with since
            await servers.stop_all()
        for t in done:
            if t is not stopped and t is not reloading and t.exception() is not None:
                raise SystemExit(f"gateway: server failed: {t.exception()}")
