"""The WebSocket protocol beyond replay: first-message auth, subscribe/unsubscribe on ``/ws``,
connection limits, who may see which debate, CORS (two replicas: tests/faults)."""

from __future__ import annotations

import base64
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from litestar.exceptions import WebSocketDisconnect
from litestar.testing import AsyncTestClient, WebSocketTestSession

from aragora.contracts.subjects import COMMANDS_STREAM
from aragora.runtime.natsserver import EmbeddedNats
from tests.conftest import TEST_TOKEN, make_settings
from tests.integration.gateway_harness import Gateway, eventually, open_gateway
from tests.integration.test_gateway_streams import receive_until_closed
from tests.integration.test_readmodel import debate_events

PASSWORD = "correct horse battery"


def frames(ws: WebSocketTestSession, timeout: float = 5.0) -> tuple[list[dict[str, Any]], int]:
    """Every non-heartbeat frame until the server closes; returns (frames, close code)."""
    return receive_until_closed(ws, timeout)


def next_frame(ws: WebSocketTestSession) -> dict[str, Any]:
    while True:
        frame: dict[str, Any] = json.loads(ws.receive_text(timeout=5))
        if frame.get("type") != "stream.heartbeat":
            return frame


def close_code(ws: WebSocketTestSession) -> int:
    _, code = frames(ws)
    return code


async def anonymous(gateway: Gateway) -> AsyncTestClient[Any]:
    del gateway.client.headers["Authorization"]
    return gateway.client


# --- authentication -------------------------------------------------------------------------


async def test_first_message_auth_opens_the_stream_and_a_bad_one_closes_4401(
    gateway: Gateway,
) -> None:
    events = debate_events()
    debate_id = events[0].debate_id
    await gateway.publish(events)
    await gateway.wait_for_seq(debate_id, len(events))
    client = await anonymous(gateway)

    with await client.websocket_connect(f"/ws/debates/{debate_id}") as ws:
        ws.send_text(json.dumps({"type": "auth", "token": TEST_TOKEN}))
        hello = next_frame(ws)
        received, code = frames(ws)
    assert hello["type"] == "authenticated" and hello["user"]["role"] == "owner"
    assert [e["seq"] for e in received] == list(range(1, len(events) + 1)) and code == 1000

    with await client.websocket_connect(f"/ws/debates/{debate_id}") as ws:
        ws.send_text(json.dumps({"type": "auth", "token": "not-a-token"}))
        assert close_code(ws) == 4401
    with await client.websocket_connect("/ws") as ws:
        ws.send_text(json.dumps({"type": "subscribe", "debate_id": debate_id}))
        assert close_code(ws) == 4401  # the first message must be the credential
    wrong = await client.websocket_connect(f"/ws/debates/{debate_id}?token=wrong")
    with pytest.raises(WebSocketDisconnect) as refused, wrong:  # refused before accepting
        pass
    assert refused.value.code == 4401


async def test_no_first_message_in_time_closes_4401(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("aragora.gateway.ws.AUTH_SECONDS", 0.2)
    client = await anonymous(gateway)
    with await client.websocket_connect("/ws") as ws:
        assert close_code(ws) == 4401


# --- subscribe / unsubscribe ----------------------------------------------------------------


async def test_subscribe_replays_follows_live_and_unsubscribe_stops(gateway: Gateway) -> None:
    finished, running = debate_events(), debate_events()
    a, b = finished[0].debate_id, running[0].debate_id
    await gateway.publish([*finished, *running[:5]])
    await gateway.wait_for_seq(a, len(finished))
    await gateway.wait_for_seq(b, 5)

    with await gateway.client.websocket_connect("/ws") as ws:
        ws.send_text(json.dumps({"type": "unsubscribe", "debate_id": "*"}))
        assert next_frame(ws) == {"type": "unsubscribed", "debate_id": "*", "reason": "asked"}
        ws.send_text(json.dumps({"type": "subscribe", "debate_id": a, "since": 2}))
        assert next_frame(ws) == {"type": "subscribed", "debate_id": a, "since": 2}
        replay = [next_frame(ws) for _ in range(len(finished) - 2)]
        assert [e["seq"] for e in replay] == list(range(3, len(finished) + 1))
        assert next_frame(ws) == {"type": "unsubscribed", "debate_id": a, "reason": "debate ended"}

        ws.send_text(json.dumps({"type": "subscribe", "debate_id": b}))
        assert next_frame(ws)["type"] == "subscribed"
        assert [next_frame(ws)["seq"] for _ in range(5)] == [1, 2, 3, 4, 5]
        await gateway.publish(running[5:7])
        assert [next_frame(ws)["seq"] for _ in range(2)] == [6, 7]  # live
        ws.send_text(json.dumps({"type": "unsubscribe", "debate_id": b}))
        assert next_frame(ws) == {"type": "unsubscribed", "debate_id": b, "reason": "asked"}
        await gateway.publish(running[7:])  # no longer followed: nothing arrives
        await gateway.wait_for_seq(b, len(running))

        ws.send_text(json.dumps({"type": "ping"}))
        assert next_frame(ws) == {"type": "pong"}  # (and not one event of b before it)
        ws.send_text(json.dumps({"type": "subscribe", "debate_id": str(uuid.uuid4())}))
        assert next_frame(ws)["type"] == "subscribed"
        assert next_frame(ws)["code"] == "not_found"
        ws.send_text("not json")
        assert next_frame(ws)["code"] == "bad_request"
        ws.send_text(json.dumps({"type": "subscribe", "debate_id": a, "since": -1}))
        assert next_frame(ws)["code"] == "bad_request"


async def test_the_firehose_sends_every_debate_live_until_unsubscribed(gateway: Gateway) -> None:
    one, two = debate_events(), debate_events()
    with await gateway.client.websocket_connect("/ws") as ws:
        await gateway.publish(one[:3])
        got = [next_frame(ws) for _ in range(3)]
        assert [(e["debate_id"], e["seq"]) for e in got] == [
            (one[0].debate_id, s) for s in (1, 2, 3)
        ]
        ws.send_text(json.dumps({"type": "unsubscribe", "debate_id": "*"}))
        assert next_frame(ws)["type"] == "unsubscribed"
        await gateway.publish(two[:2])
        await gateway.wait_for_seq(two[0].debate_id, 2)
        ws.send_text(json.dumps({"type": "ping"}))
        assert next_frame(ws) == {"type": "pong"}


# --- limits -----------------------------------------------------------------------------------


async def test_connection_limits_per_address_and_per_gateway(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    settings = make_settings(
        tmp_path, nats_url=nats_server.url, ws_max_connections=3, ws_max_connections_per_ip=2
    )
    async with open_gateway(settings) as gw:
        with contextlib.ExitStack() as held:
            for _ in range(2):
                held.enter_context(await gw.client.websocket_connect("/ws"))
            with await gw.client.websocket_connect("/ws") as third:
                assert close_code(third) == 4429  # a third from the same address
        await eventually(lambda: _zero(gw), lambda n: n == 0)
        stats = (await gw.client.get("/api/ws/stats")).json()
        assert stats["refused_total"] == 1
        gw.deps.settings = replace(gw.deps.settings, ws_max_connections_per_ip=10)
        with contextlib.ExitStack() as held:
            for _ in range(3):
                held.enter_context(await gw.client.websocket_connect("/ws"))
            with await gw.client.websocket_connect("/ws") as over:
                assert close_code(over) == 1013  # the gateway's own limit


async def _zero(gw: Gateway) -> int:
    return gw.deps.hub.connections


# --- ownership ----------------------------------------------------------------------------------


@pytest.fixture
async def accounts(
    nats_server: EmbeddedNats, tmp_path: Path
) -> AsyncIterator[tuple[Gateway, dict[str, dict[str, str]]]]:
    """A gateway and three users: two members and an admin (headers by name)."""
    async with open_gateway(make_settings(tmp_path, nats_url=nats_server.url)) as gw:
        users: dict[str, dict[str, str]] = {}
        for name, role in (("ada", "member"), ("bob", "member"), ("eve", "admin")):
            email = f"{name}@example.org"
            created = await gw.client.post(
                "/api/auth/register", json={"email": email, "password": PASSWORD, "role": role}
            )
            assert created.status_code == 201, created.text
            login = await gw.client.post(
                "/api/auth/login", json={"email": email, "password": PASSWORD}
            )
            users[name] = {"Authorization": f"Bearer {login.json()['access_token']}"}
        yield gw, users


async def test_debates_belong_to_their_creator_unless_public(
    accounts: tuple[Gateway, dict[str, dict[str, str]]],
) -> None:
    gw, users = accounts
    private = debate_events(requested_by="ada@example.org")
    shared = debate_events(requested_by="ada@example.org", public=True)
    mine, theirs = private[0].debate_id, shared[0].debate_id
    await gw.publish([*private, *shared])
    await gw.wait_for_seq(mine, len(private))
    await gw.wait_for_seq(theirs, len(shared))
    api = gw.client

    async def listed(who: str) -> set[str]:
        body = (await api.get("/api/debates", headers=users[who])).json()
        return {d["id"] for d in body["debates"]}

    assert await listed("ada") == {mine, theirs}
    assert await listed("bob") == {theirs}  # only the public one
    assert await listed("eve") == {mine, theirs}  # admins see all
    for path in ("", "/events", "/receipt"):
        assert (
            await api.get(f"/api/debates/{mine}{path}", headers=users["bob"])
        ).status_code == 404
        assert (
            await api.get(f"/api/debates/{mine}{path}", headers=users["ada"])
        ).status_code == 200
        assert (
            await api.get(f"/api/debates/{mine}{path}", headers=users["eve"])
        ).status_code == 200
        assert (
            await api.get(f"/api/debates/{theirs}{path}", headers=users["bob"])
        ).status_code == 200
    refused = await api.post(f"/api/debates/{theirs}/cancel", headers=users["bob"])
    assert refused.status_code == 403  # seeing a public debate is not owning it
    assert (await api.post(f"/api/debates/{mine}/cancel", headers=users["bob"])).status_code == 404

    bob_token = users["bob"]["Authorization"].split()[1]
    owner = api.headers.pop("Authorization")  # bob's ?token= alone says who connects
    with await api.websocket_connect(f"/ws/debates/{mine}?token={bob_token}") as ws:
        assert close_code(ws) == 4404
    with await api.websocket_connect(f"/ws/debates/{theirs}?token={bob_token}") as ws:
        received, code = frames(ws)
    assert len(received) == len(shared) and code == 1000

    later_private, later_public = (
        debate_events(requested_by="ada@example.org"),
        debate_events(public=True),
    )
    with await api.websocket_connect(f"/ws?token={bob_token}") as ws:  # bob's firehose
        await gw.publish([*later_private[:2], *later_public[:2]])
        got = [next_frame(ws) for _ in range(2)]
        api.headers["Authorization"] = owner
        await gw.wait_for_seq(later_private[0].debate_id, 2)
        ws.send_text(json.dumps({"type": "ping"}))
        assert next_frame(ws) == {"type": "pong"}
    assert {e["debate_id"] for e in got} == {later_public[0].debate_id}


async def test_a_debate_created_through_the_api_records_its_owner_and_public_flag(
    accounts: tuple[Gateway, dict[str, dict[str, str]]],
) -> None:
    gw, users = accounts
    created = await gw.client.post(
        "/api/debates",
        json={"topic": "Ship on Fridays?", "agents": ["demo-1", "demo-2"], "public": True},
        headers=users["ada"],
    )
    assert created.status_code == 202, created.text
    view = (
        await gw.client.get(f"/api/debates/{created.json()['id']}", headers=users["bob"])
    ).json()
    assert (view["requested_by"], view["public"]) == ("ada@example.org", True)


async def test_start_refused_by_the_bus_is_503_and_leaves_nothing(gateway: Gateway) -> None:
    await gateway.nats.js.delete_stream(COMMANDS_STREAM.name)  # nobody answers the publish
    response = await gateway.client.post(
        "/api/debates",
        json={"topic": "Is anyone there?", "agents": ["demo-1", "demo-2"]},
        headers={"Idempotency-Key": "k-503"},
    )
    assert response.status_code == 503, response.text
    body = response.json()
    assert body["code"] == "unavailable" and "nothing was started" in body["detail"]
    assert response.headers["retry-after"] == "5"
    assert (await gateway.client.get("/api/debates")).json()["count"] == 0


# --- CORS -------------------------------------------------------------------------------------


async def test_cors_allowlist(nats_server: EmbeddedNats, tmp_path: Path) -> None:
    admin_host = "https://admin.example.org"
    settings = make_settings(tmp_path, nats_url=nats_server.url, cors_origins=admin_host)
    preflight = {"Origin": admin_host, "Access-Control-Request-Method": "GET"}
    async with open_gateway(settings) as gw:
        allowed = await gw.client.options("/api/debates", headers=preflight)
        assert allowed.status_code == 204
        assert allowed.headers["access-control-allow-origin"] == admin_host
        assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
        other = await gw.client.options(
            "/api/debates", headers={**preflight, "Origin": "https://evil.example"}
        )
        assert "access-control-allow-origin" not in other.headers
        got = await gw.client.get("/api/debates", headers={"Origin": admin_host})
        assert got.headers["access-control-allow-origin"] == admin_host
        assert "x-correlation-id" in got.headers["access-control-expose-headers"].lower()
    async with open_gateway(make_settings(tmp_path / "b", nats_url=nats_server.url)) as gw:
        got = await gw.client.get("/api/debates", headers={"Origin": admin_host})
        assert "access-control-allow-origin" not in got.headers  # none by default


async def test_an_open_websocket_is_closed_when_its_token_is_revoked(
    accounts: tuple[Gateway, dict[str, dict[str, str]]],
) -> None:
    gw, users = accounts
    token = users["bob"]["Authorization"].split()[1]
    claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    owner = gw.client.headers.pop("Authorization")
    with await gw.client.websocket_connect(f"/ws?token={token}") as ws:
        ws.send_text(json.dumps({"type": "ping"}))
        assert next_frame(ws) == {"type": "pong"}
        revoked = await gw.client.post(
            "/api/admin/revoke-token",
            json={"token_id": claims["jti"]},
            headers={"Authorization": owner},
        )
        assert revoked.status_code == 200, revoked.text
        assert close_code(ws) == 4401
