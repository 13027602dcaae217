"""Projects debate events from JetStream into the read model, then to live clients.

Each event is applied with its stream sequence, which the read model stores as the
projections' position in the same transaction (see ``aragora projections status``).
"""

from __future__ import annotations

import logging

from nats.aio.msg import Msg

from aragora.contracts import codec
from aragora.gateway import metrics
from aragora.gateway.live import LiveEvent, LiveHub
from aragora.gateway.projection import is_terminal
from aragora.gateway.readmodel import Applied, ReadModel
from aragora.runtime.bus import Poison, Transient

log = logging.getLogger("aragora.gateway.projector")


class Projector:
    def __init__(self, readmodel: ReadModel, hub: LiveHub) -> None:
        self.readmodel = readmodel
        self.hub = hub

    async def handle(self, msg: Msg) -> None:
        try:
            event = codec.decode_debate_event(msg.data)
        except codec.DecodeError as exc:
            raise Poison(f"undecodable debate event: {exc}") from None
        outcome, view = await self.readmodel.apply(event, msg.metadata.sequence.stream)
        if outcome is Applied.GAP:
            raise Transient(
                f"debate {event.debate_id}: seq {event.seq} arrived before its predecessor"
            )
        terminal = is_terminal(event)
        if outcome is Applied.APPLIED:
            if terminal and view is not None:
                metrics.record_outcome(view)
            metrics.record_turn(event)
        # Applied here, or already by another replica sharing the read model: this
        # replica's streams need it either way (each drops by seq what it already sent).
        live = LiveEvent(
            debate_id=event.debate_id,
            seq=event.seq,
            body=msg.data.decode(),
            terminal=terminal,
            owner=(view or {}).get("requested_by") or "",
            public=bool((view or {}).get("public")),
        )
        self.hub.publish(live)
