"""Coalesces a turn's token deltas into a few :class:`TokenDelta` messages.

A model streams many tiny pieces; publishing each would flood the bus and every WebSocket
client. :class:`DeltaCoalescer` buffers them and publishes when :data:`MAX_WAIT_S` has
passed or :data:`MAX_CHARS` are buffered since its last publish, then a final delta with
``done`` true. There is no timer: a buffer is published when the next piece arrives or the
turn ends. Publishing is best effort: the stored result event holds the final text, so a
delta that cannot be published is dropped, never a reason to fail the turn.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from aragora.contracts.messages import RunTurn, TokenDelta

log = logging.getLogger("aragora.agent.stream")

MAX_WAIT_S = 0.05
MAX_CHARS = 200

Publish = Callable[[TokenDelta], Awaitable[None]]


class DeltaCoalescer:
    """One turn's deltas: ``await add(piece)`` as they arrive, ``await finish()`` at the end."""

    def __init__(
        self,
        command: RunTurn,
        publish: Publish,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_wait_s: float = MAX_WAIT_S,
        max_chars: int = MAX_CHARS,
    ) -> None:
        self._command = command
        self._publish = publish
        self._clock = clock
        self._max_wait_s = max_wait_s
        self._max_chars = max_chars
        self._buffer: list[str] = []
        self._buffered = 0
        self._last = clock()
        self.index = 0  # of the next delta published
        self.started = False
        self.finished = False

    async def add(self, piece: str) -> None:
        if self.finished or not piece:
            return
        self.started = True
        self._buffer.append(piece)
        self._buffered += len(piece)
        if self._buffered >= self._max_chars or self._clock() - self._last >= self._max_wait_s:
            await self._flush(done=False)

    async def finish(self) -> None:
        """Publish what is buffered with ``done`` true (nothing if nothing was streamed)."""
        if self.finished:
            return
        self.finished = True
        if self.started:
            await self._flush(done=True)

    async def _flush(self, *, done: bool) -> None:
        c = self._command
        delta = TokenDelta(
            debate_id=c.debate_id,
            turn_id=c.turn_id,
            agent=c.agent,
            round=c.round,
            phase=c.phase,
            index=self.index,
            text="".join(self._buffer),
            done=done,
        )
        self._buffer.clear()
        self._buffered = 0
        self._last = self._clock()
        self.index += 1
        try:
            await self._publish(delta)
        except Exception as exc:  # best effort: the result event carries the text
            log.debug("token delta not published: %s", exc)
