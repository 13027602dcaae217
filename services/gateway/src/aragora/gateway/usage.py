"""Usage read model: one row per completed turn, with its tokens and cost.

Fed by ``debate.turn_completed`` inside the read model's transaction (part of the
``debates`` projection, so ``aragora projections rebuild debates`` rebuilds it too), keyed
by ``turn_id``: a redelivered event adds nothing. ``priced`` records whether the model had
a price (per-agent override or the built-in table, :mod:`aragora.runtime.pricing`) when
the row was projected, so a report can say which models it counted as free.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aragora.contracts.messages import TurnCompleted
from aragora.runtime import pricing
from aragora.runtime.agents import AgentRegistry, load_registry
from aragora.runtime.settings import Settings, SettingsError

LOCAL_USER = "local"  # debates recorded without a requester (before accounts existed)

DDL = [
    """CREATE TABLE IF NOT EXISTS gw_usage (
        turn_id TEXT PRIMARY KEY,
        debate_id TEXT NOT NULL,
        agent TEXT NOT NULL,
        served_by TEXT NOT NULL DEFAULT '',
        provider TEXT NOT NULL DEFAULT '',
        model TEXT NOT NULL DEFAULT '',
        prompt_tokens BIGINT NOT NULL DEFAULT 0,
        completion_tokens BIGINT NOT NULL DEFAULT 0,
        cost_usd DOUBLE PRECISION NOT NULL DEFAULT 0,
        latency_ms BIGINT NOT NULL DEFAULT 0,
        occurred_at TEXT NOT NULL,
        priced INTEGER NOT NULL DEFAULT 0)""",
    "CREATE INDEX IF NOT EXISTS gw_usage_debate ON gw_usage (debate_id)",
    "CREATE INDEX IF NOT EXISTS gw_usage_time ON gw_usage (occurred_at)",
]

Priced = Callable[[str, str], bool]  # (agent that answered, model) -> has a price
Row = tuple[str, str, str, str, str, str, int, int, float, int, str, int]


def pricer(registry: AgentRegistry | None) -> Priced:
    def priced(agent: str, model: str) -> bool:
        spec = registry.get(agent) if registry is not None else None
        return pricing.known_price(spec, model)

    return priced


def pricer_for(settings: Settings) -> Priced:
    """A pricer over the configured agents (the built-in table alone if they cannot load)."""
    try:
        return pricer(load_registry(settings))
    except (SettingsError, OSError):
        return pricer(None)


def timestamp(at: datetime) -> str:
    """A fixed-width UTC timestamp, so stored times compare as text."""
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def row(event: TurnCompleted, priced: Priced) -> Row:
    answered_by = event.served_by or event.agent
    known = event.cost_usd > 0 or priced(answered_by, event.model)
    return (
        event.turn_id,
        event.debate_id,
        event.agent,
        event.served_by,
        event.provider,
        event.model,
        event.prompt_tokens,
        event.completion_tokens,
        event.cost_usd,
        event.latency_ms,
        timestamp(event.occurred_at),
        int(known),
    )


INSERT = (
    "INSERT INTO gw_usage (turn_id, debate_id, agent, served_by, provider, model, "
    "prompt_tokens, completion_tokens, cost_usd, latency_ms, occurred_at, priced) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (turn_id) DO NOTHING"
)


def project(cur: Any, event: TurnCompleted, priced: Priced) -> None:
    """Record one completed turn (inside the read model's transaction; idempotent)."""
    cur.execute(INSERT, row(event, priced))


def store(cur: Any, rows: list[Row]) -> None:
    if rows:
        cur.executemany(INSERT, rows)


# --- the report (GET /api/billing/usage) ---------------------------------------------------


@dataclass(frozen=True)
class Query:
    since: datetime | None = None
    until: datetime | None = None
    debate_id: str | None = None
    limit: int = 10  # debates listed in by_debate, costliest first


_SUMS = (
    "count(*), coalesce(sum(u.prompt_tokens), 0), coalesce(sum(u.completion_tokens), 0), "
    "coalesce(sum(u.cost_usd), 0)"
)


def _where(q: Query) -> tuple[str, tuple[Any, ...]]:
    clauses: list[str] = []
    params: list[Any] = []
    if q.since is not None:
        clauses.append("u.occurred_at >= ?")
        params.append(timestamp(q.since))
    if q.until is not None:
        clauses.append("u.occurred_at < ?")
        params.append(timestamp(q.until))
    if q.debate_id is not None:
        clauses.append("u.debate_id = ?")
        params.append(q.debate_id)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), tuple(params)


def _sums(r: Any, offset: int = 0) -> dict[str, Any]:
    prompt, completion = int(r[offset + 1]), int(r[offset + 2])
    return {
        "turns": int(r[offset]),
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "cost_usd": round(float(r[offset + 3]), 6),
    }


def report(cur: Any, q: Query) -> dict[str, Any]:
    """Totals and breakdowns of the turns in the period (runs in the read model's thread)."""
    where, params = _where(q)
    cur.execute(f"SELECT {_SUMS} FROM gw_usage u{where}", params)
    totals = _sums(cur.fetchone())
    cur.execute(
        f"SELECT u.debate_id, d.topic, d.status, d.created_at, {_SUMS} "
        f"FROM gw_usage u LEFT JOIN gw_debates d ON d.id = u.debate_id{where} "
        "GROUP BY u.debate_id, d.topic, d.status, d.created_at "
        "ORDER BY coalesce(sum(u.cost_usd), 0) DESC, count(*) DESC, u.debate_id LIMIT ?",
        (*params, q.limit),
    )
    by_debate = [
        {"debate_id": r[0], "topic": r[1], "status": r[2], "created_at": r[3], **_sums(r, 4)}
        for r in cur.fetchall()
    ]
    cur.execute(
        f"SELECT u.agent, {_SUMS}, "
        "coalesce(sum(CASE WHEN u.served_by <> '' THEN 1 ELSE 0 END), 0) "
        f"FROM gw_usage u{where} GROUP BY u.agent ORDER BY u.agent",
        params,
    )
    by_agent = [{"agent": r[0], **_sums(r, 1), "fallback_turns": int(r[5])} for r in cur.fetchall()]
    cur.execute(
        f"SELECT u.provider, u.model, {_SUMS}, min(u.priced) "
        f"FROM gw_usage u{where} GROUP BY u.provider, u.model ORDER BY u.provider, u.model",
        params,
    )
    by_model = [
        {"provider": r[0], "model": r[1], **_sums(r, 2), "priced": bool(r[6])}
        for r in cur.fetchall()
    ]
    cur.execute(
        f"SELECT d.view, {_SUMS} FROM gw_usage u JOIN gw_debates d ON d.id = u.debate_id"
        f"{where} GROUP BY d.id, d.view",
        params,
    )
    users: dict[str, dict[str, Any]] = {}
    for row in cur.fetchall():
        user = json.loads(row[0]).get("requested_by") or LOCAL_USER
        sums = _sums(row, 1)
        mine = users.setdefault(user, {k: 0 for k in sums})
        for k, v in sums.items():
            mine[k] = round(mine[k] + v, 6) if isinstance(v, float) else mine[k] + v
    by_user = [{"user": u, **t} for u, t in sorted(users.items())]
    return {
        "period": {
            "since": q.since.isoformat() if q.since else None,
            "until": q.until.isoformat() if q.until else None,
        },
        "debate_id": q.debate_id,
        "currency": "USD",
        "totals": totals,
        "by_debate": by_debate,
        "by_agent": by_agent,
        "by_model": by_model,
        # By the debate's requester (its account's email, or "service"); debates from
        # before accounts, or from an unauthenticated test setup, count as "local".
        "by_user": by_user,
        "unpriced_models": [
            {"provider": m["provider"], "model": m["model"], "turns": m["turns"]}
            for m in by_model
            if not m["priced"]
        ],
    }
