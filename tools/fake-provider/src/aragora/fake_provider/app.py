"""The Litestar app: OpenAI, Anthropic and Gemini endpoints plus the ``/_fake/*`` control API."""

from __future__ import annotations

import asyncio
import hmac
import itertools
from collections.abc import AsyncIterator
from typing import Any, Literal

import msgspec
from litestar import Litestar, Request, get, post
from litestar.response import Response, Stream

from aragora.fake_provider.content import (
    ChatRequest,
    completion,
    error_body,
    sse_events,
)
from aragora.fake_provider.dialects import (
    AnthropicRequest,
    GeminiRequest,
    anthropic_error,
    anthropic_events,
    anthropic_message,
    gemini_chunks,
    gemini_error,
    gemini_events,
    gemini_response,
)
from aragora.fake_provider.state import (
    ConfigError,
    ConfigPatch,
    FailMode,
    FakeConfig,
    FakeState,
)

COMPLETION_PATHS = ["/v1/chat/completions", "/chat/completions"]
MESSAGES_PATHS = ["/v1/messages", "/messages"]
GEMINI_PATH = "/v1beta/models/{target:str}"
_MALFORMED = b'{"id": "chatcmpl-broken", "object": "chat.completion", "choices": [{"index'
_MALFORMED_ANTHROPIC = b'{"id": "msg_broken", "type": "message", "content": [{"type'
_MALFORMED_GEMINI = b'{"candidates": [{"content": {"parts": [{"te'
Api = Literal["openai", "anthropic", "gemini"]
# (status, message, OpenAI type/code or Anthropic type) of each error-injecting mode per API.
_RATE_MESSAGE = "Rate limit reached for requests. Please try again later."
_SERVER_MESSAGE = "The server had an error while processing your request."
_OVERLOADED_MESSAGE = "The model is overloaded. Please try again later."
_QUOTA_MESSAGE = "You exceeded your current quota, please check your plan and billing details."
_CREDIT_MESSAGE = (
    "Your credit balance is too low to access the Anthropic API. "
    "Please go to Plans & Billing to upgrade or purchase credits."
)


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


def _api_error(api: Api, status: int, message: str, kind: str) -> Response[bytes]:
    """An error in the API's own JSON shape; ``kind`` is OpenAI's/Anthropic's error type."""
    if api == "anthropic":
        return _json(anthropic_error(message, kind), status)
    if api == "gemini":
        return _json(gemini_error(status, message), status)
    return _json(error_body(message, kind), status)


def _anthropic_auth_error(request: Request[Any, Any, Any], required: str) -> Response[bytes] | None:
    given = request.headers.get("x-api-key", "").strip()
    if given and hmac.compare_digest(given.encode(), required.encode()):
        return None
    message = f"invalid x-api-key: {given}" if given else "x-api-key header is required"
    return _json(anthropic_error(message, "authentication_error"), 401)


def _gemini_auth_error(request: Request[Any, Any, Any], required: str) -> Response[bytes] | None:
    given = (
        request.headers.get("x-goog-api-key", "") or request.query_params.get("key", "")
    ).strip()
    if given and hmac.compare_digest(given.encode(), required.encode()):
        return None
    if not given:
        message = "Method doesn't allow unregistered callers. Please use an API key."
        return _json(gemini_error(403, message), 403)
    # Echoes the key it got (Google does not) so that clients' redaction is tested.
    return _json(gemini_error(400, f"API key not valid: {given}. Please pass a valid key."), 400)


def create_app(config: FakeConfig | None = None, *, seed: int = 0) -> Litestar:
    """A fake provider app; its :class:`FakeState` is reachable as ``app.state.fake``."""
    fake = FakeState(config or FakeConfig(), seed=seed)
    ids = itertools.count(1)

    async def _stream(events: list[bytes]) -> AsyncIterator[bytes]:
        for chunk in events:
            yield chunk
            await asyncio.sleep(0)  # let each event go out as its own write

    async def _inject(failure: FailMode | None, api: Api) -> Response[bytes] | None:
        """Latency, then the error response of an error-injecting ``failure`` (else None)."""
        cfg = fake.config
        if cfg.latency_ms > 0:
            await asyncio.sleep(cfg.latency_ms / 1000)
        if failure == "timeout":
            await fake.hang(cfg.hang_seconds)
            return _api_error(api, 504, "Fake provider hang ended.", "timeout")
        if failure == "500":
            kind = "api_error" if api == "anthropic" else "server_error"
            return _api_error(api, 500, _SERVER_MESSAGE, kind)
        if failure == "overloaded":
            status = 529 if api == "anthropic" else 503
            return _api_error(api, status, _OVERLOADED_MESSAGE, "overloaded_error")
        if failure == "quota":
            if api == "openai":
                body = error_body(_QUOTA_MESSAGE, "insufficient_quota", "insufficient_quota")
                return _json(body, 429)
            if api == "anthropic":
                return _json(anthropic_error(_CREDIT_MESSAGE, "invalid_request_error"), 400)
            return _json(gemini_error(429, _QUOTA_MESSAGE), 429)
        if failure == "429":
            headers = {"Retry-After": f"{cfg.retry_after:g}"}
            if api == "openai":
                body = error_body(_RATE_MESSAGE, "requests", "rate_limit_exceeded")
                return _json(body, 429, headers)
            if api == "anthropic":
                return _json(anthropic_error(_RATE_MESSAGE, "rate_limit_error"), 429, headers)
            return _json(gemini_error(429, "Resource has been exhausted."), 429, headers)
        return None

    def _sse(events: list[bytes]) -> Stream:
        return Stream(
            _stream(events),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache"},
        )

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
        if (injected := await _inject(failure, "openai")) is not None:
            return injected
        completion_id = f"chatcmpl-fake{next(ids):08d}"
        if chat.stream:
            events = (
                [b"data: {not json\n\n", b"data: [DONE]\n\n"]
                if failure == "malformed"
                else list(sse_events(chat, completion_id, unparsable=failure == "unparsable"))
            )
            return _sse(events)
        if failure == "malformed":
            return _json(_MALFORMED)
        return _json(completion(chat, completion_id, unparsable=failure == "unparsable"))

    @post(MESSAGES_PATHS, status_code=200)
    async def messages(request: Request[Any, Any, Any]) -> Response[Any]:
        fake.record(request.url.path)
        cfg = fake.config
        if cfg.require_key:
            denied = _anthropic_auth_error(request, cfg.require_key)
            if denied is not None:
                return denied
        if not request.headers.get("anthropic-version"):
            message = "anthropic-version: header is required"
            return _json(anthropic_error(message, "invalid_request_error"), 400)
        try:
            chat = msgspec.json.decode(await request.body(), type=AnthropicRequest)
        except msgspec.DecodeError as exc:
            return _json(anthropic_error(f"Invalid request: {exc}", "invalid_request_error"), 400)
        failure = fake.next_failure()
        if (injected := await _inject(failure, "anthropic")) is not None:
            return injected
        message_id = f"msg_fake{next(ids):08d}"
        unparsable = failure == "unparsable"
        if chat.stream:
            if failure == "malformed":
                return _sse([b"event: message_start\ndata: {not json\n\n"])
            return _sse(list(anthropic_events(chat, message_id, unparsable=unparsable)))
        if failure == "malformed":
            return _json(_MALFORMED_ANTHROPIC)
        return _json(anthropic_message(chat, message_id, unparsable=unparsable))

    @post(GEMINI_PATH, status_code=200)
    async def generate_content(request: Request[Any, Any, Any], target: str) -> Response[Any]:
        fake.record(request.url.path)
        model, _, method = target.partition(":")
        if method not in ("generateContent", "streamGenerateContent") or not model:
            return _json(gemini_error(404, f"Unknown method: {target}"), 404)
        cfg = fake.config
        if cfg.require_key:
            denied = _gemini_auth_error(request, cfg.require_key)
            if denied is not None:
                return denied
        try:
            chat = msgspec.json.decode(await request.body(), type=GeminiRequest)
        except msgspec.DecodeError as exc:
            return _json(gemini_error(400, f"Invalid JSON payload received. {exc}"), 400)
        failure = fake.next_failure()
        if (injected := await _inject(failure, "gemini")) is not None:
            return injected
        unparsable = failure == "unparsable"
        if method == "streamGenerateContent":
            if request.query_params.get("alt") == "sse":
                if failure == "malformed":
                    return _sse([b"data: {not json\n\n"])
                return _sse(list(gemini_events(gemini_chunks(chat, model, unparsable=unparsable))))
            if failure == "malformed":
                return _json(b"[" + _MALFORMED_GEMINI)
            return _json(gemini_chunks(chat, model, unparsable=unparsable))
        if failure == "malformed":
            return _json(_MALFORMED_GEMINI)
        return _json(gemini_response(chat, model, unparsable=unparsable))

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
        route_handlers=[
            chat_completions,
            messages,
            generate_content,
            models,
            set_config,
            stats,
            reset,
            health,
        ],
        openapi_config=None,
        logging_config=None,
    )
    app.state.fake = fake
    return app
