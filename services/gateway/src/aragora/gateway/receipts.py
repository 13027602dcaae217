"""REST routes of decision receipts: a finished debate's signed receipt, and the public key.

The signing seed is loaded once per app, lazily (in a worker thread: it may create the key
file), and cached on the app's state.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, get_args

from litestar import Request, Response, get
from litestar.datastructures import State
from litestar.exceptions import HTTPException, ServiceUnavailableException
from litestar.params import FromPath, FromQuery

from aragora.contracts import codec
from aragora.contracts.messages import DebateEvent
from aragora.contracts.receipt import ALGORITHM, DebateNotFinished, build_receipt
from aragora.contracts.receipt_render import render_html, render_markdown
from aragora.contracts.receipt_signing import (
    key_id_of,
    public_key_of,
    serialize_signed,
    sign_receipt,
)
from aragora.contracts.values import TerminalStatus
from aragora.gateway.deps import Deps
from aragora.gateway.visibility import visible
from aragora.runtime.settings import SettingsError
from aragora.runtime.signing import load_signing_seed

log = logging.getLogger("aragora.gateway.receipts")

_SIGNER_STATE_KEY = "receipt_signer"
_PAGE = 10_000
_TERMINAL = frozenset(get_args(TerminalStatus))
_HTML_CSP = "default-src 'none'; style-src 'unsafe-inline'"

ReceiptFormat = Literal["json", "md", "html"]


@dataclass(frozen=True)
class Signer:
    seed: bytes
    public_key: str
    key_id: str


async def signer_of(state: State) -> Signer:
    """The app's signer, loading the seed on first use."""
    cached = state.get(_SIGNER_STATE_KEY)
    if isinstance(cached, Signer):
        return cached
    deps: Deps = state.deps
    try:
        seed = await asyncio.to_thread(load_signing_seed, deps.settings)
    except SettingsError as exc:
        log.error("cannot load the receipt signing key: %s", exc)
        raise ServiceUnavailableException(
            "the receipt signing key is unavailable; see the gateway log"
        ) from None
    public_key = public_key_of(seed)
    signer = Signer(seed=seed, public_key=public_key, key_id=key_id_of(public_key))
    state[_SIGNER_STATE_KEY] = signer
    return signer


async def _events(deps: Deps, debate_id: str) -> list[DebateEvent]:
    events: list[DebateEvent] = []
    after = 0
    while True:
        bodies = await deps.readmodel.events(debate_id, after, _PAGE)
        page = [codec.decode_debate_event(body.encode()) for body in bodies]
        events += page
        if len(page) < _PAGE:
            return events
        after = page[-1].seq


def _still_running(debate_id: str) -> HTTPException:
    return HTTPException(
        status_code=409,
        detail=f"debate {debate_id} has not ended yet; its receipt is issued once it does",
    )


@get("/api/debates/{debate_id:str}/receipt", tags=["receipts"])
async def debate_receipt(
    debate_id: FromPath[str],
    state: State,
    request: Request[Any, Any, Any],
    format: FromQuery[ReceiptFormat] = "json",
) -> Response[Any]:
    """The signed receipt of a finished debate, as JSON (verifiable), Markdown or HTML."""
    deps: Deps = state.deps
    view = visible(request, debate_id, await deps.readmodel.get(debate_id))
    if view["status"] not in _TERMINAL:
        raise _still_running(debate_id)
    try:
        receipt = build_receipt(await _events(deps, debate_id), datetime.now(UTC))
    except DebateNotFinished:
        raise _still_running(debate_id) from None  # the terminal event is not stored yet
    signed = sign_receipt(receipt, (await signer_of(state)).seed)
    if format == "md":
        return Response(render_markdown(signed), media_type="text/markdown; charset=utf-8")
    if format == "html":
        return Response(
            render_html(signed),
            media_type="text/html; charset=utf-8",
            headers={"Content-Security-Policy": _HTML_CSP},
        )
    return Response(serialize_signed(signed), media_type="application/json")


@get("/api/receipts/public-key", tags=["receipts"])
async def receipt_public_key(state: State) -> dict[str, str]:
    """The key receipts are signed with, to pass to ``aragora receipt verify --public-key``."""
    signer = await signer_of(state)
    return {"algorithm": ALGORITHM, "public_key": signer.public_key, "key_id": signer.key_id}
