"""The NATS JetStream adapter shared by every service: connect, streams, publish, consume.

Consumers are durable pull consumers driven by :class:`Consumer`. The handler decides the
fate of each message by what it does:

* returns normally: the effect is durable, the message is acked;
* raises :class:`Transient` (or any unexpected exception): nak with backoff, redelivered;
* raises :class:`Poison`: the message goes to the dead-letter subject and is terminated;
* after ``max_deliver`` attempts a message is dead-lettered instead of retried forever.

A long handler keeps its message with ``in_progress`` so ``ack_wait`` can stay short.
After a server restart pull subscriptions can go quiet (nats.py#504): the consumer
re-creates its subscription on every reconnect and whenever fetches fail.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec
import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import (
    ConsumerConfig,
    DeliverPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)

from aragora.contracts.subjects import STREAMS, StreamSpec, dead_letter_subject
from aragora.runtime import tracing
from aragora.runtime.metrics import (
    bus_handle_seconds,
    bus_messages,
    bus_redeliveries,
    metrics_enabled,
    sample_lag,
)

log = logging.getLogger("aragora.bus")

Handler = Callable[[Msg], Awaitable[None]]
_OUTCOMES = ("acked", "retried", "dead_lettered")
_NO_LEADER = (
    nats.js.errors.NoStreamResponseError,
    nats.errors.NoRespondersError,
    nats.js.errors.ServiceUnavailableError,
)


class Transient(Exception):
    """The effect could not be made durable now; redeliver later."""


class Poison(Exception):
    """The message can never be handled; dead-letter it with this reason."""


class DeadLetter(msgspec.Struct, frozen=True, kw_only=True, tag="system.dead_letter"):
    consumer: str
    subject: str
    stream_seq: int
    deliveries: int
    reason: str
    payload: str


@dataclass
class Connection:
    """A NATS connection plus the hooks consumers use to re-subscribe after reconnects."""

    nc: NATS
    js: JetStreamContext
    reconnected: list[asyncio.Event] = field(default_factory=list)

    async def close(self) -> None:
        if self.nc.is_closed:
            return
        try:
            await self.nc.drain()
        except Exception:  # draining needs a live server; without one, just close
            with contextlib.suppress(Exception):
                await self.nc.close()


async def connect(servers: list[str], name: str, *, connect_timeout: float = 30.0) -> Connection:
    """Connect (retrying until ``connect_timeout``), then reconnect forever."""
    holder: list[Connection] = []

    async def on_reconnect() -> None:
        log.warning("nats reconnected", extra={"servers": ",".join(servers)})
        for event in holder[0].reconnected if holder else []:
            event.set()

    async def on_disconnect() -> None:
        closing = bool(holder) and (holder[0].nc.is_draining or holder[0].nc.is_closed)
        log.log(logging.INFO if closing else logging.WARNING, "nats disconnected")

    async def on_error(exc: Exception) -> None:
        log.debug("nats error: %s", exc)

    deadline = asyncio.get_running_loop().time() + connect_timeout
    while True:
        try:
            nc = await nats.connect(
                servers=servers,
                name=name,
                max_reconnect_attempts=-1,
                reconnect_time_wait=0.5,
                connect_timeout=2,
                reconnected_cb=on_reconnect,
                disconnected_cb=on_disconnect,
                error_cb=on_error,
            )
            break
        except (nats.errors.NoServersError, OSError, TimeoutError):
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.25)
    conn = Connection(nc=nc, js=nc.jetstream())
    holder.append(conn)
    return conn


def _stream_config(spec: StreamSpec, replicas: int = 1) -> StreamConfig:
    return StreamConfig(
        name=spec.name,
        description=spec.description,
        subjects=spec.subjects,
        retention=RetentionPolicy.WORK_QUEUE
        if spec.retention == "workqueue"
        else RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        duplicate_window=spec.duplicate_window_seconds,
        num_replicas=replicas,
    )


async def ensure_streams(
    js: JetStreamContext, specs: tuple[StreamSpec, ...] = STREAMS, *, replicas: int = 1
) -> None:
    """Create the streams, or update them to the current definition (idempotent).

    ``replicas`` (ARAGORA_STREAM_REPLICAS) is each stream's JetStream replication factor;
    on a cluster 3 keeps every stream available with one server down."""
    for spec in specs:
        config = _stream_config(spec, replicas)
        try:
            await js.add_stream(config)
        except nats.js.errors.BadRequestError:
            await js.update_stream(config)


async def publish(
    js: JetStreamContext,
    subject: str,
    payload: bytes,
    msg_id: str,
    headers: dict[str, str] | None = None,
    timeout: float = 5.0,
) -> int:
    """Publish and wait for the stream's ack; duplicates (same msg id) are no-ops.

    While a clustered stream elects a new leader (a server died) nobody answers for a
    moment: the publish is retried, with the same msg id, until ``timeout`` runs out."""
    all_headers = {"Nats-Msg-Id": msg_id, **(headers or {})}
    tracing.inject(all_headers)  # traceparent of the current span (nothing when off)
    loop = asyncio.get_running_loop()
    deadline, delay = loop.time() + timeout, 0.05
    while True:
        remaining = max(deadline - loop.time(), 0.1)
        try:
            ack = await js.publish(subject, payload, headers=all_headers, timeout=remaining)
        except _NO_LEADER:
            if loop.time() + delay >= deadline:
                raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.5)
            continue
        seq: int = ack.seq
        return seq


@dataclass
class ConsumerSpec:
    stream: str
    durable: str
    filter_subject: str
    ack_wait: float = 10.0
    max_deliver: int = 10
    concurrency: int = 1
    max_ack_pending: int = 10_000
    deliver_policy: DeliverPolicy = DeliverPolicy.ALL
    start_seq: int = 0  # > 1: a new durable starts at this stream sequence
    inactive_threshold: float = 0.0  # > 0: the server deletes the durable after this idle time


class Consumer:
    """Runs a handler over a durable pull consumer until :meth:`stop`."""

    def __init__(self, conn: Connection, spec: ConsumerSpec, handler: Handler) -> None:
        self.conn = conn
        self.spec = spec
        self.handler = handler
        self._stopping = asyncio.Event()
        self._reconnected = asyncio.Event()
        self._slots = asyncio.Semaphore(spec.concurrency)
        self._inflight: set[asyncio.Task[None]] = set()
        conn.reconnected.append(self._reconnected)
        self.handled = 0
        self.subscribed = False  # holds a live pull subscription (readiness reads it)
        durable = spec.durable
        self._span_name = f"{durable} process"
        self._redeliveries = bus_redeliveries.labels(durable)
        self._handle_seconds = bus_handle_seconds.labels(durable)
        self._outcomes = {o: bus_messages.labels(durable, o) for o in _OUTCOMES}

    def _config(self) -> ConsumerConfig:
        s = self.spec
        return ConsumerConfig(
            durable_name=s.durable,
            filter_subject=s.filter_subject,
            ack_wait=s.ack_wait,
            max_deliver=s.max_deliver + 1,  # the last delivery is dead-lettered by us
            max_ack_pending=s.max_ack_pending,
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE if s.start_seq > 1 else s.deliver_policy,
            opt_start_seq=s.start_seq if s.start_seq > 1 else None,
            inactive_threshold=s.inactive_threshold or None,
        )

    async def run(self) -> None:
        sampler = (
            asyncio.create_task(
                sample_lag(self.conn.js, self.spec.stream, self.spec.durable, self._stopping)
            )
            if metrics_enabled()
            else None
        )
        try:
            await self._run()
        finally:
            if sampler is not None:
                sampler.cancel()
                await asyncio.gather(sampler, return_exceptions=True)

    async def _run(self) -> None:
        backoff = 0.1
        while not self._stopping.is_set():
            sub: JetStreamContext.PullSubscription | None = None
            try:
                sub = await self.conn.js.pull_subscribe(
                    self.spec.filter_subject,
                    durable=self.spec.durable,
                    stream=self.spec.stream,
                    config=self._config(),
                )
                self._reconnected.clear()
                self.subscribed = True
                backoff = 0.1
                await self._fetch_loop(sub)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # Drop the old subscription before making a new one: messages a late
                # pull request delivers to it would otherwise wait out ack_wait there,
                # and its pending queue would hold up the connection's drain at exit.
                self.subscribed = False
                await self._unsubscribe(sub)
                if self._stopping.is_set():
                    break
                log.warning(
                    "consumer %s: %s; re-subscribing in %.1fs",
                    self.spec.durable,
                    type(exc).__name__,
                    backoff,
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            else:
                self.subscribed = False
                await self._unsubscribe(sub)
        await self._drain_inflight()

    @staticmethod
    async def _unsubscribe(sub: JetStreamContext.PullSubscription | None) -> None:
        if sub is not None:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def _fetch_loop(self, sub: JetStreamContext.PullSubscription) -> None:
        while not self._stopping.is_set() and not self._reconnected.is_set():
            await self._slots.acquire()
            free = 1
            while free < self.spec.concurrency and not self._slots.locked():
                await self._slots.acquire()
                free += 1
            if self._stopping.is_set():  # stopped while waiting for a free slot
                for _ in range(free):
                    self._slots.release()
                return
            try:
                msgs = await sub.fetch(free, timeout=1.0)
            except TimeoutError:  # nats' and asyncio's (nats.py raises both): none yet
                msgs = []
            except BaseException:
                for _ in range(free):
                    self._slots.release()
                raise
            for _ in range(free - len(msgs)):
                self._slots.release()
            for msg in msgs:
                task = asyncio.create_task(self._handle(msg))
                self._inflight.add(task)
                task.add_done_callback(self._inflight.discard)

    async def _handle(self, msg: Msg) -> None:
        try:
            await self._handle_one(msg)
        finally:
            self._slots.release()

    async def _handle_one(self, msg: Msg) -> None:
        deliveries = msg.metadata.num_delivered
        on = metrics_enabled()
        if deliveries > 1 and on:
            self._redeliveries.inc()
        if deliveries > self.spec.max_deliver:
            await self._dead_letter(msg, f"gave up after {deliveries - 1} deliveries")
            if on:
                self._outcomes["dead_lettered"].inc()
            return
        started = time.perf_counter()
        with tracing.consumer_span(
            self._span_name, msg.headers, msg.subject, self.spec.durable, deliveries
        ):
            outcome = await self._process(msg, deliveries)
        if on:
            self._handle_seconds.observe(time.perf_counter() - started)
            self._outcomes[outcome].inc()

    async def _process(self, msg: Msg, deliveries: int) -> str:
        """Run the handler and settle the message; returns the outcome (a metric label)."""
        keepalive = asyncio.create_task(self._keep_in_progress(msg))
        try:
            await self.handler(msg)
        except asyncio.CancelledError:
            # Shutting down mid-handler: hand the message back now rather than after
            # ack_wait, so another replica picks it up at once.
            with contextlib.suppress(Exception):
                await msg.nak()
            raise
        except Poison as exc:
            await self._dead_letter(msg, str(exc))
            return "dead_lettered"
        except Exception as exc:
            delay = min(0.2 * 2 ** (deliveries - 1), 10.0)
            level = logging.INFO if isinstance(exc, Transient) else logging.WARNING
            log.log(
                level,
                "consumer %s: redelivering %s in %.1fs: %s",
                self.spec.durable,
                msg.subject,
                delay,
                exc,
                exc_info=not isinstance(exc, Transient),
            )
            with contextlib.suppress(Exception):
                await msg.nak(delay=delay)
            return "retried"
        finally:
            keepalive.cancel()
        try:
            await msg.ack()
            self.handled += 1
        except Exception as exc:  # effect is durable and idempotent: a redelivery is harmless
            log.info("consumer %s: ack failed (%s); will be redelivered", self.spec.durable, exc)
        return "acked"

    async def _keep_in_progress(self, msg: Msg) -> None:
        interval = max(self.spec.ack_wait / 3, 0.5)
        while True:
            await asyncio.sleep(interval)
            with contextlib.suppress(Exception):
                await msg.in_progress()

    async def _dead_letter(self, msg: Msg, reason: str) -> None:
        meta = msg.metadata
        letter = DeadLetter(
            consumer=self.spec.durable,
            subject=msg.subject,
            stream_seq=meta.sequence.stream,
            deliveries=meta.num_delivered,
            reason=reason[:2000],
            payload=msg.data.decode("utf-8", "replace")[:65536],
        )
        log.error("consumer %s: dead-lettering %s: %s", self.spec.durable, msg.subject, reason)
        try:
            await publish(
                self.conn.js,
                dead_letter_subject(self.spec.durable),
                msgspec.json.encode(letter),
                msg_id=f"dlq:{self.spec.durable}:{meta.sequence.stream}",
            )
            await msg.term()
        except Exception as exc:
            log.warning("dead-letter publish failed (%s); message will be redelivered", exc)

    async def _drain_inflight(self) -> None:
        if self._inflight:
            await asyncio.gather(*self._inflight, return_exceptions=True)

    async def stop(self, grace: float = 20.0) -> None:
        """Stop fetching; in-flight messages get ``grace`` seconds to finish and be acked.

        Whatever is still running then is cancelled without an ack, so JetStream
        redelivers it to another replica (handlers are idempotent)."""
        self._stopping.set()
        if not self._inflight:
            return
        _, pending = await asyncio.wait(set(self._inflight), timeout=grace)
        for task in pending:
            task.cancel()
        if pending:
            log.warning(
                "consumer %s: %d in-flight messages left for redelivery",
                self.spec.durable,
                len(pending),
            )
            await asyncio.gather(*pending, return_exceptions=True)


def header(msg: Msg, name: str) -> str | None:
    headers: dict[str, Any] = msg.headers or {}
    value = headers.get(name)
    return str(value) if value is not None else None
