"""``python -m aragora.fake_provider``: serve the fake provider until interrupted.

Once it accepts connections it prints ``fake-provider listening on http://HOST:PORT`` on
stdout, so callers can pass ``--port 0`` and read the port the OS chose.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys
from types import FrameType

import uvicorn

from aragora.fake_provider.app import create_app
from aragora.fake_provider.state import FakeConfig, FakeState


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    env = os.environ
    parser = argparse.ArgumentParser(
        prog="aragora-fake-provider",
        description="A fake OpenAI, Anthropic and Gemini API server for tests and benchmarks.",
    )
    parser.add_argument("--host", default=env.get("FAKE_PROVIDER_HOST", "127.0.0.1"))
    parser.add_argument(
        "--port", type=int, default=int(env.get("FAKE_PROVIDER_PORT", "8799")), help="0: any"
    )
    parser.add_argument(
        "--latency-ms", type=int, default=int(env.get("FAKE_PROVIDER_LATENCY_MS", "0"))
    )
    parser.add_argument(
        "--require-key",
        default=env.get("FAKE_PROVIDER_REQUIRE_KEY") or None,
        help="refuse requests without KEY (Bearer, x-api-key, x-goog-api-key or ?key=)",
    )
    parser.add_argument("--seed", type=int, default=int(env.get("FAKE_PROVIDER_SEED", "0")))
    parser.add_argument("--log-level", default=env.get("FAKE_PROVIDER_LOG_LEVEL", "warning"))
    return parser.parse_args(argv)


class _Server(uvicorn.Server):
    """Ends requests held by ``timeout`` mode as soon as shutdown starts."""

    def __init__(self, config: uvicorn.Config, fake: FakeState) -> None:
        super().__init__(config)
        self._fake = fake

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self._fake.stopping = True
        super().handle_exit(sig, frame)


async def _serve(server: uvicorn.Server, sock: socket.socket, url: str) -> None:
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            await task  # startup failed: surface its error
            return
        await asyncio.sleep(0.01)
    print(f"fake-provider listening on {url}", flush=True)
    await task


def main(argv: list[str] | None = None) -> None:
    """Parse flags (env fallbacks ``FAKE_PROVIDER_*``), bind, serve."""
    args = _parse_args(argv)
    config = FakeConfig(latency_ms=args.latency_ms, require_key=args.require_key)
    app = create_app(config, seed=args.seed)
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    # IPPROTO_TCP: asyncio then sets TCP_NODELAY on accepted connections (without it a
    # reused connection waits ~40 ms for delayed ACKs on every response).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Binding here, not in uvicorn, is what lets --port 0 report the port actually chosen.
    sock.bind((args.host, args.port))
    port = sock.getsockname()[1]
    host = f"[{args.host}]" if family == socket.AF_INET6 else args.host
    uv_config = uvicorn.Config(
        app,
        log_level=args.log_level,
        access_log=False,
        lifespan="on",
        # Hanging "timeout"-mode requests must not hold up shutdown.
        timeout_graceful_shutdown=1,
    )
    server = _Server(uv_config, app.state.fake)
    try:
        asyncio.run(_serve(server, sock, f"http://{host}:{port}"))
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
    sys.exit(0 if server.started else 1)


if __name__ == "__main__":
    main()
