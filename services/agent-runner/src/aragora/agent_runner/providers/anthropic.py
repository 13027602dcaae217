"""Adapter for Anthropic's Messages API (``POST {base}/v1/messages``).

System messages become the top-level ``system`` string; the key goes only in
``x-api-key``, with ``anthropic-version``. Retries (529 "overloaded" included, as a 5xx)
are :class:`~aragora.agent_runner.providers.http_retry.HttpProvider`'s.
"""

from __future__ import annotations

from typing import Any

import httpx
import msgspec

from aragora.agent_runner.providers.base import ChatMessage, Completion, ProviderError
from aragora.agent_runner.providers.http_retry import TEMPERATURE, HttpProvider, StreamState

__all__ = ["ANTHROPIC_VERSION", "DEFAULT_ANTHROPIC_BASE_URL", "AnthropicProvider"]

DEFAULT_ANTHROPIC_BASE_URL = "https://api.anthropic.com"
ANTHROPIC_VERSION = "2023-06-01"
MAX_TOKENS = 2048


class _Block(msgspec.Struct):
    type: str = ""
    text: str = ""


class _Usage(msgspec.Struct):
    input_tokens: int = 0
    output_tokens: int = 0


class _Message(msgspec.Struct):
    content: list[_Block]
    model: str = ""
    usage: _Usage | None = None


class _StreamMessage(msgspec.Struct):
    model: str = ""
    usage: _Usage | None = None


class _StreamDelta(msgspec.Struct):
    type: str = ""
    text: str = ""


class _StreamEvent(msgspec.Struct):
    """One Messages streaming event (``message_start``, ``content_block_delta``, ...)."""

    type: str = ""
    message: _StreamMessage | None = None
    delta: _StreamDelta | None = None
    usage: _Usage | None = None


def messages_url(base_url: str) -> str:
    """``{base}/v1/messages``, whether or not ``base_url`` already ends in ``/v1``."""
    base = base_url.rstrip("/")
    return base + ("/messages" if base.endswith("/v1") else "/v1/messages")


class AnthropicProvider(HttpProvider):
    """One Claude model over the Messages API."""

    kind: str = "anthropic"

    @staticmethod
    def endpoint(base_url: str, model: str) -> str:
        return messages_url(base_url)

    def _body(self, messages: list[ChatMessage]) -> object:
        system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
        body: dict[str, Any] = {
            "model": self._model,
            "max_tokens": MAX_TOKENS,
            "messages": [
                {"role": m["role"], "content": m["content"]}
                for m in messages
                if m["role"] != "system"
            ],
            "temperature": TEMPERATURE,
        }
        if system:
            body["system"] = system
        return body

    def _auth_headers(self, key: str) -> dict[str, str]:
        return {"x-api-key": key, "anthropic-version": ANTHROPIC_VERSION}

    def _stream_body(self, messages: list[ChatMessage]) -> tuple[str, object]:
        body = self._body(messages)
        assert isinstance(body, dict)
        return self._url, {**body, "stream": True}

    def _read_chunk(self, data: bytes, state: StreamState) -> str:
        event = self._decode_chunk(data, _StreamEvent)
        if event.type == "error":
            raise ProviderError("provider_error", "the provider reported an error mid-stream")
        if event.message is not None:  # message_start
            state.model = event.message.model or state.model
            if event.message.usage is not None:
                state.prompt_tokens = event.message.usage.input_tokens
        if event.usage is not None:  # message_delta: the cumulative output tokens
            state.completion_tokens = event.usage.output_tokens
        if event.type == "content_block_delta" and event.delta is not None:
            return event.delta.text if event.delta.type == "text_delta" else ""
        return ""

    def _headers(self) -> dict[str, str]:
        # anthropic-version is required even by key-less stand-in servers.
        return {"anthropic-version": ANTHROPIC_VERSION, **super()._headers()}

    def _parse(self, response: httpx.Response) -> Completion:
        message = self._decode(response, _Message)
        text = "".join(b.text for b in message.content if b.type == "text").strip()
        if not text:
            raise ProviderError("provider_error", "response has no text content")
        usage = message.usage or _Usage()
        return Completion(
            text=text,
            model=message.model or self._model,
            prompt_tokens=usage.input_tokens,
            completion_tokens=usage.output_tokens,
        )
