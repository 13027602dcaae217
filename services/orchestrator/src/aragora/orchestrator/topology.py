"""Who critiques whom: the critique topology of a round (pure)."""

from __future__ import annotations

from collections.abc import Sequence

from aragora.contracts.values import Topology


def critique_targets(
    topology: Topology, agents: Sequence[str], round_: int
) -> dict[str, list[str]]:
    """Map each critic to the peers it reviews this round (agents holding a position).

    * ``all-to-all``: everyone reviews everyone else;
    * ``ring``: each agent reviews the next one (the last reviews the first);
    * ``round-robin``: like ring, but the offset moves by one every round so that, over
      the rounds, everyone meets everyone;
    * ``star``: the first agent (the hub) reviews all others, and they review the hub.
    """
    n = len(agents)
    if n < 2:
        return {}
    if topology == "all-to-all":
        return {a: [b for b in agents if b != a] for a in agents}
    if topology == "ring":
        return {a: [agents[(i + 1) % n]] for i, a in enumerate(agents)}
    if topology == "round-robin":
        offset = (round_ - 1) % (n - 1) + 1  # 1 .. n-1, never yourself
        return {a: [agents[(i + offset) % n]] for i, a in enumerate(agents)}
    hub, spokes = agents[0], list(agents[1:])
    return {hub: spokes, **{s: [hub] for s in spokes}}
