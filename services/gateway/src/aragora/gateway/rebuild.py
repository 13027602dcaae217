"""Rebuild the gateway's projections from zero, from the ``ARAGORA_EVENTS`` stream.

``aragora projections rebuild [debates|ratings|all]`` and ``aragora projections status``
(:mod:`aragora.cli.projections`) call :func:`rebuild` and :func:`status`.

A rebuild is safe while a gateway runs:

1. An ordered consumer reads ``aragora.evt.debate.>`` from the stream's first message up
   to the last debate event there at start, and folds every event with the same pure code
   the live projector uses (:func:`aragora.gateway.projection.apply`), per debate in
   ``seq`` order: an event at or below the debate's ``seq`` is a duplicate, one ahead of
   its predecessor is held until the predecessor arrives (the live projector naks it).
2. One transaction then takes the projection positions (``FOR UPDATE`` on PostgreSQL,
   ``BEGIN IMMEDIATE`` on SQLite: the live projector waits), reads further if the live
   projector has got ahead meanwhile (so everything it applied is in the fold), deletes
   the projection's rows, writes the fold and sets the positions. Readers see the old
   tables or the new ones, never half of each.
   ``debates`` includes the turn usage rows (``gw_usage``), which the fold re-derives
   from ``debate.turn_completed`` events.
3. Afterwards the live projector finds every event up to the position already applied
   (``seq <= last_seq``: a duplicate) and goes on from there.

The provisional rows a POST writes (``last_seq`` 0, no events yet) are kept. Rebuilding
``debates`` alone adds the ratings of debates it completes that the read model had not yet
completed, so the leaderboard never counts a debate twice nor misses one; rebuilding
``ratings`` alone counts the completions the debate read model has applied.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

import nats.errors
import nats.js.errors
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from aragora.contracts import codec
from aragora.contracts.messages import DebateCompleted, DebateEvent, TurnCompleted, tag_of
from aragora.contracts.subjects import DEBATE_EVENTS, EVENTS_STREAM
from aragora.gateway import leaderboard, projection, usage
from aragora.gateway.projection import View
from aragora.gateway.readmodel import (
    DEBATES,
    PROJECTIONS,
    RATINGS,
    ReadModel,
    lock_positions,
    set_positions,
    store_view,
)
from aragora.runtime import bus
from aragora.runtime.settings import Settings

log = logging.getLogger("aragora.gateway.rebuild")

ALL = "all"
NAMES = (*PROJECTIONS, ALL)
LIVE_CONSUMER = "gateway-projection"  # the durable of aragora.gateway.app.running
READ_TIMEOUT = 10.0  # seconds to wait for a message the stream is known to hold
CONNECT_TIMEOUT = 2.0  # a command line tool: say so soon when NATS is not there


class RebuildError(Exception):
    """The rebuild cannot be done; nothing was changed."""


def projection_names(name: str) -> tuple[str, ...]:
    """``all`` -> every projection; otherwise the one named (``ValueError`` if unknown)."""
    if name == ALL:
        return PROJECTIONS
    if name not in PROJECTIONS:
        raise ValueError(f"unknown projection {name!r}; expected one of {', '.join(NAMES)}")
    return (name,)


@dataclass
class Fold:
    """Debate events folded in stream order, the way the live projector applies them."""

    views: dict[str, View] = field(default_factory=dict)
    events: list[tuple[str, int, str, str]] = field(default_factory=list)
    completions: list[DebateCompleted] = field(default_factory=list)
    turns: list[TurnCompleted] = field(default_factory=list)  # for the usage rows
    held: dict[str, dict[int, DebateEvent]] = field(default_factory=dict)
    broken: set[str] = field(default_factory=set)
    position: int = 0
    messages: int = 0
    undecodable: int = 0

    def add(self, stream_seq: int, data: bytes) -> None:
        self.position = max(self.position, stream_seq)
        self.messages += 1
        try:
            event = codec.decode_debate_event(data)
        except codec.DecodeError:  # the live projector dead-letters it
            self.undecodable += 1
            return
        debate_id = event.debate_id
        view = self.views.get(debate_id)
        last = view["last_seq"] if view else 0
        if debate_id in self.broken or event.seq <= last:
            return
        held = self.held.setdefault(debate_id, {})
        held.setdefault(event.seq, event)  # the first copy of a seq wins, as live
        while (ready := held.pop(last + 1, None)) is not None:
            try:
                view = projection.apply(view, ready)
            except ValueError as exc:  # the live projector cannot apply it either
                log.warning("debate %s: seq %d not applicable: %s", debate_id, ready.seq, exc)
                self.broken.add(debate_id)
                break
            self.views[debate_id] = view
            body = codec.encode(ready).decode()
            self.events.append((debate_id, ready.seq, tag_of(type(ready)), body))
            if isinstance(ready, DebateCompleted):
                self.completions.append(ready)
            elif isinstance(ready, TurnCompleted):
                self.turns.append(ready)
            last = ready.seq
        if not held or debate_id in self.broken:
            del self.held[debate_id]


@dataclass(frozen=True)
class Rebuilt:
    names: tuple[str, ...]
    position: int  # stream sequence the projections now stand at
    messages: int  # debate-event messages read from the stream
    events: int  # events applied (duplicates and held ones not counted)
    debates: int
    ratings: int  # debate.completed events whose rating changes were added
    undecodable: int
    unapplied: int  # debates whose events could not all be applied (as live)


@dataclass(frozen=True)
class ProjectionStatus:
    name: str
    position: int
    last: int  # stream sequence of the last debate event
    behind: int  # debate events in the stream after the position


@dataclass(frozen=True)
class Status:
    projections: list[ProjectionStatus]
    stream_last: int  # last sequence of the whole stream (any subject)
    consumer_pending: int | None  # the live projector's unfetched + unacked, if it exists


async def last_debate_seq(js: JetStreamContext) -> int:
    """Stream sequence of the last debate event (0: none)."""
    try:
        msg = await js.get_last_msg(EVENTS_STREAM.name, DEBATE_EVENTS)
    except nats.js.errors.NotFoundError:
        return 0
    return int(msg.seq or 0)


async def _stream_state(js: JetStreamContext) -> Any:
    try:
        info = await js.stream_info(EVENTS_STREAM.name)
    except nats.js.errors.NotFoundError:
        raise RebuildError(
            f"stream {EVENTS_STREAM.name} not found: is ARAGORA_NATS_URL the Aragora NATS?"
        ) from None
    return info.state


class _Reader:
    """An ordered consumer over every debate event, from the stream's first message."""

    def __init__(self, js: JetStreamContext, fold: Fold) -> None:
        self.js = js
        self.fold = fold
        self._sub: JetStreamContext.PushSubscription | None = None

    async def read_until(self, target: int) -> None:
        if target <= self.fold.position:
            return
        if self._sub is None:
            self._sub = await self.js.subscribe(
                DEBATE_EVENTS,
                stream=EVENTS_STREAM.name,
                ordered_consumer=True,
                deliver_policy=DeliverPolicy.ALL,
            )
        while self.fold.position < target:
            try:
                msg = await self._sub.next_msg(timeout=READ_TIMEOUT)
            except nats.errors.TimeoutError:
                raise RebuildError(
                    f"stream read stalled at sequence {self.fold.position} of {target}"
                ) from None
            self.fold.add(msg.metadata.sequence.stream, msg.data)

    async def catch_up(self, target: int) -> None:
        """Read on to ``target``, a live position, which must be a debate event's."""
        last = await last_debate_seq(self.js)
        if target > last:
            raise RebuildError(
                f"the read model's position {target} is beyond the stream's last debate "
                f"event {last}: a different or reset stream? nothing was changed"
            )
        await self.read_until(target)

    async def close(self) -> None:
        if self._sub is not None:
            try:
                await self._sub.unsubscribe()
            except Exception as exc:  # the server deletes the ephemeral consumer anyway
                log.debug("unsubscribe failed: %s", exc)


def _replace(
    cur: Any,
    names: tuple[str, ...],
    fold: Fold,
    catch_up: Any,
    postgres: bool,
    priced: usage.Priced,
) -> Rebuilt:
    """The rebuild's one transaction (runs in the read model's worker thread)."""
    live = max(lock_positions(cur, postgres).values(), default=0)
    if live > fold.position:
        catch_up(live)  # the live projector got ahead while we read: include its events
    cur.execute("SELECT id, last_seq FROM gw_debates WHERE last_seq > 0")
    before = {str(r[0]): int(r[1]) for r in cur.fetchall()}
    rebuilt = {debate_id: view["last_seq"] for debate_id, view in fold.views.items()}
    if DEBATES in names:
        cur.execute("DELETE FROM gw_debate_events")
        cur.execute("DELETE FROM gw_debates WHERE last_seq > 0")  # keeps provisional rows
        for view in fold.views.values():
            store_view(cur, view)
        if fold.events:
            cur.executemany(
                "INSERT INTO gw_debate_events (debate_id, seq, type, body) VALUES (?, ?, ?, ?)",
                fold.events,
            )
        cur.execute("DELETE FROM gw_usage")
        usage.store(cur, [usage.row(t, priced) for t in fold.turns])
    ratings = 0
    if RATINGS in names:
        cur.execute("DELETE FROM gw_ratings")
        cur.execute("DELETE FROM gw_rating_history")
        applied = rebuilt if DEBATES in names else before
        for event in fold.completions:
            if applied.get(event.debate_id, 0) >= event.seq:
                leaderboard.project(cur, event)
                ratings += 1
    else:  # debates alone: add only completions the read model had not applied before
        for event in fold.completions:
            if before.get(event.debate_id, 0) < event.seq:
                leaderboard.project(cur, event)
                ratings += 1
    set_positions(cur, fold.position, names)
    return Rebuilt(
        names=names,
        position=fold.position,
        messages=fold.messages,
        events=len(fold.events),
        debates=len(fold.views),
        ratings=ratings,
        undecodable=fold.undecodable,
        unapplied=len(fold.broken | fold.held.keys()),
    )


async def rebuild_with(
    readmodel: ReadModel, js: JetStreamContext, names: tuple[str, ...] = PROJECTIONS
) -> Rebuilt:
    """Rebuild ``names`` in an open read model from the stream ``js`` reaches."""
    state = await _stream_state(js)
    if state.first_seq > 1:
        raise RebuildError(
            f"stream {EVENTS_STREAM.name} starts at sequence {state.first_seq}: its first "
            "messages are gone, so a rebuild would lose them; nothing was changed"
        )
    fold = Fold()
    reader = _Reader(js, fold)
    loop = asyncio.get_running_loop()

    def catch_up(target: int) -> None:  # from the worker thread, while holding the lock
        asyncio.run_coroutine_threadsafe(reader.catch_up(target), loop).result()

    try:
        await reader.read_until(await last_debate_seq(js))
        result = await readmodel.run(
            lambda cur: _replace(cur, names, fold, catch_up, readmodel.postgres, readmodel.priced)
        )
    finally:
        await reader.close()
    log.info(
        "rebuilt %s up to stream sequence %d",
        ", ".join(names),
        result.position,
        extra={"events": result.events, "debates": result.debates, "ratings": result.ratings},
    )
    return result


async def _connect(settings: Settings, name: str) -> bus.Connection:
    # bus.connect retries until the server is up (reconnects are unlimited), so bound it.
    return await asyncio.wait_for(
        bus.connect(settings.nats_servers, name=name, connect_timeout=CONNECT_TIMEOUT),
        CONNECT_TIMEOUT,
    )


async def rebuild(settings: Settings, names: tuple[str, ...] = PROJECTIONS) -> Rebuilt:
    """Connect to the configured NATS and database, and rebuild ``names``."""
    readmodel = ReadModel(settings)
    await readmodel.open()
    try:
        conn = await _connect(settings, "aragora-rebuild")
        try:
            return await rebuild_with(readmodel, conn.js, names)
        finally:
            await conn.close()
    finally:
        await readmodel.close()


async def _count_after(js: JetStreamContext, position: int) -> int:
    """Debate events in the stream after ``position`` (a throwaway consumer's pending)."""
    info = await js.add_consumer(
        EVENTS_STREAM.name,
        ConsumerConfig(
            filter_subject=DEBATE_EVENTS,
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=position + 1,
            ack_policy=AckPolicy.NONE,
            inactive_threshold=5.0,
            mem_storage=True,
        ),
    )
    try:
        return int(info.num_pending or 0)
    finally:
        try:
            await js.delete_consumer(EVENTS_STREAM.name, info.name)
        except Exception as exc:  # it expires after inactive_threshold anyway
            log.debug("deleting the counting consumer failed: %s", exc)


async def status_with(readmodel: ReadModel, js: JetStreamContext) -> Status:
    state = await _stream_state(js)
    last = await last_debate_seq(js)
    positions = await readmodel.positions()
    rows = []
    for name in PROJECTIONS:
        position = positions.get(name, 0)
        behind = await _count_after(js, position) if position < last else 0
        rows.append(ProjectionStatus(name=name, position=position, last=last, behind=behind))
    try:
        consumer = await js.consumer_info(EVENTS_STREAM.name, LIVE_CONSUMER)
        pending: int | None = int(consumer.num_pending or 0) + int(consumer.num_ack_pending or 0)
    except nats.js.errors.NotFoundError:
        pending = None
    return Status(projections=rows, stream_last=int(state.last_seq or 0), consumer_pending=pending)


async def status(settings: Settings) -> Status:
    readmodel = ReadModel(settings)
    await readmodel.open()
    try:
        conn = await _connect(settings, "aragora-status")
        try:
            return await status_with(readmodel, conn.js)
        finally:
            await conn.close()
    finally:
        await readmodel.close()
