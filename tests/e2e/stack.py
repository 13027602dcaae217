"""The whole stack as processes, started the way users start it (`aragora serve`)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import websockets.sync.client

from aragora.runtime.natsserver import free_port


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if ppid == pid:
            found.append(int(entry.name))
    return found


def _cmdline(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _instance(pid: int) -> str | None:
    """The ARAGORA_INSTANCE_ID the supervisor gave a service (its name, e.g. agent-runner-2)."""
    try:
        environ = (Path("/proc") / str(pid) / "environ").read_bytes().split(b"\0")
    except OSError:
        return None
    for entry in environ:
        if entry.startswith(b"ARAGORA_INSTANCE_ID="):
            return entry.split(b"=", 1)[1].decode()
    return None


def alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


class Stack:
    def __init__(self, tmp_path: Path, env: dict[str, str] | None = None, runners: int = 1) -> None:
        self.runners = runners
        self.api_port = free_port()
        self.ws_port = free_port()
        self.nats_port = free_port()
        self.data_dir = tmp_path / "stack"
        self.log_path = tmp_path / "stack.log"
        self.env = {
            **os.environ,
            "ARAGORA_NATS_PORT": str(self.nats_port),
            "ARAGORA_DEMO_LATENCY_MS": "20",
            "ARAGORA_LOG_LEVEL": "INFO",
            **(env or {}),
        }
        for key in ("ARAGORA_NATS_URL", "OPENAI_API_KEY", "OPENAI_BASE_URL"):
            if env is None or key not in env:
                self.env.pop(key, None)
        if env is None or "ARAGORA_API_TOKEN" not in env:
            # As `make serve`: the owner token is generated into the data dir.
            self.env.pop("ARAGORA_API_TOKEN", None)
        self.process: subprocess.Popen[bytes] | None = None
        self._http: httpx.Client | None = None

    @property
    def token(self) -> str:
        """The owner token: ARAGORA_API_TOKEN, else the one `aragora serve` generated."""
        return (
            self.env.get("ARAGORA_API_TOKEN") or (self.data_dir / "api-token").read_text().strip()
        )

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    @property
    def http(self) -> httpx.Client:
        """An HTTP client that authenticates as the stack's owner."""
        if self._http is None:
            self._http = httpx.Client(headers=self.headers, timeout=10)
        return self._http

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def start(self, timeout: float = 60.0) -> Stack:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable, "-m", "aragora.cli", "serve",
                "--api-port", str(self.api_port), "--ws-port", str(self.ws_port),
                "--data-dir", str(self.data_dir),
                *(("--runners", str(self.runners)) if self.runners != 1 else ()),
            ],
            env=self.env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"aragora serve exited:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"stack not ready in {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:]

    def service_pids(self) -> dict[str, int]:
        assert self.process is not None
        pids = {}
        for pid in _children(self.process.pid):
            cmd = _cmdline(pid)
            for name in ("orchestrator", "agent_runner", "gateway"):
                if f"aragora.{name}" in cmd:
                    pids[name] = pid
            if "nats-server" in cmd:
                pids["nats"] = pid
        return pids

    def named_pids(self) -> dict[str, int]:
        """Live pid of each service by its supervisor name (orchestrator, agent-runner-2,
        gateway...) and of the embedded nats-server as ``nats``."""
        assert self.process is not None
        pids = {}
        for pid in _children(self.process.pid):
            if not alive(pid):
                continue
            if "nats-server" in _cmdline(pid):
                pids["nats"] = pid
            elif (name := _instance(pid)) is not None:
                pids[name] = pid
        return pids

    def runner_pids(self) -> list[int]:
        """Pids of the live agent-runner processes."""
        return [pid for name, pid in self.named_pids().items() if name.startswith("agent-runner")]

    def kill(self, name: str) -> int:
        """SIGKILL a service by its supervisor name (or ``nats``); returns the pid killed."""
        pid = self.named_pids()[name]
        os.kill(pid, signal.SIGKILL)
        return pid

    def wait_restarted(self, name: str, old_pid: int, timeout: float = 60.0) -> int:
        """Wait until the supervisor has brought ``name`` back (a new live pid); return it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid = self.named_pids().get(name)
            if pid is not None and pid != old_pid:
                return pid
            time.sleep(0.1)
        raise AssertionError(f"{name} not restarted within {timeout}s:\n{self.log()}")

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Wait until the gateway answers /readyz with 200."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"gateway not ready within {timeout}s:\n{self.log()}")

    def stop(self) -> int:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise

    # --- client helpers -----------------------------------------------------------------

    def post_debate(self, **body: Any) -> str:
        response = self.http.post(f"{self.url}/api/debates", json=body)
        assert response.status_code == 202, response.text
        debate_id: str = response.json()["id"]
        return debate_id

    def debate(self, debate_id: str) -> dict[str, Any]:
        response = self.http.get(f"{self.url}/api/debates/{debate_id}")
        response.raise_for_status()
        view: dict[str, Any] = response.json()
        return view

    def events(self, debate_id: str, after: int = 0) -> list[dict[str, Any]]:
        response = self.http.get(
            f"{self.url}/api/debates/{debate_id}/events", params={"after": after}
        )
        response.raise_for_status()
        events: list[dict[str, Any]] = response.json()["events"]
        return events

    def wait_finished(self, debate_id: str, timeout: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            view = self.debate(debate_id)
            if view["status"] not in ("running", "queued"):
                return view
            time.sleep(0.1)
        raise AssertionError(f"debate {debate_id} still running:\n{self.log()}")

    def stream(
        self, debate_id: str, since: int = 0, port: int | None = None
    ) -> list[dict[str, Any]]:
        """Follow the WebSocket until the server closes it; returns the debate events."""
        url = f"ws://127.0.0.1:{port or self.ws_port}/ws/debates/{debate_id}?since={since}"
        received: list[dict[str, Any]] = []
        with websockets.sync.client.connect(
            url, open_timeout=10, additional_headers=self.headers
        ) as ws:
            for frame in ws:
                event = json.loads(frame)
                if event["type"].startswith("debate."):
                    received.append(event)
        return received
