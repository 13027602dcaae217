"""In-process fan-out of projected events to WebSocket clients.

The projector publishes here *after* the read model commits, so a client that subscribes
first and then reads the read model sees every event at least once; it drops by ``seq``
what it already sent: no gap, no duplicate at the replay/live seam.

Token deltas (``agent.token_delta``, core NATS ``aragora.live.debate.*.tokens``) are
*ephemeral*: forwarded to that debate's live streams only (not the firehose), never
stored, never replayed, carrying no ``seq``; a client too slow for them just misses some.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from nats.aio.msg import Msg

from aragora.contracts import codec
from aragora.gateway.ws_stats import WsStats

log = logging.getLogger("aragora.gateway.live")

QUEUE_LIMIT = 1000


@dataclass(frozen=True)
class LiveEvent:
    debate_id: str
    seq: int
    body: str
    terminal: bool
    ephemeral: bool = False  # a token delta: no seq, sent as is, never replayed


class SlowConsumer(Exception):
    """The client fell behind by QUEUE_LIMIT events; it must resume with ``since``."""


class ShuttingDown(Exception):
    """The gateway is stopping; the client resumes elsewhere with ``since``."""


class Subscription:
    def __init__(self, hub: LiveHub, debate_id: str | None) -> None:
        self.hub = hub
        self.debate_id = debate_id
        self.queue: asyncio.Queue[LiveEvent] = asyncio.Queue(QUEUE_LIMIT)
        self.overflowed = False
        self.closing = asyncio.Event()

    async def get(self, timeout: float) -> LiveEvent | None:
        if self.overflowed:
            raise SlowConsumer
        if self.closing.is_set():
            raise ShuttingDown
        getter = asyncio.ensure_future(self.queue.get())
        closing = asyncio.ensure_future(self.closing.wait())
        done, _ = await asyncio.wait(
            {getter, closing}, timeout=timeout, return_when="FIRST_COMPLETED"
        )
        closing.cancel()
        if getter in done:
            return getter.result()
        getter.cancel()
        if self.overflowed:
            raise SlowConsumer
        if self.closing.is_set():
            raise ShuttingDown
        return None

    def close(self) -> None:
        self.hub.unsubscribe(self)


class LiveHub:
    def __init__(self) -> None:
        self._subs: dict[str | None, set[Subscription]] = {}
        self.stats = WsStats()

    def subscribe(self, debate_id: str | None) -> Subscription:
        """``debate_id=None`` follows every debate (the firehose)."""
        sub = Subscription(self, debate_id)
        self._subs.setdefault(debate_id, set()).add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        subs = self._subs.get(sub.debate_id)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subs[sub.debate_id]

    def publish(self, event: LiveEvent) -> None:
        for key in (event.debate_id, None):
            for sub in self._subs.get(key, ()):
                try:
                    sub.queue.put_nowait(event)
                except asyncio.QueueFull:
                    sub.overflowed = True

    def publish_ephemeral(self, debate_id: str, body: str) -> None:
        """To this debate's streams only; dropped (not overflowed) for a full queue."""
        event = LiveEvent(debate_id=debate_id, seq=0, body=body, terminal=False, ephemeral=True)
        for sub in self._subs.get(debate_id, ()):
            try:
                sub.queue.put_nowait(event)
            except asyncio.QueueFull:
                pass

    def close_all(self) -> None:
        """Ask every stream to end (server shutdown): they close with 1001."""
        for subs in self._subs.values():
            for sub in subs:
                sub.closing.set()

    @property
    def connections(self) -> int:
        return sum(len(s) for s in self._subs.values())


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
