"""The one retry owner of every HTTP provider adapter: POST a JSON body, retry, redact.

:class:`HttpProvider` POSTs one JSON request per call and retries it on connection errors,
5xx (Anthropic's 529 "overloaded" included) and 429 (at most :data:`MAX_ATTEMPTS`
attempts, exponential backoff with jitter, ``Retry-After`` honoured); other 4xx are
rejections. It adds no overall deadline: the caller bounds the whole turn with
``asyncio.timeout``; the turn's deadline only lets it give up early on a wait that could
never fit. Subclasses (OpenAI-compatible, Anthropic, Gemini) only say how to build the
request and read the answer; parsing the answer for the phase and re-asking is
:func:`run_structured`'s concern.

Streaming (``run_turn(on_delta=...)``): an adapter that implements :meth:`_stream_body`
and :meth:`_read_chunk` gets its first call made as a server-sent-events request; the
pieces go to ``on_delta`` as they arrive and are joined into the same :class:`Completion`
a plain call returns. Retries cover the request until its first byte; a stream that breaks
mid-way fails the call (``provider_error``).
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import time
from collections.abc import Awaitable, Callable
from email.utils import parsedate_to_datetime
from typing import TypeVar

import httpx
import msgspec

from aragora.agent_runner.providers.base import (
    ChatMessage,
    Completion,
    DeltaFn,
    ProviderError,
    TurnOutput,
)
from aragora.agent_runner.providers.structured import run_structured, turn_deadline
from aragora.contracts.messages import FailureReason, RunTurn

log = logging.getLogger(__name__)
_T = TypeVar("_T")

MAX_ATTEMPTS = 3
TEMPERATURE = 0.7
_REJECTED_STATUSES = frozenset({400, 401, 403, 404})
_QUOTA_STATUSES = frozenset({400, 402, 403, 429})
_QUOTA_WORDS = re.compile(
    r"quota|credit balance|insufficient[_ ]credits?|billing|payment required", re.IGNORECASE
)
MAX_DETAIL = 300
# Key-shaped tokens some providers echo in errors ("Incorrect API key provided: sk-..."):
# OpenAI/Anthropic ``sk-...`` (``sk-ant-...``), Google ``AIza...``, bearer tokens.
_KEY_LIKE = re.compile(
    r"\b(sk|pk|rk)-[A-Za-z0-9_\-*.]{4,}|\bAIza[A-Za-z0-9_\-]{8,}|Bearer\s+\S+", re.IGNORECASE
)


class _ErrorBody(msgspec.Struct):
    message: str = ""


class _ErrorEnvelope(msgspec.Struct):
    error: _ErrorBody | str | None = None


class StreamState:
    """What a streaming call has read so far, besides the text pieces."""

    __slots__ = ("completion_tokens", "model", "prompt_tokens")

    def __init__(self) -> None:
        self.model = ""
        self.prompt_tokens = 0
        self.completion_tokens = 0


class Secret:
    """Holds a key so that ``repr``/``vars`` of its owner never show it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def __repr__(self) -> str:
        return "_Secret('***')" if self._value else "_Secret('')"

    def reveal(self) -> str:
        return self._value


class HttpProvider:
    """Base of the HTTP adapters: ``complete`` = build body, POST with retries, parse.

    The API key is private: subclasses send it only in a header (never in the URL) and it
    is redacted from every error detail; ``repr`` does not show it.
    """

    kind: str = ""

    @staticmethod
    def endpoint(base_url: str, model: str) -> str:
        """The URL this API's completion is POSTed to (each adapter names its own)."""
        raise NotImplementedError

    def __init__(
        self,
        *,
        http: httpx.AsyncClient,
        base_url: str,
        model: str,
        api_key: str = "",
        persona: str = "",
        backoff_base_s: float = 0.25,
        backoff_max_s: float = 8.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._http = http
        self._url = self.endpoint(base_url, model)
        self._model = model
        self._api_key = Secret(api_key)
        self._persona = persona
        self._backoff_base_s = backoff_base_s
        self._backoff_max_s = backoff_max_s
        self._sleep = sleep

    def __repr__(self) -> str:
        return f"{type(self).__name__}(url={self._url!r}, model={self._model!r})"

    async def aclose(self) -> None:
        """Nothing to release: the HTTP client belongs to the caller."""

    async def run_turn(
        self,
        command: RunTurn,
        *,
        deadline: float | None = None,
        on_delta: DeltaFn | None = None,
    ) -> TurnOutput:
        """The turn's answer, parsed for its phase (re-asked once when unparsable)."""

        async def first(messages: list[ChatMessage], end: float) -> Completion:
            assert on_delta is not None
            return await self.stream_complete(messages, end, on_delta)

        streaming = on_delta is not None and self.can_stream
        return await run_structured(
            self.complete,
            command,
            persona=self._persona,
            deadline=turn_deadline(command, deadline),
            default_model=self._model,
            first_complete=first if streaming else None,
        )

    @property
    def can_stream(self) -> bool:
        return type(self)._read_chunk is not HttpProvider._read_chunk

    async def complete(self, messages: list[ChatMessage], deadline: float) -> Completion:
        """One model call (with transport retries); ``deadline`` on the loop's clock.

        The deadline is used only to give up early on a wait the turn could never outlast.
        """
        payload = msgspec.json.encode(self._body(messages))
        response = await self._post_with_retries(payload, deadline)
        return self._parse(response)

    async def stream_complete(
        self, messages: list[ChatMessage], deadline: float, on_delta: DeltaFn
    ) -> Completion:
        """One streamed model call: each text piece goes to ``on_delta`` as it arrives."""
        url, body = self._stream_body(messages)
        response = await self._post_with_retries(
            msgspec.json.encode(body), deadline, url=url, stream=True
        )
        state = StreamState()
        pieces: list[str] = []
        try:
            async for line in response.aiter_lines():
                if not line.startswith("data:"):
                    continue  # event names, comments, keep-alives, blank separators
                data = line[5:].strip()
                if not data or data == "[DONE]":
                    continue
                piece = self._read_chunk(data.encode(), state)
                if piece:
                    pieces.append(piece)
                    await on_delta(piece)
        except httpx.TimeoutException as exc:
            raise ProviderError(
                "timeout", f"HTTP timeout reading the provider's stream ({type(exc).__name__})"
            ) from None
        except httpx.TransportError as exc:
            detail = f"the provider's stream broke: {type(exc).__name__}: {exc}"
            raise ProviderError("provider_error", self._redact(detail)) from None
        finally:
            await response.aclose()
        text = "".join(pieces).strip()
        if not text:
            raise ProviderError("provider_error", "streamed response has no text content")
        return Completion(
            text=text,
            model=state.model or self._model,
            prompt_tokens=state.prompt_tokens,
            completion_tokens=state.completion_tokens,
        )

    # --- what each API does differently ---------------------------------------------------

    def _stream_body(self, messages: list[ChatMessage]) -> tuple[str, object]:
        """The URL and body of a streaming request (adapters that can stream)."""
        raise NotImplementedError

    def _read_chunk(self, data: bytes, state: StreamState) -> str:
        """The text piece in one SSE ``data`` payload; usage and model go into ``state``."""
        raise NotImplementedError

    def _decode_chunk(self, data: bytes, shape: type[_T]) -> _T:
        try:
            return msgspec.json.decode(data, type=shape)
        except msgspec.DecodeError as exc:
            detail = f"malformed stream event: {exc}"
            raise ProviderError("provider_error", self._redact(detail)) from None

    def _body(self, messages: list[ChatMessage]) -> object:
        raise NotImplementedError

    def _auth_headers(self, key: str) -> dict[str, str]:
        raise NotImplementedError

    def _parse(self, response: httpx.Response) -> Completion:
        raise NotImplementedError

    # --- shared ---------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if key := self._api_key.reveal():
            headers.update(self._auth_headers(key))
        return headers

    def _redact(self, text: str) -> str:
        if key := self._api_key.reveal():
            text = text.replace(key, "***")
        text = _KEY_LIKE.sub("***", text)
        return text[:MAX_DETAIL]

    def _decode(self, response: httpx.Response, shape: type[_T]) -> _T:
        """The body as ``shape``, or a non-retryable ``provider_error`` saying what is wrong."""
        try:
            return msgspec.json.decode(response.content, type=shape)
        except msgspec.DecodeError as exc:
            is_shape = isinstance(exc, msgspec.ValidationError)
            what = "unexpected response shape" if is_shape else "malformed JSON response body"
            raise ProviderError("provider_error", self._redact(f"{what}: {exc}")) from None

    async def _post_with_retries(
        self, payload: bytes, deadline: float, *, url: str = "", stream: bool = False
    ) -> httpx.Response:
        """The successful response; with ``stream`` its body is unread (caller closes it)."""
        loop = asyncio.get_running_loop()
        last_error: ProviderError | None = None
        headers = self._headers()
        if stream:
            headers["Accept"] = "text/event-stream"
        for attempt in range(1, MAX_ATTEMPTS + 1):
            retry_after: float | None = None
            try:
                request = self._http.build_request(
                    "POST", url or self._url, content=payload, headers=headers
                )
                response = await self._http.send(request, stream=stream)
                if stream and response.status_code >= 400:
                    try:
                        await response.aread()
                    finally:
                        await response.aclose()
            except httpx.TimeoutException as exc:
                last_error = ProviderError(
                    "timeout",
                    f"HTTP timeout calling the provider ({type(exc).__name__})",
                    retryable=True,
                )
            except httpx.TransportError as exc:
                last_error = ProviderError(
                    "provider_error",
                    self._redact(f"cannot reach the provider: {type(exc).__name__}: {exc}"),
                    retryable=True,
                )
            else:
                status = response.status_code
                if status < 400:
                    return response
                message = self._redact(error_message(response))
                if is_quota_error(status, message):
                    # Out of quota or credit: waiting seconds will not help; the runner
                    # routes the turn to the agent's fallback chain instead.
                    raise ProviderError("quota", f"HTTP {status} quota: {message}") from None
                if status == 429 or status >= 500:
                    label = "rate limited" if status == 429 else "server error"
                    last_error = ProviderError(
                        "provider_error", f"HTTP {status} {label}: {message}", retryable=True
                    )
                    retry_after = retry_after_seconds(response) if status == 429 else None
                else:
                    reason: FailureReason = (
                        "rejected" if status in _REJECTED_STATUSES else "provider_error"
                    )
                    raise ProviderError(reason, f"HTTP {status}: {message}") from None
            if attempt == MAX_ATTEMPTS:
                break
            delay = retry_after if retry_after is not None else self._backoff(attempt)
            if loop.time() + delay > deadline:
                break  # waiting would outlive the turn: fail now with the real cause
            log.debug(
                "provider attempt %d failed (%s); retrying in %.2fs",
                attempt,
                last_error.detail,
                delay,
            )
            await self._sleep(delay)
        assert last_error is not None
        raise last_error

    def _backoff(self, attempt: int) -> float:
        # Full exponential step times a jitter factor in [0.5, 1.5) to spread retry storms.
        step = min(self._backoff_max_s, self._backoff_base_s * 2.0 ** (attempt - 1))
        return step * (0.5 + random.random())


def is_quota_error(status: int, message: str) -> bool:
    """An exhausted quota or credit balance, not a transient rate limit.

    OpenAI: 429 ``insufficient_quota`` ("You exceeded your current quota"); Gemini: 429
    ``RESOURCE_EXHAUSTED`` with the same words; Anthropic: 400 "Your credit balance is too
    low"; OpenRouter: 402 "Insufficient credits"; some gateways: 403 with "quota".
    """
    return status in _QUOTA_STATUSES and _QUOTA_WORDS.search(message) is not None


def error_message(response: httpx.Response) -> str:
    """The provider's own error message, or a snippet of the body.

    OpenAI, Anthropic and Gemini all put it at ``{"error": {"message": ...}}``.
    """
    try:
        envelope = msgspec.json.decode(response.content, type=_ErrorEnvelope)
    except msgspec.DecodeError:
        return response.text[:MAX_DETAIL].strip() or response.reason_phrase
    if isinstance(envelope.error, _ErrorBody) and envelope.error.message:
        return envelope.error.message
    if isinstance(envelope.error, str) and envelope.error:
        return envelope.error
    return response.reason_phrase


def retry_after_seconds(response: httpx.Response) -> float | None:
    """``Retry-After`` as seconds (delta-seconds or an HTTP date), if present and sane.

    OpenAI also sends ``retry-after-ms``; it is preferred when parseable.
    """
    try:
        return max(0.0, float(response.headers["retry-after-ms"]) / 1000)
    except (KeyError, ValueError):
        pass
    raw = response.headers.get("retry-after")
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
