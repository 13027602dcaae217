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
import logging
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from nats.aio.msg import Msg

from aragora.contracts import codec
from aragora.gateway.ws_stats import WsStats

log = logging.getLogger("aragora.gateway.live")

QUEUE_LIMIT = 1000
CONTROL_LIMIT = 64  # client messages not yet handled; a client flooding more is closed


def text_frame(text: str) -> bytes:
    """``text`` as one unmasked, uncompressed WebSocket text frame (RFC 6455 5.2): what a
    server sends to a connection without extensions, the same bytes for every one."""
    payload = text.encode()
    size = len(payload)
    if size < 126:
        return bytes((0x81, size)) + payload
    if size < 65536:
        return bytes((0x81, 126)) + size.to_bytes(2, "big") + payload
    return bytes((0x81, 127)) + size.to_bytes(8, "big") + payload


@dataclass(frozen=True)
class LiveEvent:
    debate_id: str
    seq: int
    body: str
    terminal: bool
    ephemeral: bool = False  # a token delta: no seq, sent as is, never replayed
    owner: str = ""  # the debate's requested_by, for the firehose's visibility check
    public: bool = False

    @cached_property
    def frame(self) -> bytes:
        """The body as a WebSocket frame, encoded once for every connection it goes to."""
        return text_frame(self.body)


class SlowConsumer(Exception):
    """The client fell behind by the queue bound; it must resume with ``since``."""


class Closing(Exception):
    """The server asks the stream to end (shutdown, SIGUSR1 reload, revoked token)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class Subscription:
    """One WebSocket connection's queue, following one or more debates (``None``: all).

    Two bounded deques (events, client messages) and at most one waiter future: a
    publish to 1,000 connections is 1,000 appends and wake-ups, and an idle connection
    holds one future and one timer, not three tasks (``asyncio.wait`` on two queues and
    an event cost ~30% of the gateway's CPU per delivered frame).
    """

    def __init__(
        self, hub: LiveHub, limit: int, *, identity: Any = None, address: str = ""
    ) -> None:
        self.hub = hub
        self.keys: set[str | None] = set()
        self.limit = limit
        self.events: deque[LiveEvent] = deque()
        self.messages: deque[dict[str, Any]] = deque()
        self.overflowed = False
        self.closing = False
        self.close_code, self.close_reason = 1001, "server restarting"
        self.identity = identity  # who authenticated it (auth.Identity; None: auth off)
        self.address = address
        # Set by the connection: handles an event at once (True) when that needs no await.
        self.deliver_now: Callable[[LiveEvent], bool] | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._delivered = False  # deliver_now sent something while next() waited
        # The loop of the connection's sending loop: a publisher on another thread's loop
        # (the tests' ASGI client runs streams on a thread of its own) hands its pushes
        # over, so check-then-wait in next() never races a push from another thread.
        self.loop = asyncio._get_running_loop()

    def _foreign(self) -> bool:
        return self.loop is not None and asyncio._get_running_loop() is not self.loop

    def follow(self, debate_id: str | None) -> None:
        self.keys.add(debate_id)
        self.hub._subs.setdefault(debate_id, set()).add(self)

    def unfollow(self, debate_id: str | None) -> None:
        self.keys.discard(debate_id)
        self.hub._drop(debate_id, self)

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        loop = waiter.get_loop()
        try:
            here = asyncio.get_running_loop()
        except RuntimeError:
            here = None
        if here is loop:
            waiter.set_result(None)
        else:  # published from another thread's loop (the tests' ASGI client does this)
            loop.call_soon_threadsafe(_expire, waiter)

    def _parked(self) -> bool:
        """The sending loop waits in :meth:`next` with nothing before it: an event can be
        handled right here, in order, instead of waking the loop for it."""
        waiter = self._waiter
        return (
            waiter is not None
            and not waiter.done()
            and not self.events
            and not self.messages
            and not self.closing
            and not self.overflowed
        )

    def _delivered_now(self, event: LiveEvent) -> bool:
        if self.deliver_now is None or not self._parked():
            return False
        try:
            done = self.deliver_now(event)
        except Exception:  # never the hub's problem: the sending loop gets it instead
            log.exception("delivering a live event directly failed")
            return False
        self._delivered = self._delivered or done
        return done

    def push(self, event: LiveEvent) -> None:
        """Queue an event; a full queue marks the client slow (closed with 1013)."""
        if self._foreign():
            self.loop.call_soon_threadsafe(self.push, event)  # type: ignore[union-attr]
            return
        if self._delivered_now(event):
            return
        if len(self.events) >= self.limit:
            self.overflowed = True
        else:
            self.events.append(event)
        self._wake()

    def push_ephemeral(self, event: LiveEvent) -> None:
        """Queue a token delta unless the queue is full (then the client misses it)."""
        if self._foreign():
            self.loop.call_soon_threadsafe(self.push_ephemeral, event)  # type: ignore[union-attr]
            return
        if self._delivered_now(event):
            return
        if len(self.events) < self.limit:
            self.events.append(event)
            self._wake()

    def put_message(self, message: dict[str, Any]) -> bool:
        """Queue a client message for the sending loop; False when too many wait."""
        if len(self.messages) >= CONTROL_LIMIT:
            return False
        self.messages.append(message)
        self._wake()
        return True

    def ask_to_close(self, code: int, reason: str) -> None:
        if self._foreign():
            self.loop.call_soon_threadsafe(self.ask_to_close, code, reason)  # type: ignore[union-attr]
            return
        if not self.closing:
            self.close_code, self.close_reason = code, reason
            self.closing = True
            self._wake()

    def _raise_if_done(self) -> None:
        if self.overflowed:
            raise SlowConsumer
        if self.closing:
            raise Closing(self.close_code, self.close_reason)

    def _pop(self) -> LiveEvent | dict[str, Any] | None:
        if self.messages:
            return self.messages.popleft()
        if self.events:
            return self.events.popleft()
        return None

    async def next(self, timeout: float) -> LiveEvent | dict[str, Any] | None:
        """The next event or client message (a dict); None after ``timeout`` idle."""
        self._raise_if_done()
        item = self._pop()
        if item is not None:
            return item
        loop = asyncio.get_running_loop()
        while True:
            waiter = self._waiter = loop.create_future()
            timer = loop.call_later(timeout, _expire, waiter)
            try:
                await waiter
            finally:
                timer.cancel()
                self._waiter = None
            item = self._pop()
            if item is not None:
                return item
            self._raise_if_done()
            if not self._delivered:
                return None
            self._delivered = False  # not idle: events went out meanwhile; wait again

    def close(self) -> None:
        for key in list(self.keys):
            self.hub._drop(key, self)
        self.keys.clear()
        self.hub._connections.discard(self)
        if self.address:
            self.hub.by_address[self.address] -= 1
            if self.hub.by_address[self.address] <= 0:
                del self.hub.by_address[self.address]


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


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

    def _drop(self, key: str | None, sub: Subscription) -> None:
        subs = self._subs.get(key)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subs[key]

    def publish(self, event: LiveEvent) -> None:
        for sub in self._subs.get(event.debate_id, ()):
            sub.push(event)
        for sub in self._subs.get(None, ()):
            if event.debate_id not in sub.keys:  # following both: queued once above
                sub.push(event)

    def publish_ephemeral(self, debate_id: str, body: str) -> None:
        """To this debate's streams only; dropped (not overflowed) for a full queue."""
        event = LiveEvent(debate_id=debate_id, seq=0, body=body, terminal=False, ephemeral=True)
        for sub in self._subs.get(debate_id, ()):
            sub.push_ephemeral(event)

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
