"""Every HTTP route of the gateway, for every kind of caller: 401, 403 or let through.

The table below is written by hand: a route added to the app without a row here fails the
test, so nobody adds an endpoint without deciding who may call it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from litestar.exceptions import WebSocketDisconnect
from litestar.routes import HTTPRoute

from aragora.gateway.accounts import rank
from aragora.runtime.natsserver import EmbeddedNats
from tests.conftest import TEST_TOKEN, make_settings
from tests.integration.gateway_harness import open_gateway

PUBLIC, VIEWER, MEMBER, ADMIN = None, "viewer", "member", "admin"
EXPECTED: dict[tuple[str, str], str | None] = {
    ("GET", "/api/health"): PUBLIC,
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/readyz"): PUBLIC,
    ("POST", "/api/auth/register"): PUBLIC,
    ("POST", "/api/auth/login"): PUBLIC,
    ("POST", "/api/auth/refresh"): PUBLIC,
    ("GET", "/api/receipts/public-key"): PUBLIC,
    ("GET", "/api/openapi.json"): PUBLIC,
    # The web UI's page shells and assets: no data (the page calls the API with a token).
    ("GET", "/ui"): PUBLIC,
    ("GET", "/ui/history"): PUBLIC,
    ("GET", "/ui/leaderboard"): PUBLIC,
    ("GET", "/ui/debates/{debate_id:str}"): PUBLIC,
    ("GET", "/ui/static/{name:str}"): PUBLIC,
    ("GET", "/admin"): PUBLIC,
    ("GET", "/portal"): PUBLIC,
    ("POST", "/api/auth/password"): PUBLIC,
    ("GET", "/api/auth/me"): VIEWER,
    ("POST", "/api/auth/logout"): VIEWER,
    ("GET", "/api/auth/api-key"): VIEWER,
    ("POST", "/api/auth/api-key"): VIEWER,
    ("DELETE", "/api/auth/api-key"): VIEWER,
    ("GET", "/api/debates"): VIEWER,
    ("POST", "/api/debates"): MEMBER,
    ("GET", "/api/debates/{debate_id:str}"): VIEWER,
    ("GET", "/api/debates/{debate_id:str}/events"): VIEWER,
    ("GET", "/api/debates/{debate_id:str}/receipt"): VIEWER,
    ("POST", "/api/debates/{debate_id:str}/cancel"): MEMBER,
    ("GET", "/api/agents"): VIEWER,
    ("GET", "/api/agents/leaderboard"): VIEWER,
    ("GET", "/api/agents/{name:str}"): VIEWER,
    ("GET", "/api/agents/circuit-breakers"): VIEWER,
    ("POST", "/api/agents/{name:str}/reset-circuit"): ADMIN,
    ("GET", "/api/asyncapi.json"): VIEWER,
    ("GET", "/api/schemas"): VIEWER,
    ("GET", "/api/metrics"): VIEWER,
    ("GET", "/metrics"): VIEWER,
    ("GET", "/api/rate-limits/config"): VIEWER,
    ("GET", "/api/rate-limits/status"): VIEWER,
    ("GET", "/api/billing/usage"): VIEWER,
    ("GET", "/api/ws/stats"): VIEWER,
    ("GET", "/api/system/circuit-breakers"): ADMIN,
    ("GET", "/api/system/rate-limits"): ADMIN,
    ("GET", "/api/system/errors"): ADMIN,
    ("POST", "/api/admin/cleanup-caches"): ADMIN,
    ("POST", "/api/debug/agent-test"): ADMIN,
    ("POST", "/api/debug/connectivity-check"): ADMIN,
    ("POST", "/api/debug/memory-dump"): ADMIN,
    # Incident response (docs/security.md): admin only, revoked-tokens included.
    ("POST", "/api/admin/revoke-token"): ADMIN,
    ("GET", "/api/admin/revoked-tokens"): ADMIN,
    ("POST", "/api/admin/revoke-all-tokens"): ADMIN,
    ("POST", "/api/admin/rotate-keys"): ADMIN,
    ("POST", "/api/admin/force-password-reset"): ADMIN,
    ("GET", "/api/admin/audit-log"): ADMIN,
    ("GET", "/api/admin/audit-log/verify"): ADMIN,
}
# Routes that would end the other callers' sessions get a body aimed at nobody: this test
# is about who may call them (tests/integration/test_revocation.py covers what they do).
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/api/admin/revoke-all-tokens"): {"email": "nobody@example.org"},
    ("POST", "/api/admin/force-password-reset"): {"email": "nobody@example.org"},
    ("POST", "/api/admin/rotate-keys"): {"signing_key": False, "email": "nobody@example.org"},
}
CALLERS = ["anonymous", "viewer", "member", "admin", "owner", "service"]
PASSWORD = "correct horse battery"


def _routes(app: Any) -> list[tuple[str, str]]:
    found = []
    for route in app.routes:
        if not isinstance(route, HTTPRoute) or route.path.startswith("/api/docs"):
            continue  # the docs UI is public and has no data (see docs/security.md)
        for method in sorted(route.methods - {"OPTIONS", "HEAD"}):
            found.append((method, route.path))
    return found


async def test_every_route_answers_each_caller_as_the_table_says(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, nats_url=nats_server.url)
    async with open_gateway(settings) as gw:
        api = gw.client
        routes = _routes(api.app)
        assert sorted(routes) == sorted(EXPECTED), "a route without a row in EXPECTED"
        tokens: dict[str, str | None] = {"anonymous": None, "service": TEST_TOKEN}
        for role in ("viewer", "member", "admin", "owner"):
            email = f"{role}@example.org"
            made = await api.post(
                "/api/auth/register", json={"email": email, "password": PASSWORD, "role": role}
            )
            assert made.status_code == 201, made.text
            login = await api.post("/api/auth/login", json={"email": email, "password": PASSWORD})
            tokens[role] = login.json()["access_token"]
        # Logging out revokes the caller's token: that row runs last.
        ordered = sorted(routes, key=lambda r: r == ("POST", "/api/auth/logout"))
        seen: list[str] = []
        for method, template in ordered:
            path = re.sub(r"\{[^}]+\}", "no-such-thing", template)
            needed = EXPECTED[(method, template)]
            for caller in CALLERS:
                token = tokens[caller]
                headers = {"Authorization": f"Bearer {token}"} if token else {}
                # (AsyncTestClient sends the service token by default: override it)
                headers.setdefault("Authorization", "")
                body = (
                    {"json": BODIES.get((method, template), {})}
                    if method in ("POST", "DELETE")
                    else {}
                )
                response = await api.request(method, path, headers=headers, **body)
                status = response.status_code
                row = f"{method} {template} as {caller}: {status}"
                seen.append(row)
                if needed is None:
                    assert status not in (401, 403), row
                elif caller == "anonymous":
                    assert status == 401, row
                    assert response.json()["code"] == "unauthorized", row
                elif rank("owner" if caller == "service" else caller) < rank(needed):
                    assert status == 403, row
                    assert response.json()["code"] == "forbidden", row
                else:
                    assert status not in (401, 403), row
    assert len(seen) == len(EXPECTED) * len(CALLERS)


async def test_websocket_streams_need_a_token(nats_server: EmbeddedNats, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, nats_url=nats_server.url)
    async with open_gateway(settings) as gw:
        del gw.client.headers["Authorization"]
        socket = await gw.client.websocket_connect("/ws/debates/some-debate")
        with pytest.raises(WebSocketDisconnect) as refused, socket as ws:
            ws.receive_text()
        assert refused.value.code == 4401
        query = f"/ws/debates/some-debate?token={TEST_TOKEN}"  # browsers: token in the query
        socket = await gw.client.websocket_connect(query)
        with pytest.raises(WebSocketDisconnect) as accepted, socket as ws:
            ws.receive_text()
        assert accepted.value.code == 4404  # let in, then told the debate does not exist
