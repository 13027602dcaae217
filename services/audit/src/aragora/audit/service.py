"""The audit service: records security events, answers queries, verifies the chain.

* A durable JetStream consumer (``audit``, filter ``aragora.evt.security.>``) appends each
  event to ``audit_log`` and acks only once the row is committed; a redelivered event is
  recognised by its ``event_id`` and acked without a second row. A database outage is
  transient (the event is redelivered later); an undecodable message is dead-lettered.
* Core NATS responders (queue ``audit``) answer ``aragora.rpc.audit.query`` and
  ``.verify`` for the gateway's ``/api/admin/audit-log`` routes.
* Every ARAGORA_AUDIT_VERIFY_INTERVAL_SECONDS the whole chain is recomputed
  (``aragora_audit_chain_ok``); a break is logged as an error naming the row.

Database calls block: each runs in a worker thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import UTC, datetime

import msgspec
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext

from aragora.audit import metrics
from aragora.audit.store import AuditStore
from aragora.contracts import codec
from aragora.contracts.security import (
    AUDIT_QUERY_RPC,
    AUDIT_RPC_QUEUE,
    AUDIT_VERIFY_RPC,
    MAX_QUERY_LIMIT,
    SECURITY_EVENTS,
    AuditError,
    AuditPage,
    AuditQuery,
    AuditRequest,
    AuditVerifyReply,
)
from aragora.contracts.subjects import EVENTS_STREAM
from aragora.runtime import bus

log = logging.getLogger("aragora.audit")
DURABLE = "audit"
_requests = msgspec.json.Decoder(AuditRequest)
_encoder = msgspec.json.Encoder()


def consumer_spec() -> bus.ConsumerSpec:
    return bus.ConsumerSpec(
        stream=EVENTS_STREAM.name,
        durable=DURABLE,
        filter_subject=SECURITY_EVENTS,
        concurrency=1,  # appends are serialised anyway; in stream order reads best
        max_deliver=50,  # a database outage should not dead-letter security events
    )


class AuditService:
    def __init__(self, store: AuditStore) -> None:
        self.store = store
        self._subscriptions: list[Subscription] = []
        self._tasks: set[asyncio.Task[None]] = set()

    # --- recording -----------------------------------------------------------------------

    async def handle(self, msg: Msg) -> None:
        """Bus handler: record one security event (idempotent by event id)."""
        try:
            event = codec.decode_security_event(msg.data)
        except msgspec.DecodeError as exc:
            raise bus.Poison(f"not a security event: {exc}") from None
        try:
            seq = await asyncio.to_thread(self.store.append, event)
        except Exception as exc:
            raise bus.Transient(f"audit_log unavailable: {type(exc).__name__}") from None
        if seq is None:
            metrics.duplicates.inc()
            return
        metrics.recorded.labels(event.action, event.outcome).inc()
        log.info(
            "audit recorded",
            extra={"seq": seq, "action": event.action, "outcome": event.outcome},
        )

    # --- verification --------------------------------------------------------------------

    async def verify(self) -> AuditVerifyReply:
        verifier = await asyncio.to_thread(self.store.verify)
        ok = verifier.first_break is None
        metrics.chain_ok.set(1 if ok else 0)
        metrics.chain_rows.set(verifier.checked)
        metrics.chain_verified.set(time.time())
        if not ok:
            assert verifier.first_break is not None
            log.error(
                "audit_log hash chain BROKEN at seq %d: %s",
                verifier.first_break.seq,
                verifier.first_break.problem,
            )
        return AuditVerifyReply(
            ok=ok,
            checked=verifier.checked,
            last_seq=verifier.last_seq,
            head_hash=verifier.head_hash,
            first_break=verifier.first_break,
            verified_at=datetime.now(UTC),
        )

    async def verify_every(self, interval: float, stop: asyncio.Event) -> None:
        while interval > 0 and not stop.is_set():
            try:
                await self.verify()
            except Exception as exc:
                log.warning("audit chain verification failed: %s", type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)

    # --- request/reply -------------------------------------------------------------------

    async def start_rpc(self, nc: NATS) -> None:
        for subject in (AUDIT_QUERY_RPC, AUDIT_VERIFY_RPC):
            sub = await nc.subscribe(subject, queue=AUDIT_RPC_QUEUE, cb=self._on_request)
            self._subscriptions.append(sub)
        await nc.flush()

    async def stop_rpc(self) -> None:
        for sub in self._subscriptions:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        self._subscriptions.clear()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5)

    async def _on_request(self, msg: Msg) -> None:
        task = asyncio.create_task(self._respond(msg))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def answer(self, data: bytes) -> bytes:
        try:
            request = _requests.decode(data)
        except msgspec.DecodeError as exc:
            return _encoder.encode(AuditError(detail=f"undecodable request: {exc}"))
        if not isinstance(request, AuditQuery):
            return _encoder.encode(await self.verify())
        if not 1 <= request.limit <= MAX_QUERY_LIMIT:
            return _encoder.encode(AuditError(detail=f"limit: 1 to {MAX_QUERY_LIMIT}"))
        try:
            entries, cursor = await asyncio.to_thread(self.store.query, request)
        except ValueError as exc:
            return _encoder.encode(AuditError(detail=str(exc)))
        return _encoder.encode(AuditPage(entries=entries, next_cursor=cursor))

    async def _respond(self, msg: Msg) -> None:
        if not msg.reply:
            return
        try:
            data = await self.answer(msg.data)
        except Exception as exc:
            log.warning("audit request failed: %s", type(exc).__name__)
            data = _encoder.encode(AuditError(detail="the audit log is unavailable; retry"))
        with contextlib.suppress(Exception):
            await msg.respond(data)


async def sample_lag(js: JetStreamContext, stop: asyncio.Event, every: float = 5.0) -> None:
    """``aragora_audit_lag_events``: pending plus unacked messages of the audit consumer."""
    while not stop.is_set():
        try:
            info = await js.consumer_info(EVENTS_STREAM.name, DURABLE)
            metrics.lag.set((info.num_pending or 0) + (info.num_ack_pending or 0))
        except Exception as exc:
            log.debug("audit consumer info unavailable: %s", type(exc).__name__)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)
