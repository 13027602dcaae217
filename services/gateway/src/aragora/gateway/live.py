"""In-process fan-out of projected events to WebSocket clients.

The projector publishes here *after* the read model commits, so a client that subscribes
first and then reads the read model sees every event at least once; it drops by ``seq``
what it already sent: no gap, no duplicate at the replay/live seam.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

QUEUE_LIMIT = 1000


@dataclass(frozen=True)
class LiveEvent:
    debate_id: str
    seq: int
    body: str
    terminal: bool


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

    def close_all(self) -> None:
        """Ask every stream to end (server shutdown): they close with 1001."""
        for subs in self._subs.values():
            for sub in subs:
                sub.closing.set()

    @property
    def connections(self) -> int:
        return sum(len(s) for s in self._subs.values())
