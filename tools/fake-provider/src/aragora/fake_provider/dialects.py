"""Anthropic Messages and Gemini ``generateContent`` shapes over the same content rules.

Requests are turned into OpenAI-style ``messages`` so that :func:`content.reply_text`
answers every API identically; answers and errors are shaped like each API's own.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import msgspec

from aragora.fake_provider.content import _pieces, estimate_tokens, reply_text

ANTHROPIC_MODEL = "claude-fake"
GEMINI_MODEL = "gemini-fake"


def _sse(data: Any, event: str | None = None) -> bytes:
    head = f"event: {event}\n".encode() if event else b""
    return head + b"data: " + json.dumps(data, separators=(",", ":")).encode() + b"\n\n"


# --- Anthropic Messages ---------------------------------------------------------------------


class AnthropicRequest(msgspec.Struct, kw_only=True):
    """The part of a Messages request the fake reads."""

    messages: list[dict[str, Any]]
    max_tokens: int
    model: str = ANTHROPIC_MODEL
    system: str | list[dict[str, Any]] | None = None
    stream: bool = False


def anthropic_chat(request: AnthropicRequest) -> list[dict[str, Any]]:
    """The request as OpenAI-style messages (``system`` first)."""
    system = request.system
    if isinstance(system, list):
        system = "\n".join(str(b.get("text", "")) for b in system if isinstance(b, dict))
    head = [{"role": "system", "content": system}] if system else []
    return [*head, *request.messages]


def _anthropic_usage(messages: list[dict[str, Any]], text: str) -> tuple[int, int]:
    prompt = "".join(
        m["content"] if isinstance(m.get("content"), str) else json.dumps(m.get("content"))
        for m in messages
    )
    return estimate_tokens(prompt), estimate_tokens(text)


def anthropic_message(
    request: AnthropicRequest, message_id: str, *, unparsable: bool = False
) -> dict[str, Any]:
    """A complete non-streaming ``message`` object."""
    messages = anthropic_chat(request)
    text = reply_text(messages, unparsable=unparsable)
    input_tokens, output_tokens = _anthropic_usage(messages, text)
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": request.model,
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
    }


def anthropic_events(
    request: AnthropicRequest, message_id: str, *, unparsable: bool = False
) -> Iterator[bytes]:
    """The Messages streaming events: ``message_start`` … ``message_stop``."""
    full = anthropic_message(request, message_id, unparsable=unparsable)
    usage = full["usage"]
    start = {**full, "content": [], "stop_reason": None}
    start["usage"] = {"input_tokens": usage["input_tokens"], "output_tokens": 1}
    yield _sse({"type": "message_start", "message": start}, "message_start")
    text_block = {"type": "text", "text": ""}
    block = {"type": "content_block_start", "index": 0, "content_block": text_block}
    yield _sse(block, "content_block_start")
    yield _sse({"type": "ping"}, "ping")
    for piece in _pieces(full["content"][0]["text"]):
        text_delta = {"type": "text_delta", "text": piece}
        delta = {"type": "content_block_delta", "index": 0, "delta": text_delta}
        yield _sse(delta, "content_block_delta")
    yield _sse({"type": "content_block_stop", "index": 0}, "content_block_stop")
    end = {
        "type": "message_delta",
        "delta": {"stop_reason": "end_turn", "stop_sequence": None},
        "usage": {"output_tokens": usage["output_tokens"]},
    }
    yield _sse(end, "message_delta")
    yield _sse({"type": "message_stop"}, "message_stop")


def anthropic_error(message: str, err_type: str) -> bytes:
    """Anthropic's error JSON."""
    return json.dumps({"type": "error", "error": {"type": err_type, "message": message}}).encode()


# --- Gemini generateContent -----------------------------------------------------------------


class GeminiRequest(msgspec.Struct, kw_only=True, rename="camel"):
    """The part of a ``generateContent`` request the fake reads."""

    contents: list[dict[str, Any]]
    system_instruction: dict[str, Any] | None = None


def _parts_text(content: dict[str, Any] | None) -> str:
    parts = (content or {}).get("parts") or []
    return "\n".join(str(p.get("text", "")) for p in parts if isinstance(p, dict))


def gemini_chat(request: GeminiRequest) -> list[dict[str, Any]]:
    """The request as OpenAI-style messages (role ``model`` is ``assistant``)."""
    system = _parts_text(request.system_instruction)
    messages = [{"role": "system", "content": system}] if system else []
    for content in request.contents:
        role = "assistant" if content.get("role") == "model" else "user"
        messages.append({"role": role, "content": _parts_text(content)})
    return messages


def _gemini_chunk(model: str, text: str, finish: str | None) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"parts": [{"text": text}], "role": "model"}}
    if finish:
        candidate["finishReason"] = finish
    candidate["index"] = 0
    return {"candidates": [candidate], "modelVersion": model}


def _gemini_usage(messages: list[dict[str, Any]], text: str) -> dict[str, int]:
    prompt = estimate_tokens("".join(m["content"] for m in messages))
    answer = estimate_tokens(text)
    return {
        "promptTokenCount": prompt,
        "candidatesTokenCount": answer,
        "totalTokenCount": prompt + answer,
    }


def gemini_response(
    request: GeminiRequest, model: str, *, unparsable: bool = False
) -> dict[str, Any]:
    """A complete ``GenerateContentResponse``."""
    messages = gemini_chat(request)
    text = reply_text(messages, unparsable=unparsable)
    return {
        **_gemini_chunk(model, text, "STOP"),
        "usageMetadata": _gemini_usage(messages, text),
    }


def gemini_chunks(
    request: GeminiRequest, model: str, *, unparsable: bool = False
) -> list[dict[str, Any]]:
    """``streamGenerateContent`` chunks; the last has ``finishReason`` and the usage."""
    messages = gemini_chat(request)
    text = reply_text(messages, unparsable=unparsable)
    pieces = list(_pieces(text)) or [""]
    chunks = [_gemini_chunk(model, piece, None) for piece in pieces]
    chunks[-1] = {
        **_gemini_chunk(model, pieces[-1], "STOP"),
        "usageMetadata": _gemini_usage(messages, text),
    }
    return chunks


def gemini_events(chunks: list[dict[str, Any]]) -> Iterator[bytes]:
    """The chunks as ``alt=sse`` events (``data:`` lines only, no terminator)."""
    for chunk in chunks:
        yield _sse(chunk)


GEMINI_STATUS = {
    400: "INVALID_ARGUMENT",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def gemini_error(status: int, message: str) -> bytes:
    """Google's error JSON."""
    code = GEMINI_STATUS.get(status, "UNKNOWN")
    return json.dumps({"error": {"code": status, "message": message, "status": code}}).encode()
