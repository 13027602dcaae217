"""Revocation, key rotation and forced password resets across two gateway replicas.

Both replicas share one PostgreSQL schema and one nats-server, as in production: what one
replica revokes (NATS KV bucket ARAGORA_AUTH) the other must refuse within a second.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from aragora.runtime.natsserver import EmbeddedNats
from tests.conftest import PG_URL, TEST_TOKEN, make_settings
from tests.integration.gateway_harness import Gateway, eventually, open_gateway

PASSWORD = "correct horse battery"
SECRET = "jwt-secret-for-revocation-tests-0123456789"


@pytest.fixture
async def replicas(
    nats_server: EmbeddedNats, tmp_path: Path, pg_schema: str
) -> AsyncIterator[tuple[Gateway, Gateway]]:
    settings = make_settings(
        tmp_path,
        nats_url=nats_server.url,
        database_url=PG_URL,
        database_schema=pg_schema,
        jwt_secret=SECRET,
    )
    async with open_gateway(settings) as one, open_gateway(settings) as two:
        yield one, two


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def kid(token: str) -> str:
    header = token.split(".")[0]
    return str(json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"])


async def account(api: AsyncTestClient[Any], email: str, role: str = "member") -> dict[str, Any]:
    """Register (as the service owner) and log in; the login's JSON."""
    body = {"email": email, "password": PASSWORD, "role": role}
    made = await api.post("/api/auth/register", json=body, headers=bearer(TEST_TOKEN))
    assert made.status_code == 201, made.text
    return await login(api, email)


async def login(api: AsyncTestClient[Any], email: str, password: str = PASSWORD) -> dict[str, Any]:
    response = await api.post("/api/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    return dict(response.json())


async def status(api: AsyncTestClient[Any], token: str) -> int:
    return (await api.get("/api/auth/me", headers=bearer(token))).status_code


async def refused_within_a_second(api: AsyncTestClient[Any], token: str) -> None:
    await eventually(lambda: status(api, token), lambda code: code == 401, timeout=1.0)


async def test_a_token_revoked_on_one_replica_is_refused_by_both_within_a_second(
    replicas: tuple[Gateway, Gateway],
) -> None:
    one, two = replicas
    ada = await account(one.client, "ada@example.org")
    bob = await account(one.client, "bob@example.org")
    token = ada["access_token"]
    assert await status(one.client, token) == 200
    assert await status(two.client, token) == 200
    jti = claims(token)["jti"]
    revoked = await one.client.post("/api/admin/revoke-token", json={"token_id": jti})
    assert revoked.status_code == 200, revoked.text
    for replica in (one, two):
        await refused_within_a_second(replica.client, token)
    refused = await two.client.get("/api/auth/me", headers=bearer(token))
    assert refused.json()["detail"] == "token revoked"
    # The session it belonged to ends too: its refresh token no longer works.
    again = await two.client.post("/api/auth/refresh", json={"refresh_token": ada["refresh_token"]})
    assert again.status_code == 401
    # Other tokens are untouched, and the list every replica enforces names it.
    assert await status(two.client, bob["access_token"]) == 200
    listing = (await two.client.get("/api/admin/revoked-tokens")).json()
    assert [t["token_id"] for t in listing["revoked_tokens"]] == [jti]
    assert listing["revoked_tokens"][0]["revoked_by"] == "service"


async def test_revoke_all_refuses_every_earlier_token_and_later_logins_work(
    replicas: tuple[Gateway, Gateway],
) -> None:
    one, two = replicas
    sessions = [
        await account(one.client, "ada@example.org"),
        await account(one.client, "root@example.org", role="admin"),
    ]
    ended = await two.client.post("/api/admin/revoke-all-tokens")
    assert ended.status_code == 200, ended.text
    for session in sessions:
        for replica in (one, two):
            await refused_within_a_second(replica.client, session["access_token"])
        refresh = await one.client.post(
            "/api/auth/refresh", json={"refresh_token": session["refresh_token"]}
        )
        assert refresh.status_code == 401
    # The service token is not a login token: the operator keeps control.
    assert (await one.client.get("/api/admin/revoked-tokens")).status_code == 200
    fresh = await login(two.client, "ada@example.org")
    for replica in (one, two):
        assert await status(replica.client, fresh["access_token"]) == 200


async def test_rotated_keys_honour_the_grace_period_on_every_replica(
    replicas: tuple[Gateway, Gateway],
) -> None:
    one, two = replicas
    old = (await account(one.client, "ada@example.org"))["access_token"]
    rotated = await one.client.post("/api/admin/rotate-keys", json={"grace_seconds": 2})
    assert rotated.status_code == 200, rotated.text
    ring = rotated.json()["signing_key"]
    assert ring["previous_kid"] == kid(old) and ring["kid"] != kid(old)
    # Both replicas now sign with the new key and still accept the old one...
    new = (await login(two.client, "ada@example.org"))["access_token"]
    assert kid(new) == ring["kid"]
    for replica in (one, two):
        assert await status(replica.client, old) == 200
        assert await status(replica.client, new) == 200
    # ...until the grace period ends.
    await asyncio.sleep(max(ring["previous_valid_until"] - claims(new)["iat"], 0) + 0.2)
    for replica in (one, two):
        refused = await replica.client.get("/api/auth/me", headers=bearer(old))
        assert refused.status_code == 401
        assert "retired key" in refused.json()["detail"]
        assert await status(replica.client, new) == 200
    # No grace: tokens of the key being replaced are refused at once.
    now_refused = await two.client.post("/api/admin/rotate-keys", json={"grace_seconds": 0})
    assert now_refused.status_code == 200
    for replica in (one, two):
        await refused_within_a_second(replica.client, new)


async def test_rotating_a_users_api_keys_refuses_them_on_both_replicas(
    replicas: tuple[Gateway, Gateway],
) -> None:
    one, two = replicas
    ada = await account(one.client, "ada@example.org")
    made = await one.client.post("/api/auth/api-key", headers=bearer(ada["access_token"]))
    key = made.json()["api_key"]
    assert await status(two.client, key) == 200  # now cached by replica two for 5 s
    rotated = await one.client.post(
        "/api/admin/rotate-keys", json={"signing_key": False, "email": "ada@example.org"}
    )
    assert rotated.json()["api_keys_revoked"] == 1 and "signing_key" not in rotated.json()
    for replica in (one, two):
        await refused_within_a_second(replica.client, key)
    assert await status(two.client, ada["access_token"]) == 200


async def test_force_password_reset_ends_sessions_and_login_asks_for_a_new_password(
    replicas: tuple[Gateway, Gateway],
) -> None:
    one, two = replicas
    ada = await account(one.client, "ada@example.org")
    root = await account(one.client, "root@example.org", role="admin")
    forced = await two.client.post(
        "/api/admin/force-password-reset", headers=bearer(root["access_token"])
    )
    assert forced.status_code == 200, forced.text
    assert forced.json()["accounts"] == 1  # everyone but the caller
    await refused_within_a_second(one.client, ada["access_token"])
    assert await status(one.client, root["access_token"]) == 200
    refused = await one.client.post(
        "/api/auth/login", json={"email": "ada@example.org", "password": PASSWORD}
    )
    assert refused.status_code == 403
    assert refused.json()["code"] == "password_reset_required"
    wrong = await one.client.post(
        "/api/auth/login", json={"email": "ada@example.org", "password": "not the password"}
    )
    assert wrong.status_code == 401  # the reset is only revealed to the right password
    changed = await two.client.post(
        "/api/auth/password",
        json={"email": "ada@example.org", "password": PASSWORD, "new_password": "a new passphrase"},
    )
    assert changed.status_code == 200, changed.text
    fresh = await login(one.client, "ada@example.org", "a new passphrase")
    assert await status(two.client, fresh["access_token"]) == 200


async def test_logout_is_refused_by_the_other_replica_and_listeners_hear_of_it(
    replicas: tuple[Gateway, Gateway],
) -> None:
    one, two = replicas
    ada = await account(one.client, "ada@example.org")
    assert await status(two.client, ada["access_token"]) == 200  # cached user on two
    auth = two.deps.auth
    assert auth is not None and auth.state is not None
    # What a WebSocket connection holds: the identity it was let in with.
    identity = await auth.identify(ada["access_token"])
    assert auth.refusal(identity) is None
    heard = asyncio.Event()
    auth.state.add_listener(heard.set)
    out = await one.client.post("/api/auth/logout", headers=bearer(ada["access_token"]))
    assert out.status_code == 200
    await asyncio.wait_for(heard.wait(), 1.0)
    assert auth.refusal(identity) == "token revoked (the account's sessions were ended)"
    await refused_within_a_second(two.client, ada["access_token"])
