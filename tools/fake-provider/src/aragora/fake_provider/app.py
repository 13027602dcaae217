"""The Litestar app: OpenAI Chat Completions endpoints plus the ``/_fake/*`` control API."""

from __future__ import annotations

import asyncio
import hmac
import itertools
from collections.abc import AsyncIterator
from typing import Any

import msgspec
from litestar import Litestar, Request, get, post
from litestar.response import Response, Stream

from aragora.fake_provider.content import (
    ChatRequest,
    completion,
    error_body,
    sse_events,
)
from aragora.fake_provider.state import ConfigError, ConfigPatch, FakeConfig, FakeState

COMPLETION_PATHS = ["/v1/chat/completions", "/chat/completions"]
_MALFORMED = b'{"id": "chatcmpl-broken", "object": "chat.completion", "choices": [{"index'


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response[bytes]:
    raw = body if isinstance(body, bytes) else msgspec.json.encode(body)
    return Response(raw, status_code=status, media_type="application/json", headers=headers)


def _auth_error(request: Request[Any, Any, Any], required: str) -> Response[bytes] | None:
    header = request.headers.get("authorization", "")
    given = header[7:].strip() if header.lower().startswith("bearer ") else ""
    if given and hmac.compare_digest(given.encode(), required.encode()):
        return None
    if not given:
        message = "You didn't provide an API key. Provide it in the Authorization header."
    else:
        # Echoes the key it got, as some real providers do, so clients' redaction is tested.
        message = f"Incorrect API key provided: {given}."
    return _json(error_body(message, "invalid_request_error", "invalid_api_key"), 401)


def create_app(config: FakeConfig | None = None, *, seed: int = 0) -> Litestar:
    """A fake provider app; its :class:`FakeState` is reachable as ``app.state.fake``."""
    fake = FakeState(config or FakeConfig(), seed=seed)
    ids = itertools.count(1)

    async def _stream(events: list[bytes]) -> AsyncIterator[bytes]:
        for chunk in events:
            yield chunk
            await asyncio.sleep(0)  # let each event go out as its own write

    @post(COMPLETION_PATHS, status_code=200)
    async def chat_completions(request: Request[Any, Any, Any]) -> Response[Any]:
        fake.record(request.url.path)
        cfg = fake.config
        if cfg.require_key:
            denied = _auth_error(request, cfg.require_key)
            if denied is not None:
                return denied
        try:
            chat = msgspec.json.decode(await request.body(), type=ChatRequest)
        except msgspec.DecodeError as exc:
            return _json(error_body(f"Invalid request: {exc}", "invalid_request_error"), 400)
        failure = fake.next_failure()
        if cfg.latency_ms > 0:
            await asyncio.sleep(cfg.latency_ms / 1000)
        if failure == "timeout":
            await fake.hang(cfg.hang_seconds)
            return _json(error_body("Fake provider hang ended.", "timeout"), 504)
        if failure == "500":
            message = "The server had an error while processing your request."
            return _json(error_body(message, "server_error"), 500)
        if failure == "429":
            message = "Rate limit reached for requests. Please try again later."
            headers = {"Retry-After": f"{cfg.retry_after:g}"}
            return _json(error_body(message, "requests", "rate_limit_exceeded"), 429, headers)
        completion_id = f"chatcmpl-fake{next(ids):08d}"
        if chat.stream:
            events = (
                [b"data: {not json\n\n", b"data: [DONE]\n\n"]
                if failure == "malformed"
                else list(sse_events(chat, completion_id, unparsable=failure == "unparsable"))
            )
            return Stream(
                _stream(events),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-cache"},
            )
        if failure == "malformed":
            return _json(_MALFORMED)
        return _json(completion(chat, completion_id, unparsable=failure == "unparsable"))

    @get("/v1/models")
    async def models() -> Response[bytes]:
        model = {"id": "fake-model", "object": "model", "created": 0, "owned_by": "aragora"}
        return _json({"object": "list", "data": [model]})

    @post("/_fake/config", status_code=200)
    async def set_config(request: Request[Any, Any, Any]) -> Response[bytes]:
        try:
            patch = msgspec.json.decode(await request.body() or b"{}", type=ConfigPatch)
            fake.apply(patch)
        except (msgspec.DecodeError, ConfigError) as exc:
            return _json({"error": str(exc)}, 400)
        return _json(fake.public_config())

    @get("/_fake/stats")
    async def stats() -> Response[bytes]:
        return _json(fake.stats())

    @post("/_fake/reset", status_code=200)
    async def reset() -> Response[bytes]:
        fake.reset()
        return _json(fake.stats())

    @get("/_fake/health")
    async def health() -> Response[bytes]:
        return _json({"ok": True})

    app = Litestar(
        route_handlers=[chat_completions, models, set_config, stats, reset, health],
        openapi_config=None,
        logging_config=None,
    )
    app.state.fake = fake
    return app
