"""``aragora serve``: the whole stack on one host, each service its own process.

Starts nats-server from the wheel (unless ARAGORA_NATS_URL points at one), then the
orchestrator, agent-runner(s), ratelimit, audit and gateway; restarts a service that dies, with
backoff, and the embedded nats-server too (same port, same store: the services reconnect on
their own); on SIGTERM/SIGINT stops them in dependency order (gateway, runners, orchestrator — whose
relay drains the outbox — then NATS) and leaves no process behind: children also get
SIGTERM from the kernel if the supervisor itself is killed (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from aragora.runtime.credentials import ensure_local_token, find_token, token_path
from aragora.runtime.natsserver import EmbeddedNats, NatsServerError, port_open
from aragora.runtime.settings import Settings

STOP_TIMEOUT = 25.0
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # runs in the child between fork and exec
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Restarts:
    """Backoff state of one supervised process: 1 s doubling to 30 s, reset after 60 s up."""

    restarts: int = 0
    next_start: float = 0.0
    started_at: float = 0.0

    def due(self, now: float) -> float | None:
        """None if a restart is due now; else the delay newly scheduled (0.0 if already)."""
        if self.next_start == 0.0:
            if now - self.started_at > 60:
                self.restarts = 0  # it had been healthy for a while
            delay = min(2.0**self.restarts, 30.0)
            self.next_start = now + delay
            return delay
        if now >= self.next_start:
            self.restarts += 1
            self.next_start = 0.0
            return None
        return 0.0


@dataclass
class Child:
    name: str
    module: str
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    backoff: Restarts = field(default_factory=Restarts)

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", self.module],
            env=self.env,
            stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
            # Own process group: a terminal's Ctrl-C reaches only the supervisor, which
            # then stops the services in order instead of all at once.
            start_new_session=True,
        )
        self.backoff.started_at = time.monotonic()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


class Supervisor:
    def __init__(self, settings: Settings, env: dict[str, str], runners: int = 1) -> None:
        self.settings = settings
        self.env = env
        self.nats: EmbeddedNats | None = None
        self.nats_backoff = Restarts()
        names = [("orchestrator", "aragora.orchestrator")]
        names += [
            (f"agent-runner-{i + 1}" if runners > 1 else "agent-runner", "aragora.agent_runner")
            for i in range(runners)
        ]
        # In-memory limits unless ARAGORA_ENABLE_REDIS_RATE_LIMIT=1 (the embedded default
        # never touches a Redis of the machine's).
        names.append(("ratelimit", "aragora.ratelimit"))
        # Security events wait in the stream until the audit service records them.
        names.append(("audit", "aragora.audit"))
        names.append(("gateway", "aragora.gateway"))
        self.children = [
            Child(name, module, {**env, "ARAGORA_INSTANCE_ID": name}) for name, module in names
        ]
        self._stopping = False

    def _say(self, text: str) -> None:
        print(f"[aragora] {text}", flush=True)

    def start(self) -> None:
        s = self.settings
        for port, what in ((s.api_port, "ARAGORA_API_PORT"), (s.ws_port, "ARAGORA_WS_PORT")):
            if port_open(s.api_host, port):
                raise SystemExit(f"port {port} is already in use: stop what holds it or set {what}")
        if not s.nats_url:
            self.nats = EmbeddedNats(s.nats_port, s.data_dir / "nats", sync=s.nats_sync)
            if port_open(self.nats.host, self.nats.port):  # never let a child use another's
                raise NatsServerError(
                    f"port {self.nats.port} is already in use; set ARAGORA_NATS_PORT to a "
                    "free port or ARAGORA_NATS_URL to use a running server"
                )
            for child in self.children:
                child.env["ARAGORA_NATS_URL"] = self.nats.url
        store = "PostgreSQL" if s.uses_postgres else f"SQLite in {s.data_dir}"
        self._say(f"event store: {store}")
        # The gateway first (it is the slowest to import and what "ready" waits for), and
        # every service before nats-server is up: they take far longer to import than it
        # takes to listen, and they retry their first connection until it does.
        for child in sorted(self.children, key=lambda c: c.module != "aragora.gateway"):
            child.start()
        if self.nats is not None:
            self.nats.start()
            self.nats_backoff.started_at = time.monotonic()
            self._say(f"nats-server (JetStream) on {self.nats.url}, data in {s.data_dir / 'nats'}")
        self._wait_ready()

    def _wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        host = (
            "127.0.0.1" if self.settings.api_host in ("0.0.0.0", "::") else self.settings.api_host
        )
        while time.monotonic() < deadline:
            if port_open(host, self.settings.api_port) and port_open(host, self.settings.ws_port):
                api = f"http://localhost:{self.settings.api_port}"
                self._say(f"ready: API {api}  WebSocket ws://localhost:{self.settings.ws_port}")
                token = token_path(self.settings)
                where = "$ARAGORA_API_TOKEN" if self.settings.api_token else f"$(cat {token})"
                # Like Jupyter: the generated local token in the web UI's URL fragment (never
                # sent to a server), printed only to an interactive terminal, never logged.
                local = not self.settings.api_token and sys.stdout.isatty()
                fragment = f"#token={find_token(self.settings)}" if local else ""
                self._say(f"ui:    {api}/ui/{fragment}")
                self._say(f"try:   curl {api}/api/health")
                self._say(f'       curl -H "Authorization: Bearer {where}" {api}/api/debates')
                cli = os.path.relpath(Path(sys.executable).parent / "aragora")
                self._say(f'       {cli} ask "Should we adopt a 4-day work week?"')
                self._say("stop:  Ctrl-C")
                return
            for child in self.children:
                if child.process is not None and child.process.poll() is not None:
                    raise SystemExit(f"{child.name} exited during start-up (see its log above)")
            time.sleep(0.02)
        raise SystemExit(f"the gateway did not open port {self.settings.api_port} in {timeout}s")

    def watch(self) -> None:
        """Restart crashed services and nats-server (backoff 1 s doubling to 30 s) until stopped."""
        while not self._stopping:
            now = time.monotonic()
            self._watch_nats(now)
            for child in self.children:
                if child.alive() or self._stopping:
                    continue
                delay = child.backoff.due(now)
                if delay is None:
                    child.start()
                elif delay:
                    code = child.process.returncode if child.process else None
                    self._say(f"{child.name} exited with {code}; restarting in {delay:.0f}s")
            time.sleep(0.2)

    def _nats_alive(self) -> bool:
        return self.nats is None or self.nats.process is None or self.nats.process.poll() is None

    def _watch_nats(self, now: float) -> None:
        """Bring a dead embedded nats-server back on the same port with the same store.

        The services are not restarted: their connections reconnect forever and their
        consumers re-subscribe; JetStream's file store keeps streams, consumers and acks.
        """
        if self._nats_alive() or self._stopping:
            return
        assert self.nats is not None and self.nats.process is not None
        delay = self.nats_backoff.due(now)
        if delay:
            code = self.nats.process.returncode
            self._say(f"nats-server exited with {code}; restarting in {delay:.0f}s")
        elif delay is None:
            self._start_nats()

    def _start_nats(self) -> bool:
        assert self.nats is not None
        try:
            self.nats.start()
        except NatsServerError as exc:
            self._say(f"nats-server did not restart: {exc}")
            return False
        self.nats_backoff.started_at = time.monotonic()
        self._say(f"nats-server restarted on {self.nats.url}")
        return True

    def stop(self) -> None:
        self._stopping = True
        self._say(
            "stopping: gateway, agent-runners, ratelimit and audit, orchestrator (drains its "
            "outbox), NATS"
        )
        if not self._nats_alive():
            self._start_nats()  # so that the orchestrator can drain its outbox
        order = sorted(
            self.children, key=lambda c: {"gateway": 0, "orchestrator": 2}.get(c.name, 1)
        )
        for group in (0, 1, 2):
            members = [
                c for c in order if {"gateway": 0, "orchestrator": 2}.get(c.name, 1) == group
            ]
            for child in members:
                if child.alive():
                    assert child.process is not None
                    child.process.send_signal(signal.SIGTERM)
            for child in members:
                if child.process is None:
                    continue
                try:
                    child.process.wait(STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    self._say(f"{child.name} did not stop in {STOP_TIMEOUT:.0f}s; killing it")
                    child.process.kill()
                    child.process.wait()
        if self.nats is not None:
            self.nats.stop()
        self._say("stopped")


def serve(settings: Settings, runners: int = 1) -> int:
    env = dict(os.environ)
    env.update(
        {
            "ARAGORA_DATA_DIR": str(Path(settings.data_dir).resolve()),
            "ARAGORA_API_PORT": str(settings.api_port),
            "ARAGORA_WS_PORT": str(settings.ws_port),
            "ARAGORA_API_HOST": settings.api_host,
            "PYTHONUNBUFFERED": "1",
        }
    )
    # Secure by default: the gateway's owner token (ARAGORA_API_TOKEN, else one generated
    # into the data dir) reaches only the processes it starts, never the terminal or logs.
    env["ARAGORA_API_TOKEN"] = ensure_local_token(settings)
    supervisor = Supervisor(settings, env, runners=runners)

    def on_signal(signum: int, frame: object) -> None:
        # Later signals are ignored: the first one already started the orderly stop.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise KeyboardInterrupt

    def on_usr1(signum: int, frame: object) -> None:
        # `kill -USR1 <this pid>`: the gateway reloads its WebSocket handler (it ignores a
        # second USR1 within 2 s, so `kill -USR1 $(pgrep -f aragora)` reloads it once).
        for child in supervisor.children:
            if child.module == "aragora.gateway" and child.alive() and child.process:
                child.process.send_signal(signal.SIGUSR1)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGUSR1, on_usr1)
    try:
        supervisor.start()
        supervisor.watch()
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        supervisor.stop()
    return 0
