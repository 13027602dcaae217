"""Outbox relay: the store's notification log -> JetStream, in order, without a gap.

Woken in-process after each append (a polling relay costs 2-3x the floor, see
docs/architecture.md); a slow poll covers anything a wake-up missed. Each entry is
published with ``Nats-Msg-Id`` = its event id, so re-publishing after a crash (between
publish and saving the position) is deduplicated by the stream's duplicate window.

While running, the position is saved in the background (the latest one, one save at a
time) so the next batch's read and publish do not wait for that commit; a crash then
re-publishes at most the batches since the last save, which the same window drops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aragora.contracts import codec, subjects
from aragora.contracts.messages import Command
from aragora.orchestrator.metrics import relay_published
from aragora.orchestrator.store import EventStore, OutboxEntry
from aragora.runtime import tracing
from aragora.runtime.bus import Connection

log = logging.getLogger("aragora.orchestrator.relay")
BATCH = 500


def route(entry: OutboxEntry) -> tuple[str, str]:
    """(subject, msg id) of a stored entry."""
    subject, msg_id, _ = _route(entry)
    return subject, msg_id


def _route(entry: OutboxEntry) -> tuple[str, str, str]:
    """(subject, msg id, debate id) of a stored entry."""
    if entry.topic.startswith("debate."):
        event = codec.decode_debate_event(entry.payload)
        return subjects.debate_event_subject(event), event.event_id, event.debate_id
    command: Command = codec.decode_command(entry.payload)
    debate_id = str(getattr(command, "debate_id", ""))
    return subjects.command_subject(command), command.event_id, debate_id


class OutboxRelay:
    def __init__(self, store: EventStore, conn: Connection, poll_seconds: float = 1.0) -> None:
        self.store = store
        self.conn = conn
        self.poll_seconds = poll_seconds
        self._wake = asyncio.Event()
        self._stopping = False
        self.position = 0
        self.published = 0
        self._saved = 0
        self._saver: asyncio.Task[None] | None = None

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        self.position = self._saved = await asyncio.to_thread(self.store.relay_position)
        log.info("relay starting", extra={"position": self.position})
        backoff = 0.1
        try:
            while True:
                self._wake.clear()
                try:
                    moved = await self._publish_next()
                    backoff = 0.1
                except Exception as exc:  # NATS or store down: keep the position, retry
                    log.warning("relay: %s; retrying in %.1fs", exc, backoff)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 5.0)
                    continue
                if moved:
                    if self._saver is None or self._saver.done():
                        self._saver = asyncio.create_task(self._save_behind())
                    continue
                if self._stopping:
                    return
                try:
                    await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
                except TimeoutError:
                    pass
        finally:
            if self._saver is not None:
                await asyncio.gather(self._saver, return_exceptions=True)
            if self._saved < self.position:
                with contextlib.suppress(Exception):
                    await self._save()

    async def _save_behind(self) -> None:
        """Save the latest published position until it is saved (a failed save is
        retried after the next batch)."""
        try:
            while self._saved < self.position:
                await self._save()
        except Exception as exc:
            log.warning("relay: saving the position failed (%s); retrying later", exc)

    async def _save(self) -> None:
        position = self.position
        await asyncio.to_thread(self.store.set_relay_position, position)
        self._saved = max(self._saved, position)

    async def relay_once(self) -> int:
        """Publish the next batch and save the position; returns how many were relayed."""
        moved = await self._publish_next()
        if moved:
            await self._save()
        return moved

    async def _publish_next(self) -> int:
        """Publish the next batch (position kept in memory); how many entries it held."""
        entries = await asyncio.to_thread(self.store.outbox, self.position, BATCH)
        if not entries:
            return 0
        if not self.conn.nc.is_connected:
            # Fail fast instead of buffering publishes that time out one by one.
            raise ConnectionError("NATS is not connected")
        futures = []
        for entry in entries:
            subject, msg_id, debate_id = _route(entry)
            # The debate's trace context (docs/observability.md): none when tracing is off.
            headers = {"Nats-Msg-Id": msg_id, **tracing.headers_for(debate_id)}
            futures.append(
                await self.conn.js.publish_async(subject, entry.payload, headers=headers)
            )
        try:
            await asyncio.wait_for(asyncio.gather(*futures), timeout=10)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise
            # nats.py cancels the pending acks when the connection drops: not our stop.
            raise ConnectionError("NATS connection lost before the publish acks") from None
        self.position = entries[-1].position
        self.published += len(entries)
        relay_published.inc(len(entries))
        return len(entries)

    async def drain(self) -> None:
        """Publish everything stored so far, then stop (graceful shutdown)."""
        self._stopping = True
        self._wake.set()
