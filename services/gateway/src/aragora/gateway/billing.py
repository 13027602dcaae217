"""``GET /api/billing/usage``: tokens and cost of the debates' turns, from the read model.

Costs are what the agent-runner computed when each turn ran (per-agent price or the
built-in table, :mod:`aragora.runtime.pricing`); ``unpriced_models`` lists the models that
had no price, whose turns count as 0.0 USD. ``by_user`` groups by each debate's requester
(``local`` for debates recorded before accounts). Any valid token may read it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from litestar import get
from litestar.datastructures import State
from litestar.params import FromQuery, QueryParameter

from aragora.gateway import usage
from aragora.gateway.debates import deps_of
from aragora.gateway.requests import invalid


def _instant(name: str, value: str | None) -> datetime | None:
    """An ISO-8601 date or date-time query parameter (no zone: UTC)."""
    if value is None or value == "":
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise invalid(name, "must be an ISO-8601 date or date-time") from None
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at


@get("/api/billing/usage")
async def billing_usage(
    state: State,
    since: FromQuery[str | None] = None,
    until: FromQuery[str | None] = None,
    debate_id: FromQuery[str | None] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=500)] = 10,
) -> dict[str, Any]:
    """Totals and breakdowns by debate (costliest ``limit``), agent, model and user."""
    start, end = _instant("since", since), _instant("until", until)
    if start is not None and end is not None and end <= start:
        raise invalid("until", "must be after since")
    query = usage.Query(since=start, until=end, debate_id=debate_id or None, limit=limit)
    return await deps_of(state).readmodel.run(lambda cur: usage.report(cur, query))
