"""In-process fan-out of projected events to this replica's WebSocket clients.

Every gateway replica projects every event with its own consumer (``app.running``) and
publishes it here *after* the read model holds it (applied now, or already applied by
another replica sharing the database). A client subscribes first and then reads the read
model, so it sees every event at least once and drops by ``seq`` what it already sent.

Token deltas (``agent.token_delta``, core NATS ``aragora.live.debate.*.tokens``) are
*ephemeral*: forwarded to that debate's live streams only (not the firehose), never
stored, never replayed, carrying no ``seq``; a client too slow for them just misses some.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from nats.aio.msg import Msg

from aragora.contracts import codec
from aragora.gateway.ws_stats import WsStats

log = logging.getLogger("aragora.gateway.live")

QUEUE_LIMIT = 1000
CONTROL_LIMIT = 64  # client messages not yet handled; a client flooding more is closed


@dataclass(frozen=True)
class LiveEvent:
    debate_id: str
    seq: int
    body: str
    terminal: bool
    ephemeral: bool = False  # a token delta: no seq, sent as is, never replayed
    owner: str = ""  # the debate's requested_by, for the firehose's visibility check
    public: bool = False


class SlowConsumer(Exception):
    """The client fell behind by the queue bound; it must resume with ``since``."""


class Closing(Exception):
    """The server asks the stream to end (shutdown, SIGUSR1 reload, revoked token)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


ShuttingDown = Closing  # the name older code and tests use


class Subscription:
    """One WebSocket connection's queue, following one or more debates (``None``: all)."""

    def __init__(
        self, hub: LiveHub, limit: int, *, identity: Any = None, address: str = ""
    ) -> None:
        self.hub = hub
        self.keys: set[str | None] = set()
        self.queue: asyncio.Queue[LiveEvent] = asyncio.Queue(limit)
        self.control: asyncio.Queue[Any] = asyncio.Queue(CONTROL_LIMIT)
        self.overflowed = False
        self.closing = asyncio.Event()
        self.close_code, self.close_reason = 1001, "server restarting"
        self.identity = identity  # who authenticated it (auth.Identity; None: auth off)
        self.address = address

    @property
    def debate_id(self) -> str | None:
        """The one debate followed (or None), for code that follows a single debate."""
        return next(iter(self.keys), None)

    def follow(self, debate_id: str | None) -> None:
        self.keys.add(debate_id)
        self.hub._subs.setdefault(debate_id, set()).add(self)

    def unfollow(self, debate_id: str | None) -> None:
        self.keys.discard(debate_id)
        self.hub._drop(debate_id, self)

    def ask_to_close(self, code: int, reason: str) -> None:
        if not self.closing.is_set():
            self.close_code, self.close_reason = code, reason
            self.closing.set()

    def _raise_if_done(self) -> None:
        if self.overflowed:
            raise SlowConsumer
        if self.closing.is_set():
            raise Closing(self.close_code, self.close_reason)

    async def next(self, timeout: float) -> LiveEvent | dict[str, Any] | None:
        """The next event or client message (a dict); None after ``timeout`` idle."""
        self._raise_if_done()
        if not self.control.empty():
            item: dict[str, Any] = self.control.get_nowait()
            return item
        if not self.queue.empty():
            return self.queue.get_nowait()
        waits = {
            asyncio.ensure_future(self.queue.get()),
            asyncio.ensure_future(self.control.get()),
            asyncio.ensure_future(self.closing.wait()),
        }
        done, pending = await asyncio.wait(waits, timeout=timeout, return_when="FIRST_COMPLETED")
        for task in pending:
            task.cancel()
        got = [t.result() for t in done if t.result() is not True]
        for extra in got[1:]:  # both queues answered at once: keep the second for later
            (self.control if isinstance(extra, dict) else self.queue).put_nowait(extra)
        if got:
            first: LiveEvent | dict[str, Any] = got[0]
            return first
        self._raise_if_done()
        return None

    async def get(self, timeout: float) -> LiveEvent | None:
        """The next event (client messages are not read by this older, one-debate API)."""
        item = await self.next(timeout)
        return item if isinstance(item, LiveEvent) else None

    def close(self) -> None:
        for key in list(self.keys):
            self.hub._drop(key, self)
        self.keys.clear()
        self.hub._connections.discard(self)
        if self.address:
            self.hub.by_address[self.address] -= 1
            if self.hub.by_address[self.address] <= 0:
                del self.hub.by_address[self.address]


class LiveHub:
    def __init__(self, queue_limit: int = QUEUE_LIMIT) -> None:
        self._subs: dict[str | None, set[Subscription]] = {}
        self._connections: set[Subscription] = set()
        self.by_address: Counter[str] = Counter()
        self.queue_limit = queue_limit
        self.stats = WsStats()

    def connect(self, *, identity: Any = None, address: str = "") -> Subscription:
        """A connection's subscription, following nothing yet."""
        sub = Subscription(self, self.queue_limit, identity=identity, address=address)
        self._connections.add(sub)
        if address:
            self.by_address[address] += 1
        return sub

    def subscribe(self, debate_id: str | None) -> Subscription:
        """``debate_id=None`` follows every debate (the firehose)."""
        sub = self.connect()
        sub.follow(debate_id)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        sub.close()

    def _drop(self, key: str | None, sub: Subscription) -> None:
        subs = self._subs.get(key)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subs[key]

    def publish(self, event: LiveEvent) -> None:
        targets = self._subs.get(event.debate_id, set()) | self._subs.get(None, set())
        for sub in targets:
            try:
                sub.queue.put_nowait(event)
            except asyncio.QueueFull:
                sub.overflowed = True
                sub.closing.set()  # wake it: it is closed with 1013

    def publish_ephemeral(self, debate_id: str, body: str) -> None:
        """To this debate's streams only; dropped (not overflowed) for a full queue."""
        event = LiveEvent(debate_id=debate_id, seq=0, body=body, terminal=False, ephemeral=True)
        for sub in self._subs.get(debate_id, ()):
            with contextlib.suppress(asyncio.QueueFull):
                sub.queue.put_nowait(event)

    def close_all(self, code: int = 1001, reason: str = "server restarting") -> int:
        """Ask every stream to end: clients resume elsewhere (or later) with ``since``."""
        for sub in self._connections:
            sub.ask_to_close(code, f"{reason}; reconnect with since=<last seq>")
        return len(self._connections)

    def close_refused(self, refusal: Callable[[Any], str | None]) -> int:
        """Close (4401) the connections whose credential ``refusal`` now refuses (revoked,
        issued before a revoke-all, signed by a retired key)."""
        closed = 0
        for sub in self._connections:
            why = refusal(sub.identity) if sub.identity is not None else None
            if why:
                sub.ask_to_close(4401, f"token revoked: {why}"[:120])
                closed += 1
        return closed

    @property
    def connections(self) -> int:
        return len(self._connections)


def token_forwarder(hub: LiveHub) -> Callable[[Msg], Awaitable[None]]:
    """The core NATS callback forwarding each valid token delta to its debate's streams."""

    async def forward(msg: Msg) -> None:
        try:
            delta = codec.decode_token_delta(msg.data)
        except codec.DecodeError as exc:
            log.debug("ignoring an undecodable token delta: %s", exc)
            return
        hub.publish_ephemeral(delta.debate_id, msg.data.decode())

    return forward
