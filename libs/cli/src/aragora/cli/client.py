"""A small client for the Aragora gateway: start a debate, then follow its events.

* ``POST /api/debates`` creates a debate (:func:`create_debate`);
* ``GET /ws/debates/{id}?since=<seq>`` (WebSocket) replays the events after ``since`` and then
  streams live ones until the terminal event (:func:`follow_debate`). A dropped connection is
  re-opened with exponential backoff from the last ``seq`` seen; replayed duplicates are
  skipped, and frames that are not debate events (heartbeats...) are ignored.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import msgspec
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from aragora.contracts.codec import decode_debate_event
from aragora.contracts.messages import (
    DEBATE_EVENT_TYPES,
    TERMINAL_EVENT_TYPES,
    DebateEventType,
    tag_of,
)

DEBATE_EVENT_TAGS = frozenset(tag_of(t) for t in DEBATE_EVENT_TYPES)
"""The ``type`` tags of debate events; frames with any other tag are ignored."""


class GatewayError(Exception):
    """The gateway could not do what was asked (a message fit for the user)."""


class GatewayUnreachable(GatewayError):
    """No connection to the gateway could be made."""

    def __init__(self, url: str, cause: str) -> None:
        super().__init__(f"cannot reach the Aragora gateway at {url}: {cause}")
        self.url = url
        self.cause = cause


class BadRequest(GatewayError):
    """The gateway rejected the request (HTTP 4xx); ``detail`` and ``extra`` say why."""

    def __init__(self, status_code: int, detail: str, extra: Any = None) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail
        self.extra = extra


class StreamLost(GatewayError):
    """The event stream dropped and could not be re-opened in time."""


@dataclass(frozen=True)
class Backoff:
    """Reconnection delays: ``initial`` doubling up to ``maximum``, for ``give_up_after`` s."""

    initial: float = 0.2
    maximum: float = 5.0
    give_up_after: float = 30.0

    def delays(self) -> Iterator[float]:
        """The successive delays (endless; the caller enforces ``give_up_after``)."""
        delay = self.initial
        while True:
            yield delay
            delay = min(delay * 2, self.maximum)


@dataclass(frozen=True)
class Received:
    """One debate event and the frame it came in (printed verbatim by ``--json``)."""

    event: DebateEventType
    raw: str


class _Tagged(msgspec.Struct):
    """Just enough of a frame to tell what it is."""

    type: str = ""


_tag_decoder = msgspec.json.Decoder(_Tagged)


def parse_frame(frame: str | bytes) -> Received | None:
    """The debate event in ``frame``, or None for frames of other types or non-JSON frames.

    Raises :class:`GatewayError` if a frame tagged as a debate event does not decode as one.
    """
    data = frame.encode() if isinstance(frame, str) else frame
    try:
        tag = _tag_decoder.decode(data).type
    except msgspec.DecodeError:
        return None
    if tag not in DEBATE_EVENT_TAGS:
        return None
    try:
        event = decode_debate_event(data)
    except msgspec.DecodeError as exc:
        raise GatewayError(f"the gateway sent a malformed {tag} event: {exc}") from exc
    raw = frame if isinstance(frame, str) else frame.decode("utf-8", errors="replace")
    return Received(event=event, raw=raw)


def _error_detail(response: httpx.Response) -> tuple[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return (response.text.strip()[:500] or response.reason_phrase), None
    if isinstance(body, dict):
        detail = body.get("detail") or response.reason_phrase
        return str(detail), body.get("extra")
    return str(body)[:500], None


async def create_debate(
    base_url: str,
    topic: str,
    *,
    agents: list[str] | None = None,
    rounds: int | None = None,
    protocol: dict[str, Any] | None = None,
    domain: str | None = None,
    http_timeout: float = 10.0,
    token: str = "",
) -> str:
    """Ask the gateway to start a debate; return its id."""
    body: dict[str, Any] = {"topic": topic}
    if agents is not None:
        body["agents"] = agents
    if rounds is not None:
        body["rounds"] = rounds
    if protocol:
        body["protocol"] = protocol
    if domain is not None:
        body["domain"] = domain
    try:
        async with httpx.AsyncClient(
            base_url=base_url, timeout=http_timeout, headers=auth_headers(token)
        ) as http:
            response = await http.post("/api/debates", json=body)
    except httpx.TransportError as exc:
        raise GatewayUnreachable(base_url, str(exc) or type(exc).__name__) from exc
    if 400 <= response.status_code < 500:
        detail, extra = _error_detail(response)
        raise BadRequest(response.status_code, detail, extra)
    if not response.is_success:
        detail, _ = _error_detail(response)
        raise GatewayError(f"the gateway answered HTTP {response.status_code}: {detail}")
    try:
        debate_id = response.json()["id"]
    except (ValueError, KeyError, TypeError) as exc:
        raise GatewayError("the gateway's answer has no debate id") from exc
    return str(debate_id)


def auth_headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def events_url(base_url: str, debate_id: str, since: int) -> str:
    """The WebSocket URL of a debate's events after ``since`` (``http`` -> ``ws``)."""
    url = httpx.URL(base_url)
    scheme = "wss" if url.scheme == "https" else "ws"
    path = url.path.rstrip("/") + "/ws/debates/" + quote(debate_id, safe="")
    return str(url.copy_with(scheme=scheme, path=path, query=f"since={since}".encode()))


ReconnectHook = Callable[[int, float], None]
"""Called as ``hook(last_seq, delay)`` before waiting to reconnect."""


async def follow_debate(
    base_url: str,
    debate_id: str,
    *,
    since: int = 0,
    backoff: Backoff | None = None,
    on_reconnect: ReconnectHook | None = None,
    open_timeout: float = 10.0,
    token: str = "",
) -> AsyncGenerator[Received, None]:
    """Yield the debate's events in ``seq`` order, each once, ending with the terminal one.

    Raises :class:`StreamLost` when reconnecting fails for ``backoff.give_up_after`` seconds,
    and :class:`GatewayError` when the gateway refuses the stream (e.g. unknown debate).
    """
    backoff = backoff or Backoff()
    last_seq = since
    delays = backoff.delays()
    failing_since: float | None = None
    while True:
        reason = "the connection closed before the debate ended"
        try:
            async with connect(
                events_url(base_url, debate_id, last_seq),
                open_timeout=open_timeout,
                additional_headers=auth_headers(token),
            ) as ws:
                async for frame in ws:
                    failing_since, delays = None, backoff.delays()
                    received = parse_frame(frame)
                    if received is None or received.event.seq <= last_seq:
                        continue
                    last_seq = received.event.seq
                    yield received
                    if isinstance(received.event, TERMINAL_EVENT_TYPES):
                        return
        except InvalidStatus as exc:
            status = exc.response.status_code
            if 400 <= status < 500 and status not in (408, 429):
                raise GatewayError(
                    f"the gateway refused the event stream of debate {debate_id} (HTTP {status})"
                ) from exc
            reason = f"HTTP {status}"
        except (OSError, TimeoutError, ConnectionClosed, InvalidHandshake) as exc:
            reason = str(exc) or type(exc).__name__
        now = time.monotonic()
        if failing_since is None:
            failing_since = now
        if now - failing_since >= backoff.give_up_after:
            raise StreamLost(
                f"lost the event stream of debate {debate_id} after seq {last_seq} ({reason})"
            )
        delay = next(delays)
        if on_reconnect is not None:
            on_reconnect(last_seq, delay)
        await asyncio.sleep(delay)
