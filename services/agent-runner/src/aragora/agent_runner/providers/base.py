"""What every LLM provider adapter returns, raises and implements."""

from __future__ import annotations

from typing import Protocol

import msgspec

from aragora.contracts.messages import FailureReason, RunTurn, Vote


class TurnOutput(msgspec.Struct, frozen=True, kw_only=True):
    """The result of one turn: the text, a ballot on vote turns, and what it cost."""

    content: str
    vote: Vote | None = None
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

    kind: str  # "demo" | "openai-compatible"

    async def run_turn(self, command: RunTurn) -> TurnOutput:
        """Produce this agent's contribution to one turn, or raise :class:`ProviderError`."""
        ...

    async def aclose(self) -> None:
        """Release what the provider owns (not the shared HTTP client)."""
        ...
