"""WebSocket streams: ``/ws/debates/{id}?since=<seq>`` and the multiplexed ``/ws`` (and ``/``
on the WebSocket port). The protocol is in ``docs/subscribe.md``; in short:

- Authentication: ``?token=<credential>`` or, without one, a first message
  ``{"type": "auth", "token": "…"}`` within 10 s (answered ``{"type": "authenticated"}``);
  else the server closes with 4401.
- ``/ws/debates/{id}`` replays the stored events after ``since``, then goes live, and
  closes with 1000 after the terminal event (4404: no such debate, or not yours).
- ``/ws`` starts as the firehose (every debate the caller may see, live only) and takes
  ``{"type": "subscribe", "debate_id": "…", "since": 0}`` / ``{"type": "unsubscribe",
  "debate_id": "…"}`` (``"*"``: the firehose) and ``{"type": "ping"}``; a subscribed debate
  is replayed and followed without gap or duplicate, and ends with
  ``{"type": "unsubscribed", "reason": "debate ended"}``.
- Heartbeats (``{"type": "stream.heartbeat"}``) keep idle connections alive through proxies.
  A client more than ``ARAGORA_WS_SEND_QUEUE`` events behind, or not reading for 10 s, is
  closed with 1013 and resumes with ``since`` = the last ``seq`` it saw; other clients never
  wait for it. Limits: ``ARAGORA_WS_MAX_CONNECTIONS`` (1013), ``…_PER_IP`` (4429),
  ``ARAGORA_WS_MAX_MESSAGE_BYTES`` (1009). SIGUSR1 closes every stream with 1012 and
  restarts the WebSocket port's server; the REST API keeps serving.

While a turn runs, a followed debate also carries ``agent.token_delta`` frames (coalesced
pieces of the answer being written; no ``seq``, live only, never replayed).
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from litestar import WebSocket, websocket
from litestar.datastructures import State
from litestar.exceptions import WebSocketDisconnect
from litestar.params import FromPath, FromQuery
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import State as WsState

from aragora.gateway import metrics
from aragora.gateway.auth import Identity
from aragora.gateway.debates import deps_of
from aragora.gateway.deps import Deps
from aragora.gateway.live import Closing, LiveEvent, SlowConsumer, Subscription, text_frame
from aragora.gateway.projection import is_terminal_type
from aragora.gateway.ratelimit import resolve_caller
from aragora.gateway.tokens import TokenError
from aragora.gateway.visibility import can_see, identity_of, owner_key, sees_all

log = logging.getLogger("aragora.gateway.websocket")
HEARTBEAT_SECONDS = 15.0
HEARTBEAT = json.dumps({"type": "stream.heartbeat"})
AUTH_SECONDS = 10.0
SEND_SECONDS = 10.0
REPLAY_PAGE = 1000
MAX_FOLLOWED = 100
CATCH_UP_EVERY = 4  # idle heartbeats between read-model checks of followed debates
GONE = 0  # close code meaning "the client already left"
RAW_SEND = "aragora.raw_send"  # scope key: uvicorn's own ASGI send (see Wire)

Socket = WebSocket[Any, Any, Any]


def _port(socket: Socket) -> int:
    server = socket.scope.get("server")
    return int(server[1]) if server and server[1] is not None else 0


_PROTOCOL_ATTRIBUTES = ("conn", "transport", "writable", "close_sent", "disconnected")


class Wire:
    """Writes ready-made frames straight to uvicorn's ``websockets-sansio`` connection.

    Fan-out sends one event to every follower: through Litestar, its middlewares, uvicorn's
    ASGI ``send`` and the ``websockets`` framer that cost ~100 µs of CPU per connection
    and event (2/3 of the gateway's time with 1,000 followers); the frame is the same
    bytes for every connection without extensions, so it is encoded once
    (:attr:`LiveEvent.frame`) and written here. Only when the connection is open,
    writable (below the transport's high-water mark) and negotiated no extension
    (permessage-deflate keeps state per connection); otherwise :meth:`write` says no and
    the caller sends through ASGI as before (waiting for ``writable``, with its timeout).
    The server wraps the app to put uvicorn's ``send`` in the scope (:data:`RAW_SEND`).
    """

    def __init__(self, protocol: WebSocketsSansIOProtocol) -> None:
        self.protocol = protocol

    @classmethod
    def of(cls, socket: Socket) -> Wire | None:
        protocol = getattr(socket.scope.get(RAW_SEND), "__self__", None)
        if not isinstance(protocol, WebSocketsSansIOProtocol):
            return None  # another server (the tests' ASGI client), or a wrapped send
        if not all(hasattr(protocol, a) for a in _PROTOCOL_ATTRIBUTES):
            return None  # a uvicorn this was not written for: send through ASGI
        if protocol.conn.extensions:
            return None
        return cls(protocol)

    def write(self, frame: bytes) -> bool:
        p = self.protocol
        if (
            p.close_sent
            or p.disconnected
            or not p.writable.is_set()
            or p.conn.state is not WsState.OPEN
            or p.transport.is_closing()
        ):
            return False
        p.transport.write(frame)
        return True


class Session:
    """One connection: which debates it follows, the last ``seq`` sent of each."""

    def __init__(
        self, socket: Socket, deps: Deps, identity: Identity | None, sub: Subscription
    ) -> None:
        self.socket = socket
        self.deps = deps
        self.identity = identity
        self.sub = sub
        self.last: dict[str, int] = {}  # followed debates -> last seq sent
        self.firehose = False
        self.single: str | None = None  # /ws/debates/{id}: close when it ends
        self.sent = 0
        self.wire = Wire.of(socket)
        if self.wire is not None:
            sub.deliver_now = self.deliver_now

    async def send(self, text: str, frame: bytes | None = None) -> None:
        """Send one message (``frame``: ``text`` already framed, shared by connections)."""
        if self.wire is None or not self.wire.write(frame or text_frame(text)):
            try:
                async with asyncio.timeout(SEND_SECONDS):
                    await self.socket.send_text(text)
            except TimeoutError:
                raise SlowConsumer from None
        self.deps.hub.stats.messages_sent += 1
        self.sent += 1

    def deliver_now(self, live: LiveEvent) -> bool:
        """:meth:`on_event` without waking the sending loop, called by the hub while that
        loop waits with nothing queued: True when handled (sent, or not for this client);
        False to queue it for the loop (a gap to fill from the read model, the terminal
        event, a connection not writable at the moment)."""
        followed = live.debate_id in self.last
        if live.ephemeral:
            return not followed or self._write(live)
        if not followed:
            return not (self.firehose and self._may_see(live)) or self._write(live)
        last = self.last[live.debate_id]
        if live.seq <= last:
            return True  # the replay (or a gap fill) sent it already
        if live.seq > last + 1 or live.terminal:
            return False
        if not self._write(live):
            return False
        self.last[live.debate_id] = live.seq
        return True

    def _write(self, live: LiveEvent) -> bool:
        assert self.wire is not None
        if not self.wire.write(live.frame):
            return False
        self.deps.hub.stats.messages_sent += 1
        self.sent += 1
        return True

    async def notice(self, kind: str, **fields: Any) -> None:
        await self.send(json.dumps({"type": kind, **fields}))

    # --- following debates ------------------------------------------------------------

    async def follow(self, debate_id: str, since: int) -> str:
        """Replay after ``since`` and follow: ``live``, ``ended`` or ``unknown``."""
        view = await self.deps.readmodel.get(debate_id)
        if view is None or not can_see(self.identity, view):
            return "unknown"
        self.sub.follow(debate_id)  # first: what is committed from now on is queued
        self.last[debate_id] = max(since, 0)
        return "ended" if await self.catch_up(debate_id) else "live"

    def unfollow(self, debate_id: str) -> None:
        self.last.pop(debate_id, None)
        self.sub.unfollow(debate_id)

    async def catch_up(self, debate_id: str) -> bool:
        """Send the stored events after the last sent one; True once the terminal was sent."""
        while True:
            bodies = await self.deps.readmodel.events(debate_id, self.last[debate_id], REPLAY_PAGE)
            for body in bodies:
                event = json.loads(body)
                await self.send(body)
                self.last[debate_id] = event["seq"]
                if is_terminal_type(event["type"]):
                    return True
            if len(bodies) < REPLAY_PAGE:
                return False

    async def on_event(self, live: LiveEvent) -> bool:
        """Send one live event; True when the stream should now end."""
        followed = live.debate_id in self.last
        if live.ephemeral:
            if followed:
                await self.send(live.body, live.frame)
            return False
        if not followed:
            if self.firehose and self._may_see(live):
                await self.send(live.body, live.frame)
            return False
        last = self.last[live.debate_id]
        if live.seq <= last:
            return False  # the replay (or a gap fill) sent it already
        if live.seq > last + 1:  # missed on the bus: committed, so the read model has it
            ended = await self.catch_up(live.debate_id)
        else:
            await self.send(live.body, live.frame)
            self.last[live.debate_id] = live.seq
            ended = live.terminal
        return await self.ended(live.debate_id) if ended else False

    async def ended(self, debate_id: str) -> bool:
        self.unfollow(debate_id)
        if debate_id == self.single and not self.last and not self.firehose:
            return True
        await self.notice("unsubscribed", debate_id=debate_id, reason="debate ended")
        return False

    def _may_see(self, live: LiveEvent) -> bool:
        if sees_all(self.identity) or live.public:
            return True
        return bool(live.owner) and live.owner == owner_key(self.identity)

    # --- client messages --------------------------------------------------------------

    async def read_client(self) -> None:
        """Queue what the client sends for the sending loop (which alone writes)."""
        limit = self.deps.settings.ws_max_message_bytes
        try:
            while True:
                text = await self.socket.receive_text()
                if len(text) > limit:
                    self.sub.ask_to_close(1009, f"message larger than {limit} bytes")
                    return
                try:
                    message = json.loads(text)
                except ValueError:
                    message = None
                if not isinstance(message, dict):
                    message = {"type": "_invalid"}
                if not self.sub.put_message(message):
                    self.sub.ask_to_close(1008, "too many messages not yet answered")
                    return
        except WebSocketDisconnect:
            self.sub.ask_to_close(GONE, "client left")

    async def on_message(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        debate_id = message.get("debate_id")
        if kind == "ping":
            await self.notice("pong")
        elif kind == "subscribe" and debate_id == "*":
            self.firehose = True
            self.sub.follow(None)
            await self.notice("subscribed", debate_id="*")
        elif kind == "unsubscribe" and debate_id == "*":
            self.firehose = False
            self.sub.unfollow(None)
            await self.notice("unsubscribed", debate_id="*", reason="asked")
        elif kind == "subscribe" and isinstance(debate_id, str) and debate_id:
            await self.subscribe(debate_id, message.get("since", 0))
        elif kind == "unsubscribe" and isinstance(debate_id, str) and debate_id in self.last:
            self.unfollow(debate_id)
            await self.notice("unsubscribed", debate_id=debate_id, reason="asked")
        elif kind == "unsubscribe":
            await self.error("not_found", f"not subscribed to {debate_id}", debate_id)
        else:
            await self.error(
                "bad_request",
                'expected {"type": "subscribe"|"unsubscribe", "debate_id": "…"} or '
                '{"type": "ping"}',
            )

    async def subscribe(self, debate_id: str, since: Any) -> None:
        if not isinstance(since, int) or isinstance(since, bool) or since < 0:
            await self.error("bad_request", "since must be a whole number >= 0", debate_id)
        elif debate_id in self.last:
            await self.error("conflict", f"already subscribed to {debate_id}", debate_id)
        elif len(self.last) >= MAX_FOLLOWED:
            await self.error("limit", f"at most {MAX_FOLLOWED} debates per connection", debate_id)
        else:
            await self.notice("subscribed", debate_id=debate_id, since=since)
            outcome = await self.follow(debate_id, since)
            if outcome == "unknown":
                await self.error("not_found", f"no debate {debate_id}", debate_id)
            elif outcome == "ended":
                await self.ended(debate_id)

    async def error(self, code: str, detail: str, debate_id: str | None = None) -> None:
        await self.notice("error", code=code, detail=detail, debate_id=debate_id)

    # --- the loop ---------------------------------------------------------------------

    async def run(self) -> None:
        idle = 0
        while True:
            item = await self.sub.next(HEARTBEAT_SECONDS)
            if item is None:
                await self.send(HEARTBEAT)
                idle += 1
                if idle % CATCH_UP_EVERY == 0:  # events lost on the bus while quiet
                    for debate_id in list(self.last):
                        if await self.catch_up(debate_id) and await self.ended(debate_id):
                            return
                continue
            idle = 0
            if isinstance(item, LiveEvent):
                if await self.on_event(item):
                    return
            else:
                await self.on_message(item)


async def _authenticate_first_message(socket: Socket, deps: Deps) -> Identity | None:
    """The credential from ``{"type": "auth", "token": …}``; None after closing with 4401."""
    hint = 'authentication required: send {"type": "auth", "token": "…"} first, or ?token='
    try:
        async with asyncio.timeout(AUTH_SECONDS):
            text = await socket.receive_text()
    except TimeoutError:
        await socket.close(code=4401, reason=hint[:120])
        return None
    except WebSocketDisconnect:
        return None
    try:
        message = json.loads(text)
    except ValueError:
        message = None
    token = message.get("token") if isinstance(message, dict) else None
    if not isinstance(message, dict) or message.get("type") != "auth" or not token:
        await socket.close(code=4401, reason=hint[:120])
        return None
    if deps.auth is None:
        await socket.close(code=1013, reason="not ready; retry shortly")
        return None
    try:
        identity = await deps.auth.identify(str(token))
    except TokenError as exc:
        log.info("websocket authentication refused: %s", exc)
        await socket.close(code=4401, reason=str(exc)[:120])
        return None
    await socket.send_text(json.dumps({"type": "authenticated", "user": identity.public()}))
    return identity


def _refusal(deps: Deps, address: str) -> tuple[int, str] | None:
    settings = deps.settings
    if deps.hub.connections >= settings.ws_max_connections:
        return 1013, "server at its WebSocket connection limit; retry later"
    if deps.hub.by_address[address] >= settings.ws_max_connections_per_ip:
        return 4429, "too many WebSocket connections from your address"
    return None


async def serve(socket: Socket, deps: Deps, debate_id: str | None, since: int) -> None:
    stats, port = deps.hub.stats, _port(socket)
    address = resolve_caller(socket.scope, deps.ratelimit.policy).ip if deps.ratelimit else ""
    refusal = _refusal(deps, address)
    await socket.accept()
    if refusal is not None:
        stats.refused += 1
        metrics.ws_connection_errors.inc()
        log.warning("websocket refused: %s", refusal[1], extra={"client": address})
        await socket.close(code=refusal[0], reason=refusal[1])
        return
    identity = identity_of(socket.scope)
    if socket.scope.get("state", {}).get("auth_pending"):
        identity = await _authenticate_first_message(socket, deps)
        if identity is None:
            stats.refused += 1
            return
    sub = deps.hub.connect(identity=identity, address=address)
    session = Session(socket, deps, identity, sub)
    metrics.websocket_connections.inc()
    stats.opened_on(port, debate_id)
    context = {"debate_id": debate_id, "client": address, "port": port}
    log.info("websocket opened", extra=context)
    reader = asyncio.create_task(session.read_client())
    code, reason = 1000, "debate ended"
    try:
        if debate_id is None:
            session.firehose = True
            sub.follow(None)
            await session.run()
        else:
            session.single = debate_id
            outcome = await session.follow(debate_id, since)
            if outcome == "unknown":
                code, reason = 4404, "unknown debate"
            elif outcome == "live":
                await session.run()
    except SlowConsumer:
        metrics.ws_connection_errors.inc()
        stats.errors += 1
        stats.slow_consumers += 1
        code, reason = 1013, "client too slow; reconnect with since=<last seq>"
    except Closing as closing:
        code, reason = closing.code, closing.reason
    except WebSocketDisconnect:
        code, reason = GONE, "client left"
    except Exception:
        metrics.ws_connection_errors.inc()
        stats.errors += 1
        log.exception("websocket stream failed", extra=context)
        code, reason = 1011, "internal error; reconnect with since=<last seq>"
    finally:
        reader.cancel()
        sub.close()
        stats.closed_on(port, debate_id)
        metrics.websocket_connections.dec()
    log.info(
        "websocket closed",
        extra={**context, "code": code, "reason": reason, "messages_sent": session.sent},
    )
    if code != GONE:
        try:
            async with asyncio.timeout(2):
                await socket.close(code=code, reason=reason[:120])
        except (TimeoutError, WebSocketDisconnect, RuntimeError):
            pass  # the client is gone or not reading: nothing more to say to it


@websocket("/ws/debates/{debate_id:str}")
async def debate_stream(
    socket: Socket, debate_id: FromPath[str], state: State, since: FromQuery[int] = 0
) -> None:
    await serve(socket, deps_of(state), debate_id, since)


@websocket(["/ws", "/"])
async def firehose(socket: Socket, state: State) -> None:
    """Every debate the caller may see, live; subscribe to single debates with messages."""
    await serve(socket, deps_of(state), None, 0)
