"""Adapter for any OpenAI-compatible Chat Completions API (OpenAI, Ollama, vLLM, ...).

Retries (connection errors, 5xx, 429 with ``Retry-After``; at most 3 attempts) are owned by
:class:`~aragora.agent_runner.providers.http_retry.HttpProvider`, shared by every HTTP
adapter; this module only builds the request and reads the answer.
"""

from __future__ import annotations

import httpx
import msgspec

from aragora.agent_runner.providers.base import ChatMessage, Completion, ProviderError
from aragora.agent_runner.providers.http_retry import (
    MAX_ATTEMPTS,
    TEMPERATURE,
    HttpProvider,
    StreamState,
)

__all__ = ["MAX_ATTEMPTS", "TEMPERATURE", "OpenAICompatibleProvider"]


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


class _Delta(msgspec.Struct):
    content: str | None = None


class _ChunkChoice(msgspec.Struct):
    delta: _Delta | None = None


class _Chunk(msgspec.Struct):
    choices: list[_ChunkChoice] = []
    model: str = ""
    usage: _Usage | None = None


class OpenAICompatibleProvider(HttpProvider):
    """POSTs ``{base_url}/chat/completions`` with the turn's prompt.

    The key goes only in ``Authorization: Bearer``.
    """

    kind: str = "openai-compatible"

    @staticmethod
    def endpoint(base_url: str, model: str) -> str:
        return base_url.rstrip("/") + "/chat/completions"

    def _body(self, messages: list[ChatMessage]) -> object:
        return {"model": self._model, "messages": messages, "temperature": TEMPERATURE}

    def _auth_headers(self, key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"}

    def _stream_body(self, messages: list[ChatMessage]) -> tuple[str, object]:
        body = {
            "model": self._model,
            "messages": messages,
            "temperature": TEMPERATURE,
            "stream": True,
            "stream_options": {"include_usage": True},  # a last chunk carries the usage
        }
        return self._url, body

    def _read_chunk(self, data: bytes, state: StreamState) -> str:
        chunk = self._decode_chunk(data, _Chunk)
        state.model = chunk.model or state.model
        if chunk.usage is not None:
            state.prompt_tokens = chunk.usage.prompt_tokens
            state.completion_tokens = chunk.usage.completion_tokens
        delta = chunk.choices[0].delta if chunk.choices else None
        return (delta.content or "") if delta else ""

    def _parse(self, response: httpx.Response) -> Completion:
        completion = self._decode(response, _Completion)
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
