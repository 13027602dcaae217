"""Agent ratings as a projection of ``debate.completed`` events, and their routes.

The orchestrator computes each debate's rating changes (ELO, per domain and overall)
and records them in the event; this projection only adds the recorded deltas up, in
the same transaction as the event, so the leaderboard can be rebuilt from the stream.
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, get
from litestar.datastructures import State
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery

from aragora.contracts.messages import DebateCompleted

START = 1500.0
OVERALL = "all"

DDL = [
    """CREATE TABLE IF NOT EXISTS gw_ratings (
        domain TEXT NOT NULL,
        agent TEXT NOT NULL,
        rating REAL NOT NULL,
        games INTEGER NOT NULL,
        brier_sum REAL NOT NULL DEFAULT 0,
        brier_n INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (domain, agent))""",
    """CREATE TABLE IF NOT EXISTS gw_rating_history (
        debate_id TEXT NOT NULL,
        agent TEXT NOT NULL,
        domain TEXT NOT NULL,
        before REAL NOT NULL,
        after REAL NOT NULL,
        at TEXT NOT NULL,
        PRIMARY KEY (debate_id, agent, domain))""",
]


def project(cur: Any, event: DebateCompleted) -> None:
    """Add one debate's rating changes (inside the read model's transaction)."""
    for change in event.ratings:
        delta = change.after - change.before
        brier, counted = (change.brier, 1) if change.brier is not None else (0.0, 0)
        cur.execute(
            "INSERT INTO gw_ratings (domain, agent, rating, games, brier_sum, brier_n) "
            "VALUES (?, ?, ?, 1, ?, ?) ON CONFLICT (domain, agent) DO UPDATE SET "
            "rating = gw_ratings.rating + ?, games = gw_ratings.games + 1, "
            "brier_sum = gw_ratings.brier_sum + ?, brier_n = gw_ratings.brier_n + ?",
            (change.domain, change.agent, START + delta, brier, counted, delta, brier, counted),
        )
        cur.execute(
            "INSERT INTO gw_rating_history (debate_id, agent, domain, before, after, at) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (
                event.debate_id,
                change.agent,
                change.domain,
                change.before,
                change.after,
                event.occurred_at.isoformat(),
            ),
        )


def _row(r: Any) -> dict[str, Any]:
    return {
        "agent": r[0],
        "rating": round(float(r[1]), 2),
        "games": int(r[2]),
        "calibration_brier": round(float(r[3]) / r[4], 4) if r[4] else None,
    }


class AgentController(Controller):
    path = "/api/agents"
    tags = ["agents"]

    @get("/leaderboard")
    async def leaderboard(self, state: State, domain: FromQuery[str] = OVERALL) -> dict[str, Any]:
        readmodel = state.deps.readmodel

        def work(cur: Any) -> list[dict[str, Any]]:
            cur.execute(
                "SELECT agent, rating, games, brier_sum, brier_n FROM gw_ratings "
                "WHERE domain = ? ORDER BY rating DESC, agent",
                (domain,),
            )
            return [_row(r) for r in cur.fetchall()]

        rows = await readmodel.run(work)
        return {"domain": domain, "agents": rows}

    @get("/{name:str}")
    async def agent(self, name: FromPath[str], state: State) -> dict[str, Any]:
        deps = state.deps
        spec = deps.registry.get(name)

        def work(cur: Any) -> tuple[list[Any], list[Any]]:
            cur.execute(
                "SELECT domain, rating, games, brier_sum, brier_n FROM gw_ratings "
                "WHERE agent = ? ORDER BY domain",
                (name,),
            )
            ratings = cur.fetchall()
            cur.execute(
                "SELECT debate_id, domain, before, after, at FROM gw_rating_history "
                "WHERE agent = ? ORDER BY at, debate_id, domain",
                (name,),
            )
            return ratings, cur.fetchall()

        ratings, history = await deps.readmodel.run(work)
        if spec is None and not ratings:
            raise NotFoundException(f"no agent {name}")
        return {
            "name": name,
            "provider": spec.provider if spec else None,
            "model": spec.model if spec else None,
            "registered": spec is not None,
            "ratings": {
                r[0]: {k: v for k, v in _row((name, *r[1:])).items() if k != "agent"}
                for r in ratings
            },
            "history": [
                {"debate_id": h[0], "domain": h[1], "before": h[2], "after": h[3], "at": h[4]}
                for h in history
            ],
        }
