"""Deterministic completions in OpenAI's Chat Completions shapes (plain JSON and SSE)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from typing import Any

import msgspec

DEFAULT_MODEL = "fake-model"
VOTE_CONFIDENCE = 0.8
CRITIQUE_SEVERITY = 5
CONTINUE = True  # structured answers asked for CONTINUE/STOP say CONTINUE
JSON_MARKER = "Respond with JSON:"
_CANDIDATES = re.compile(r"^\s*Candidates:\s*(\[.*\])\s*$", re.MULTILINE)
_TARGETS = re.compile(r"^\s*Targets:\s*(\[.*\])\s*$", re.MULTILINE)
_TOPIC = re.compile(r"^Topic:\s*(.*)$", re.MULTILINE)
_SCHEMA = re.compile(r"^\s*" + re.escape(JSON_MARKER) + r"\s*(.*)$", re.MULTILINE)


class ChatRequest(msgspec.Struct, kw_only=True):
    """The part of a Chat Completions request the fake reads; other fields are ignored."""

    messages: list[dict[str, Any]]
    model: str = DEFAULT_MODEL
    stream: bool = False
    stream_options: dict[str, Any] | None = None


def _text(message: dict[str, Any]) -> str:
    """A message's text, whether ``content`` is a string or a list of content parts."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            str(p.get("text", "")) for p in content if isinstance(p, dict) and "text" in p
        )
    return ""


def _last(messages: list[dict[str, Any]], role: str) -> str:
    return next((_text(m) for m in reversed(messages) if m.get("role") == role), "")


def _names(label: re.Pattern[str], text: str) -> list[str]:
    for match in label.finditer(text):
        try:
            names = json.loads(match.group(1))
        except json.JSONDecodeError:
            continue
        if isinstance(names, list) and names and all(isinstance(n, str) for n in names):
            return names
    return []


def candidates_in(messages: list[dict[str, Any]]) -> list[str]:
    """Names on a ``Candidates: [...]`` line of the last user or system message."""
    for text in (_last(messages, "user"), _last(messages, "system")):
        if names := _names(_CANDIDATES, text):
            return names
    return []


def json_request(messages: list[dict[str, Any]]) -> tuple[str, str] | None:
    """``(schema, prompt)`` of the latest user message with a ``Respond with JSON:`` line.

    Looking back past the last message lets a corrective re-ask ("Reply with only the JSON
    object.") get the shape the original prompt asked for.
    """
    for message in reversed(messages):
        if message.get("role") != "user":
            continue
        text = _text(message)
        if found := _SCHEMA.search(text):
            return found.group(1), text
    return None


def _snippet(text: str, words: int = 12) -> str:
    return " ".join(" ".join(text.split()).split(" ")[:words])


def structured_reply(schema: str, prompt: str) -> dict[str, Any]:
    """A valid answer of the shape ``schema`` describes (critique, revision or ballot)."""
    if '"critiques"' in schema:
        return {
            "critiques": [
                {
                    "target": target,
                    "issues": [f"The fake provider finds {target}'s argument thin."],
                    "suggestions": ["Add evidence for the central claim."],
                    "severity": CRITIQUE_SEVERITY,
                }
                for target in _names(_TARGETS, prompt)
            ]
        }
    if '"revised"' in schema:
        topic = next((m.group(1) for m in _TOPIC.finditer(prompt)), "")
        reply: dict[str, Any] = {
            "revised": f'Fake revised answer about "{_snippet(topic)}". It is deterministic.'
        }
    else:
        candidates = _names(_CANDIDATES, prompt)
        reply = {
            "choice": candidates[0] if candidates else "",
            "confidence": VOTE_CONFIDENCE,
            "reasoning": "The fake provider always picks the first candidate.",
            "conditions": "",
        }
    if '"continue"' in schema:
        reply["continue"] = CONTINUE
    return reply


def reply_text(messages: list[dict[str, Any]], *, unparsable: bool = False) -> str:
    """The assistant's answer.

    A JSON object of the requested shape when a user message has a ``Respond with JSON:``
    line (prose instead when ``unparsable``); else a JSON ballot when a ``Candidates:``
    line is present; else an echoing sentence.
    """
    request = json_request(messages)
    if request is not None and unparsable:
        return "Fake prose answer: I would rather explain my view than follow the format."
    if request is not None:
        return json.dumps(structured_reply(*request))
    candidates = candidates_in(messages)
    if candidates:
        return json.dumps(
            {
                "choice": candidates[0],
                "confidence": VOTE_CONFIDENCE,
                "reasoning": "The fake provider always picks the first candidate.",
            }
        )
    prompt = " ".join((_last(messages, "user") or _last(messages, "system")).split())
    return f'Fake answer about "{_snippet(prompt)}". It is deterministic and short by design.'


def estimate_tokens(text: str) -> int:
    """A rough token count (about four characters per token), at least one."""
    return max(1, len(text) // 4)


def completion(
    request: ChatRequest, completion_id: str, *, unparsable: bool = False
) -> dict[str, Any]:
    """A complete non-streaming ``chat.completion`` object."""
    content = reply_text(request.messages, unparsable=unparsable)
    prompt_tokens = estimate_tokens("".join(_text(m) for m in request.messages))
    completion_tokens = estimate_tokens(content)
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def _pieces(content: str, size: int = 3) -> Iterator[str]:
    """The content split into runs of a few words, whitespace kept, for delta chunks."""
    words = re.findall(r"\S+\s*", content)
    for i in range(0, len(words), size):
        yield "".join(words[i : i + size])


def sse_events(
    request: ChatRequest, completion_id: str, *, unparsable: bool = False
) -> Iterator[bytes]:
    """``chat.completion.chunk`` SSE events for the reply, ending with ``data: [DONE]``."""
    full = completion(request, completion_id, unparsable=unparsable)
    base = {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": full["created"],
        "model": request.model,
    }

    def event(delta: dict[str, Any], finish: str | None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        chunk = {**base, "choices": [choice]}
        return b"data: " + json.dumps(chunk, separators=(",", ":")).encode() + b"\n\n"

    yield event({"role": "assistant", "content": ""}, None)
    for piece in _pieces(full["choices"][0]["message"]["content"]):
        yield event({"content": piece}, None)
    yield event({}, "stop")
    if request.stream_options and request.stream_options.get("include_usage"):
        usage_chunk = {**base, "choices": [], "usage": full["usage"]}
        yield b"data: " + json.dumps(usage_chunk, separators=(",", ":")).encode() + b"\n\n"
    yield b"data: [DONE]\n\n"


def error_body(message: str, err_type: str, code: str | None = None) -> bytes:
    """OpenAI's error JSON."""
    return json.dumps(
        {"error": {"message": message, "type": err_type, "param": None, "code": code}}
    ).encode()
