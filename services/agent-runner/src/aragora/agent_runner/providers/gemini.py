"""Adapter for Google's Gemini API (``POST {base}/v1beta/models/{model}:generateContent``).

System messages become ``systemInstruction``; assistant turns have role ``model``. The key
goes only in the ``x-goog-api-key`` header, never in the URL (URLs end up in errors and
logs). Retries are :class:`~aragora.agent_runner.providers.http_retry.HttpProvider`'s.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx
import msgspec

from aragora.agent_runner.providers.base import ChatMessage, Completion, ProviderError
from aragora.agent_runner.providers.http_retry import TEMPERATURE, HttpProvider, StreamState

__all__ = ["DEFAULT_GEMINI_BASE_URL", "GeminiProvider"]

DEFAULT_GEMINI_BASE_URL = "https://generativelanguage.googleapis.com"


class _Part(msgspec.Struct):
    text: str = ""


class _Content(msgspec.Struct):
    parts: list[_Part] = []


class _Candidate(msgspec.Struct, rename="camel"):
    content: _Content | None = None
    finish_reason: str = ""


class _Usage(msgspec.Struct, rename="camel"):
    prompt_token_count: int = 0
    candidates_token_count: int = 0


class _Response(msgspec.Struct, rename="camel"):
    candidates: list[_Candidate] = []
    usage_metadata: _Usage | None = None
    model_version: str = ""


def generate_url(base_url: str, model: str) -> str:
    """``{base}/v1beta/models/{model}:generateContent`` (``/v1beta`` not repeated)."""
    base = base_url.rstrip("/")
    if not base.endswith(("/v1beta", "/v1")):
        base += "/v1beta"
    return f"{base}/models/{quote(model, safe='')}:generateContent"


class GeminiProvider(HttpProvider):
    """One Gemini model over ``generateContent``."""

    kind: str = "gemini"

    @staticmethod
    def endpoint(base_url: str, model: str) -> str:
        return generate_url(base_url, model)

    def _body(self, messages: list[ChatMessage]) -> object:
        system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
        body: dict[str, Any] = {
            "contents": [
                {
                    "role": "model" if m["role"] == "assistant" else "user",
                    "parts": [{"text": m["content"]}],
                }
                for m in messages
                if m["role"] != "system"
            ],
            "generationConfig": {"temperature": TEMPERATURE},
        }
        if system:
            body["systemInstruction"] = {"parts": [{"text": system}]}
        return body

    def _auth_headers(self, key: str) -> dict[str, str]:
        return {"x-goog-api-key": key}

    def _stream_body(self, messages: list[ChatMessage]) -> tuple[str, object]:
        url = self._url.removesuffix(":generateContent") + ":streamGenerateContent?alt=sse"
        return url, self._body(messages)

    def _read_chunk(self, data: bytes, state: StreamState) -> str:
        chunk = self._decode_chunk(data, _Response)
        state.model = chunk.model_version or state.model
        if chunk.usage_metadata is not None:
            state.prompt_tokens = chunk.usage_metadata.prompt_token_count
            state.completion_tokens = chunk.usage_metadata.candidates_token_count
        content = chunk.candidates[0].content if chunk.candidates else None
        return "".join(p.text for p in content.parts) if content else ""

    def _parse(self, response: httpx.Response) -> Completion:
        answer = self._decode(response, _Response)
        if not answer.candidates:
            raise ProviderError("provider_error", "response has no candidates")
        content = answer.candidates[0].content
        text = "".join(p.text for p in content.parts).strip() if content else ""
        if not text:
            reason = answer.candidates[0].finish_reason or "unknown"
            raise ProviderError("provider_error", f"response has no text (finish: {reason})")
        usage = answer.usage_metadata or _Usage()
        return Completion(
            text=text,
            model=answer.model_version or self._model,
            prompt_tokens=usage.prompt_token_count,
            completion_tokens=usage.candidates_token_count,
        )
