"""Adapter for any OpenAI-compatible Chat Completions API (OpenAI, Ollama, vLLM, ...).

This adapter is the single owner of retries for its HTTP call: connection errors, 5xx and
429 are retried (at most :data:`MAX_ATTEMPTS` attempts, exponential backoff with jitter,
``Retry-After`` honoured); other 4xx are rejections. It adds no overall deadline: the
caller bounds the whole turn with ``asyncio.timeout``; the turn's deadline only lets it give
up early on a wait that could never fit. Parsing the answer and re-asking when it does not
parse is not its concern: :func:`run_structured` does that over :meth:`complete`.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import time
from collections.abc import Awaitable, Callable
from email.utils import parsedate_to_datetime

import httpx
import msgspec

from aragora.agent_runner.providers.base import ChatMessage, Completion, ProviderError, TurnOutput
from aragora.agent_runner.providers.structured import run_structured, turn_deadline
from aragora.contracts.messages import FailureReason, RunTurn

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
TEMPERATURE = 0.7
_REJECTED_STATUSES = frozenset({400, 401, 403, 404})
_MAX_DETAIL = 300
# Key-shaped tokens some providers echo in errors ("Incorrect API key provided: sk-...").
_KEY_LIKE = re.compile(r"\b(sk|pk|rk)-[A-Za-z0-9_\-*.]{4,}|Bearer\s+\S+", re.IGNORECASE)


class _Message(msgspec.Struct):
    content: str | None = None


class _Choice(msgspec.Struct):
    message: _Message


class _Usage(msgspec.Struct):
    prompt_tokens: int = 0
    completion_tokens: int = 0


class _Completion(msgspec.Struct):
    choices: list[_Choice]
    model: str = ""
    usage: _Usage | None = None


class _ErrorBody(msgspec.Struct):
    message: str = ""


class _ErrorEnvelope(msgspec.Struct):
    error: _ErrorBody | str | None = None


class _Secret:
    """Holds a key so that ``repr``/``vars`` of its owner never show it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def __repr__(self) -> str:
        return "_Secret('***')" if self._value else "_Secret('')"

    def reveal(self) -> str:
        return self._value


class OpenAICompatibleProvider:
    """POSTs ``{base_url}/chat/completions`` with the turn's prompt.

    The API key is private: it is sent only in the ``Authorization`` header and is redacted
    from every error detail; ``repr`` does not show it.
    """

    kind: str = "openai-compatible"

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
        self._url = base_url.rstrip("/") + "/chat/completions"
        self._model = model
        self._api_key = _Secret(api_key)
        self._persona = persona
        self._backoff_base_s = backoff_base_s
        self._backoff_max_s = backoff_max_s
        self._sleep = sleep

    def __repr__(self) -> str:
        return f"OpenAICompatibleProvider(url={self._url!r}, model={self._model!r})"

    async def aclose(self) -> None:
        """Nothing to release: the HTTP client belongs to the caller."""

    async def run_turn(self, command: RunTurn, *, deadline: float | None = None) -> TurnOutput:
        """The turn's answer, parsed for its phase (re-asked once when unparsable)."""
        return await run_structured(
            self.complete,
            command,
            persona=self._persona,
            deadline=turn_deadline(command, deadline),
            default_model=self._model,
        )

    async def complete(self, messages: list[ChatMessage], deadline: float) -> Completion:
        """One chat completion (with transport retries); ``deadline`` on the loop's clock.

        The deadline is used only to give up early on a wait the turn could never outlast.
        """
        body = {"model": self._model, "messages": messages, "temperature": TEMPERATURE}
        response = await self._post_with_retries(msgspec.json.encode(body), deadline)
        return self._parse(response)

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if key := self._api_key.reveal():
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def _redact(self, text: str) -> str:
        if key := self._api_key.reveal():
            text = text.replace(key, "***")
        text = _KEY_LIKE.sub("***", text)
        return text[:_MAX_DETAIL]

    async def _post_with_retries(self, payload: bytes, deadline: float) -> httpx.Response:
        loop = asyncio.get_running_loop()
        last_error: ProviderError | None = None
        for attempt in range(1, MAX_ATTEMPTS + 1):
            retry_after: float | None = None
            try:
                response = await self._http.post(
                    self._url, content=payload, headers=self._headers()
                )
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
                message = self._redact(_error_message(response))
                if status == 429 or status >= 500:
                    label = "rate limited" if status == 429 else "server error"
                    last_error = ProviderError(
                        "provider_error", f"HTTP {status} {label}: {message}", retryable=True
                    )
                    retry_after = _retry_after_seconds(response) if status == 429 else None
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

    def _parse(self, response: httpx.Response) -> Completion:
        try:
            completion = msgspec.json.decode(response.content, type=_Completion)
        except msgspec.DecodeError as exc:
            shape = isinstance(exc, msgspec.ValidationError)
            what = "unexpected response shape" if shape else "malformed JSON response body"
            raise ProviderError("provider_error", self._redact(f"{what}: {exc}")) from None
        if not completion.choices:
            raise ProviderError("provider_error", "response has no choices")
        content = completion.choices[0].message.content
        if not content or not content.strip():
            raise ProviderError("provider_error", "response has no message content")
        usage = completion.usage or _Usage()
        return Completion(
            text=content.strip(),
            model=completion.model or self._model,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
        )


def _error_message(response: httpx.Response) -> str:
    """The provider's own error message (OpenAI's ``{"error": {"message"}}``), or a snippet."""
    try:
        envelope = msgspec.json.decode(response.content, type=_ErrorEnvelope)
    except msgspec.DecodeError:
        return response.text[:_MAX_DETAIL].strip() or response.reason_phrase
    if isinstance(envelope.error, _ErrorBody) and envelope.error.message:
        return envelope.error.message
    if isinstance(envelope.error, str) and envelope.error:
        return envelope.error
    return response.reason_phrase


def _retry_after_seconds(response: httpx.Response) -> float | None:
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
