"""Process entry helper: logging, uvloop, and graceful stop on SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Awaitable, Callable

import uvloop

from aragora.runtime.logs import configure_logging
from aragora.runtime.settings import Settings, SettingsError, load_settings

log = logging.getLogger("aragora.process")

ServiceMain = Callable[[Settings, asyncio.Event], Awaitable[None]]


def run_service(service: str, service_main: ServiceMain) -> None:
    """Run ``service_main(settings, stop)`` until it returns; SIGTERM/SIGINT set ``stop``."""
    try:
        settings = load_settings()
    except SettingsError as exc:
        raise SystemExit(f"{service}: configuration error: {exc}") from None
    configure_logging(service, settings.log_level)

    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        log.info("service starting", extra={"pid": os.getpid()})
        await service_main(settings, stop)
        log.info("service stopped")

    uvloop.run(runner())
