"""Accounts, tokens and API keys through the real gateway app (auth enforced)."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from aragora.gateway.deps import Deps
from aragora.runtime.natsserver import EmbeddedNats
from tests.conftest import make_settings
from tests.integration.gateway_harness import eventually, open_gateway

SERVICE_TOKEN = "svc-token-for-tests-0123456789abcdef"
PASSWORD = "correct horse battery"


@pytest.fixture
async def api(nats_server: EmbeddedNats, tmp_path: Path) -> AsyncIterator[AsyncTestClient[Any]]:
    settings = make_settings(tmp_path, nats_url=nats_server.url, api_token=SERVICE_TOKEN)
    async with open_gateway(settings) as gw:
        del gw.client.headers["Authorization"]  # each test says who it is
        yield gw.client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _user(
    api: AsyncTestClient[Any], email: str, role: str = "member"
) -> tuple[str, dict[str, Any]]:
    """Register (as the service owner when a role is asked for) and log in."""
    body = {"email": email, "password": PASSWORD, "role": role}
    headers = bearer(SERVICE_TOKEN) if role != "member" else {}
    created = await api.post("/api/auth/register", json=body, headers=headers)
    assert created.status_code == 201, created.text
    login = await api.post("/api/auth/login", json={"email": email, "password": PASSWORD})
    assert login.status_code == 200, login.text
    tokens = login.json()
    return tokens["access_token"], tokens


async def test_no_token_is_401_with_a_json_error_and_health_stays_public(
    api: AsyncTestClient[Any],
) -> None:
    response = await api.get("/api/debates")
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    body = response.json()
    assert body["code"] == "unauthorized" and "Bearer" in body["detail"] and body["error"]
    assert (await api.get("/api/health")).status_code in (200, 503)
    wrong = await api.get("/api/debates", headers=bearer("not-a-token"))
    assert wrong.status_code == 401 and "malformed" in wrong.json()["detail"]


async def test_register_login_me_and_roles(api: AsyncTestClient[Any]) -> None:
    access, tokens = await _user(api, "Ada@Example.org")
    assert tokens["token_type"] == "Bearer" and tokens["refresh_token"].startswith("art_")
    me = (await api.get("/api/auth/me", headers=bearer(access))).json()["user"]
    assert (me["email"], me["role"], me["auth"]) == ("ada@example.org", "member", "user")
    # member: may read and start debates, not reach admin routes
    assert (await api.get("/api/debates", headers=bearer(access))).status_code == 200
    forbidden = await api.get("/api/system/circuit-breakers", headers=bearer(access))
    assert forbidden.status_code == 403 and forbidden.json()["code"] == "forbidden"
    ok = await api.get("/api/system/circuit-breakers", headers=bearer(SERVICE_TOKEN))
    assert ok.status_code == 200


async def test_registration_rules(api: AsyncTestClient[Any]) -> None:
    await _user(api, "bob@example.org")
    again = await api.post(
        "/api/auth/register", json={"email": "BOB@example.org", "password": PASSWORD}
    )
    assert again.status_code == 409
    weak = await api.post("/api/auth/register", json={"email": "c@example.org", "password": "x"})
    assert weak.status_code == 400 and "password" in weak.json()["detail"]
    grab = await api.post(
        "/api/auth/register",
        json={"email": "d@example.org", "password": PASSWORD, "role": "owner"},
    )
    assert grab.status_code == 403  # anyone may register, but only as a member
    bad = await api.post("/api/auth/login", json={"email": "bob@example.org", "password": "nope!"})
    assert bad.status_code == 401


async def test_viewer_reads_but_cannot_write(api: AsyncTestClient[Any]) -> None:
    access, _ = await _user(api, "viewer@example.org", role="viewer")
    assert (await api.get("/api/debates", headers=bearer(access))).status_code == 200
    post = await api.post(
        "/api/debates", json={"topic": "Can viewers write?"}, headers=bearer(access)
    )
    assert post.status_code == 403


async def test_refresh_rotates_and_a_reused_refresh_token_revokes_the_family(
    api: AsyncTestClient[Any],
) -> None:
    _, tokens = await _user(api, "eve@example.org")
    first = tokens["refresh_token"]
    rotated = await api.post("/api/auth/refresh", json={"refresh_token": first})
    assert rotated.status_code == 200
    second = rotated.json()["refresh_token"]
    assert second != first
    replay = await api.post("/api/auth/refresh", json={"refresh_token": first})
    assert replay.status_code == 401
    # the replay revoked the family: the legitimate newer token is dead too
    assert (await api.post("/api/auth/refresh", json={"refresh_token": second})).status_code == 401


async def test_logout_revokes_access_and_refresh_tokens(api: AsyncTestClient[Any]) -> None:
    access, tokens = await _user(api, "frank@example.org")
    assert (await api.post("/api/auth/logout", headers=bearer(access))).status_code == 200
    after = await api.get("/api/auth/me", headers=bearer(access))
    assert after.status_code == 401 and "revoked" in after.json()["detail"]
    refresh = await api.post("/api/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert refresh.status_code == 401


async def test_expired_and_forged_tokens_are_refused(api: AsyncTestClient[Any]) -> None:
    import jwt

    access, _ = await _user(api, "gina@example.org")
    claims = jwt.decode(access, options={"verify_signature": False})
    header = jwt.get_unverified_header(access)
    forged = jwt.encode({**claims, "role": "owner"}, "not-the-key", headers=header)
    assert (await api.get("/api/auth/me", headers=bearer(forged))).status_code == 401
    unsigned = (
        ".".join(
            base64.urlsafe_b64encode(json.dumps(part).encode()).decode().rstrip("=")
            for part in ({**header, "alg": "none"}, {**claims, "role": "owner"})
        )
        + "."
    )
    refused = await api.get("/api/auth/me", headers=bearer(unsigned))
    assert refused.status_code == 401 and "algorithm" in refused.json()["detail"]
    deps: Deps = api.app.state.deps
    assert deps.auth is not None
    expired, _ = deps.auth.keys.issue(claims["sub"], "member", 0, ttl=-60)
    late = await api.get("/api/auth/me", headers=bearer(expired))
    assert late.status_code == 401 and "expired" in late.json()["detail"]


async def test_api_key_works_until_deleted_and_is_never_shown_again(
    api: AsyncTestClient[Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    access, _ = await _user(api, "hal@example.org")
    created = await api.post("/api/auth/api-key", headers=bearer(access))
    assert created.status_code == 201
    key = created.json()["api_key"]
    assert key.startswith("ara_") and len(key) > 40
    me = (await api.get("/api/auth/me", headers=bearer(key))).json()["user"]
    assert (me["email"], me["auth"]) == ("hal@example.org", "api_key")
    listed = await api.get("/api/auth/api-key", headers=bearer(access))
    assert key not in listed.text and listed.json()["api_keys"][0]["prefix"] == key[:12]
    too_much = await api.post("/api/auth/api-key", json={"role": "admin"}, headers=bearer(access))
    assert too_much.status_code == 403
    deleted = await api.delete("/api/auth/api-key", headers=bearer(access))
    assert deleted.json() == {"revoked": 1}
    assert (await api.get("/api/auth/me", headers=bearer(key))).status_code == 401
    assert key not in caplog.text and access not in caplog.text


async def test_the_first_owner_is_made_with_the_cli(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    import os
    import subprocess
    import sys

    settings = make_settings(tmp_path, nats_url=nats_server.url)
    env = {**os.environ, "ARAGORA_DATA_DIR": str(settings.data_dir)}
    command = [sys.executable, "-m", "aragora.cli", "users", "create", "--email"]
    made = subprocess.run(
        [*command, "root@example.org", "--role", "owner", "--password-stdin"],
        input=PASSWORD + "\n",
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    assert "created owner root@example.org" in made.stdout and PASSWORD not in made.stdout
    again = subprocess.run(
        [*command, "root@example.org", "--password-stdin"],
        input=PASSWORD + "\n",
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert again.returncode == 1 and "exists already" in again.stderr
    async with open_gateway(settings) as gw:
        api = gw.client
        del api.headers["Authorization"]
        login = await api.post(
            "/api/auth/login", json={"email": "root@example.org", "password": PASSWORD}
        )
        assert login.status_code == 200
        access = login.json()["access_token"]
        admin_route = await api.get("/api/system/circuit-breakers", headers=bearer(access))
        assert admin_route.status_code == 200


async def test_no_credential_reaches_an_event_on_the_bus(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    """Logins, key creation and use, revocation: the security events published for the
    audit log name who and what, never a password, token or key."""
    settings = make_settings(tmp_path, nats_url=nats_server.url, api_token=SERVICE_TOKEN)
    async with open_gateway(settings) as gw:
        api = gw.client
        del api.headers["Authorization"]
        access, tokens = await _user(api, "kay@example.org")
        key = (await api.post("/api/auth/api-key", headers=bearer(access))).json()["api_key"]
        assert (await api.get("/api/auth/me", headers=bearer(key))).status_code == 200
        await api.post("/api/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
        await api.delete("/api/auth/api-key", headers=bearer(access))
        await api.get("/api/auth/me", headers=bearer(key))  # refused: audited, not echoed
        secrets = [key, access, tokens["refresh_token"], PASSWORD, SERVICE_TOKEN]

        async def published() -> list[bytes]:
            info = await gw.nats.js.stream_info("ARAGORA_EVENTS")
            first, last = info.state.first_seq, info.state.last_seq
            return [
                (await gw.nats.js.get_msg("ARAGORA_EVENTS", seq)).data or b""
                for seq in range(first, last + 1)
            ]

        bodies = await eventually(published, lambda found: len(found) >= 5)
    security = [b for b in bodies if b"security" in b]
    assert len(security) >= 5, bodies  # logins, key created/used/deleted, refusal
    for body in bodies:
        for secret in secrets:
            assert secret.encode() not in body, body
