"""A TCP proxy a test controls: forwards a free local port to an upstream, cuts on demand.

``cut()`` closes every proxied connection at once and makes the port unreachable until
``restore()``: in ``"blackhole"`` mode new connections are accepted by the kernel but
never answered (a network partition: clients wait for their own timeouts); in
``"refuse"`` mode they are closed at once (a server that is down). Threads only, so it
works beside the synchronous test code and whatever event loop the test runs.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import struct
import threading
from typing import Literal

from aragora.runtime.natsserver import free_port

Mode = Literal["blackhole", "refuse"]


def _reset(sock: socket.socket) -> None:
    """Close with RST (SO_LINGER 0) so the peer sees the failure at once."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()


class TcpProxy:
    def __init__(self, upstream_port: int, upstream_host: str = "127.0.0.1") -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = free_port()
        self.mode: Mode | None = None  # None: forwarding
        self.accepted = 0
        self._lock = threading.Lock()
        self._pairs: set[tuple[socket.socket, socket.socket]] = set()
        self._held: set[socket.socket] = set()  # blackholed clients, kept silent
        self._stopping = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", self.port), backlog=128)
        self._thread = threading.Thread(target=self._accept_loop, name="proxy", daemon=True)

    def start(self) -> TcpProxy:
        self._thread.start()
        return self

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def connections(self) -> int:
        with self._lock:
            return len(self._pairs)

    # --- control ---------------------------------------------------------------------

    def cut(self, mode: Mode = "blackhole") -> None:
        """Drop every open connection; new ones hang (blackhole) or fail (refuse)."""
        with self._lock:
            self.mode = mode
            pairs, self._pairs = self._pairs, set()
        for client, upstream in pairs:
            _reset(client)
            _reset(upstream)

    def restore(self) -> None:
        """Forward new connections again.

        Connections blackholed during the cut stay silent (until :meth:`close`), like
        packets lost in a partition: a client must time out on them by itself.
        """
        with self._lock:
            self.mode = None

    def close(self) -> None:
        self._stopping.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        self.cut("refuse")
        with self._lock:
            held, self._held = self._held, set()
        for sock in held:
            _reset(sock)
        self._thread.join(timeout=5)

    # --- plumbing --------------------------------------------------------------------

    def _accept_loop(self) -> None:
        self._listener.settimeout(0.2)
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted += 1
            with self._lock:
                mode = self.mode
                if mode == "blackhole":
                    self._held.add(client)
                    continue
            if mode == "refuse":
                _reset(client)
                continue
            threading.Thread(target=self._forward, args=(client,), daemon=True).start()

    def _forward(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.upstream, timeout=5)
        except OSError:
            _reset(client)
            return
        upstream.settimeout(None)
        pair = (client, upstream)
        with self._lock:
            if self.mode is not None:  # cut while connecting
                _reset(client)
                _reset(upstream)
                return
            self._pairs.add(pair)
        peer = {client: upstream, upstream: client}
        sel = selectors.DefaultSelector()
        try:
            sel.register(client, selectors.EVENT_READ)
            sel.register(upstream, selectors.EVENT_READ)
            while not self._stopping.is_set():
                for key, _ in sel.select(timeout=0.5):
                    src: socket.socket = key.fileobj  # type: ignore[assignment]
                    data = src.recv(65536)
                    if not data:
                        return
                    peer[src].sendall(data)
                with self._lock:
                    if pair not in self._pairs:
                        return
        except (OSError, ValueError):
            return
        finally:
            sel.close()
            with self._lock:
                self._pairs.discard(pair)
            _reset(client)
            _reset(upstream)
