"""What every LLM provider adapter returns, raises and implements."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Literal, Protocol, TypedDict

import msgspec

from aragora.contracts.messages import Critique, FailureReason, RunTurn, Vote


class ChatMessage(TypedDict):
    """One OpenAI-style chat message."""

    role: Literal["system", "user", "assistant"]
    content: str


class Completion(msgspec.Struct, frozen=True, kw_only=True):
    """One raw model answer (one provider call), before any parsing."""

    text: str
    model: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0


# ``complete(messages, deadline)``: one provider call. ``deadline`` is the turn's end on the
# event loop's clock (``loop.time()``); a transport retry that cannot finish by then gives up.
CompleteFn = Callable[[list[ChatMessage], float], Awaitable[Completion]]

# ``on_delta(text)``: a piece of the answer as the model writes it (streaming providers).
# The pieces of one call concatenate to its raw text; only a turn's first call streams.
DeltaFn = Callable[[str], Awaitable[None]]


class TurnOutput(msgspec.Struct, frozen=True, kw_only=True):
    """The result of one turn, as parsed from the model's answer(s), and what it cost.

    ``structured`` is False when the answer could not be parsed even after one re-ask:
    then ``content`` is the last raw text, ``parse_error`` says why, ``vote`` is None and
    ``critiques`` is empty. ``rejected_answers`` holds the raw answers that were re-asked.
    """

    content: str
    vote: Vote | None = None
    critiques: list[Critique] = []
    continue_debate: bool | None = None
    structured: bool = True
    parse_error: str = ""
    rejected_answers: list[str] = []
    model: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0


class ProviderError(Exception):
    """A turn the provider could not complete.

    ``reason`` is a contracts ``FailureReason`` (``timeout``, ``provider_error``,
    ``rejected``, ...); ``detail`` is safe to show to users and to log: it never contains
    API keys or auth headers. ``retryable`` says whether the condition looked transient.
    """

    def __init__(self, reason: FailureReason, detail: str, *, retryable: bool = False) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason: FailureReason = reason
        self.detail = detail
        self.retryable = retryable

    def __repr__(self) -> str:
        return (
            f"ProviderError(reason={self.reason!r}, detail={self.detail!r}, "
            f"retryable={self.retryable!r})"
        )


class LLMProvider(Protocol):
    """One agent's model. The caller bounds ``run_turn`` with the turn's deadline."""

    kind: str  # "demo" | "openai-compatible" | "anthropic" | "gemini"

    async def run_turn(
        self,
        command: RunTurn,
        *,
        deadline: float | None = None,
        on_delta: DeltaFn | None = None,
    ) -> TurnOutput:
        """Produce this agent's contribution to one turn, or raise :class:`ProviderError`.

        ``deadline`` (event-loop clock) is when the caller will cancel the turn; None means
        ``command.timeout_seconds`` from now. With ``on_delta``, a provider that can stream
        reports the answer's pieces as they arrive; the output is the same either way.
        """
        ...

    async def aclose(self) -> None:
        """Release what the provider owns (not the shared HTTP client)."""
        ...
