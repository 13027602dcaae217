"""Process entry helper: logging, metrics, traces, Sentry, uvloop, graceful SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Awaitable, Callable

import uvloop

from aragora.runtime.errortracking import configure_sentry, flush_sentry
from aragora.runtime.logs import configure_logging
from aragora.runtime.metrics import configure_metrics
from aragora.runtime.settings import Settings, SettingsError, load_settings
from aragora.runtime.tracing import configure_tracing, shutdown_tracing

log = logging.getLogger("aragora.process")

ServiceMain = Callable[[Settings, asyncio.Event], Awaitable[None]]


_reload_handlers: list[Callable[[], None]] = []


def on_reload(handler: Callable[[], None]) -> Callable[[], None]:
    """Run ``handler`` (on the event loop) when the process gets SIGUSR1; returns a
    function that unregisters it."""
    _reload_handlers.append(handler)
    return lambda: _reload_handlers.remove(handler)


def _reload(service: str) -> None:
    if not _reload_handlers:
        log.info("SIGUSR1: %s has nothing to reload", service)
    for handler in list(_reload_handlers):
        try:
            handler()
        except Exception:
            log.exception("SIGUSR1 reload failed")


def run_service(service: str, service_main: ServiceMain) -> None:
    """Run ``service_main(settings, stop)`` until it returns; SIGTERM/SIGINT set ``stop``."""
    try:
        settings = load_settings()
    except SettingsError as exc:
        raise SystemExit(f"{service}: configuration error: {exc}") from None
    configure_logging(service, settings.log_level, settings.log_dir)
    configure_metrics(settings)
    configure_sentry(service, settings)
    configure_tracing(service, settings)

    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        # The runbook's `kill -USR1 $(pgrep -f aragora)` reaches every process: reload
        # what registered for it (the gateway's WebSocket handler), never die of it.
        loop.add_signal_handler(signal.SIGUSR1, _reload, service)
        log.info("service starting", extra={"pid": os.getpid()})
        await service_main(settings, stop)
        log.info("service stopped")

    try:
        uvloop.run(runner())
    finally:
        shutdown_tracing()
        flush_sentry()
