"""Value objects carried inside messages (version 1; evolve additively)."""

from __future__ import annotations

from typing import Literal

import msgspec

Phase = Literal["propose", "critique", "revise", "vote", "judge", "synthesis"]
Stance = Literal["affirmative", "negative", "neutral"]
Role = Literal["proposer", "critic", "synthesizer", "judge"]
ConsensusMode = Literal["majority", "supermajority", "unanimous", "judge", "any", "none"]
Topology = Literal["all-to-all", "ring", "round-robin", "star"]
JudgeSelection = Literal["random", "elo", "last"]
Preset = Literal["light", "standard", "thorough"]
Position = Literal["AGREE", "DISAGREE", "ABSTAIN", "CONDITIONAL"]
ConvergenceStatus = Literal["converged", "refining", "diverging"]
TerminalStatus = Literal[
    "consensus", "no_consensus", "failed", "timeout", "cancelled", "budget_exceeded"
]
FailureReason = Literal[
    "timeout", "provider_error", "unknown_agent", "rejected", "no_result", "unparsable", "quota"
]

PRESET_ROUNDS: dict[str, int] = {"light": 2, "standard": 3, "thorough": 6}


class Protocol(msgspec.Struct, frozen=True, kw_only=True):
    """The rules a debate runs by, fixed when it is created and stored with it."""

    rounds: int = 3
    preset: Preset | None = None
    skip_final_critique: bool = False
    topology: Topology = "all-to-all"
    consensus: ConsensusMode = "majority"
    threshold: float = 0.6
    judge_selection: JudgeSelection = "elo"
    weighted: bool = False
    early_stop: bool = True
    convergence_threshold: float = 0.85
    turn_timeout_seconds: float = 60.0
    phase_timeout_seconds: float = 0.0  # 0: a phase is bounded by its turns' deadline
    debate_timeout_seconds: float = 1800.0
    # USD the debate's turns may cost (0: no limit). Past it no further phase starts and
    # the debate ends ``budget_exceeded`` once the turns in flight have landed.
    max_cost_usd: float = 0.0


class TurnSpec(msgspec.Struct, frozen=True, kw_only=True):
    """One agent's turn within a phase; ``targets`` are the peers a critic reviews."""

    turn_id: str
    agent: str
    stance: Stance
    role: Role = "proposer"
    targets: list[str] = []


class Vote(msgspec.Struct, frozen=True, kw_only=True):
    """A ballot: ``choice`` names the agent whose final answer the voter supports.

    ``conditions`` non-empty means conditional support; ``continue_debate`` is the
    voter's CONTINUE (true) / STOP (false) answer where one was asked.
    """

    choice: str
    confidence: float
    reasoning: str = ""
    conditions: str = ""
    continue_debate: bool | None = None


class Critique(msgspec.Struct, frozen=True, kw_only=True):
    """One critic's review of one peer: issues, suggestions, severity 0-10."""

    target: str
    issues: list[str] = []
    suggestions: list[str] = []
    severity: float = 0.0


class PeerMessage(msgspec.Struct, frozen=True, kw_only=True):
    """Text another agent produced, passed to an agent as quoted data with its author."""

    agent: str
    round: int
    phase: Phase
    content: str


class Consensus(msgspec.Struct, frozen=True, kw_only=True):
    """The outcome of the vote, with who agreed and who dissented."""

    reached: bool
    agreement_ratio: float
    confidence: float
    threshold: float
    winner: str | None
    answer: str | None
    supporters: list[str]
    dissenters: list[str]
    method: str = "majority"
    valid_votes: int = 0
    quorum: int = 0


class Dissent(msgspec.Struct, frozen=True, kw_only=True):
    agent: str
    choice: str | None
    reasons: list[str]


class ConsensusProof(msgspec.Struct, frozen=True, kw_only=True):
    """What was decided and who stood where; ``checksum`` is SHA-256 over the rest."""

    claim: str | None
    winner: str | None
    positions: dict[str, Position]
    dissent: list[Dissent]
    tensions: list[str]
    agreement_ratio: float
    confidence: float
    method: str
    checksum: str


class RatingChange(msgspec.Struct, frozen=True, kw_only=True):
    """An agent's ELO before/after one debate, in one domain; ``brier`` scores its vote."""

    agent: str
    domain: str
    before: float
    after: float
    brier: float | None = None


class AgentFailure(msgspec.Struct, frozen=True, kw_only=True):
    agent: str
    turn_id: str
    round: int
    phase: Phase
    reason: FailureReason
