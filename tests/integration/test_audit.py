"""The audit service with a real gateway: events recorded once, queried, chain verified.

Runs once on SQLite (the embedded default) and once on PostgreSQL. The audit service runs
on its own event loop in a thread, as its own process would: the test client blocks the
test's loop while the gateway handles a request, and the gateway asks the audit service.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import sqlite3
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from aragora.audit import metrics
from aragora.audit.app import running
from aragora.audit.store import AuditStore
from aragora.contracts import codec
from aragora.contracts.security import SecurityEvent, security_event_subject
from aragora.runtime import bus
from aragora.runtime.natsserver import EmbeddedNats
from aragora.runtime.settings import Settings
from tests.conftest import PG_URL
from tests.integration.gateway_harness import Gateway, eventually, open_gateway

PASSWORD = "correct horse battery"


@dataclasses.dataclass
class Audited:
    gateway: Gateway
    settings: Settings


@contextlib.contextmanager
def audit_service(settings: Settings) -> Iterator[None]:
    """``aragora.audit`` running on its own loop in a thread until the block ends."""
    ready, box = threading.Event(), {}

    async def serve() -> None:
        box["loop"], box["stop"] = asyncio.get_running_loop(), asyncio.Event()
        async with running(settings):
            ready.set()
            await box["stop"].wait()

    thread = threading.Thread(target=asyncio.run, args=(serve(),), daemon=True)
    thread.start()
    assert ready.wait(30), "the audit service did not start"
    try:
        yield
    finally:
        box["loop"].call_soon_threadsafe(box["stop"].set)
        thread.join(30)


@pytest.fixture
async def audited(db_settings: Settings, nats_server: EmbeddedNats) -> AsyncIterator[Audited]:
    settings = dataclasses.replace(
        db_settings, nats_url=nats_server.url, audit_verify_interval_seconds=0
    )
    with audit_service(settings):
        async with open_gateway(settings) as gateway:
            yield Audited(gateway=gateway, settings=settings)


async def entries(gw: Gateway, **params: Any) -> dict[str, Any]:
    response = await gw.client.get("/api/admin/audit-log", params=params)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def recorded(gw: Gateway, action: str, count: int = 1) -> list[dict[str, Any]]:
    """The entries of ``action`` once there are ``count`` (newest first)."""
    page = await eventually(
        lambda: entries(gw, action=action), lambda p: len(p["entries"]) >= count
    )
    return list(page["entries"])


async def test_logins_and_admin_actions_are_recorded_with_who_where_and_correlation(
    audited: Audited,
) -> None:
    api = audited.gateway.client
    made = await api.post(
        "/api/auth/register", json={"email": "ada@example.org", "password": PASSWORD}
    )
    assert made.status_code == 201
    wrong = await api.post(
        "/api/auth/login",
        json={"email": "ada@example.org", "password": "wrong password!"},
        headers={"Authorization": "", "X-Correlation-ID": "corr-login-1"},
    )
    assert wrong.status_code == 401
    ok = await api.post(
        "/api/auth/login",
        json={"email": "ada@example.org", "password": PASSWORD},
        headers={"Authorization": ""},
    )
    assert ok.status_code == 200
    assert (await api.get("/api/admin/revoked-tokens")).status_code == 200
    revoked = await api.post("/api/admin/revoke-token", json={"token_id": "tok_xyz123"})
    assert revoked.status_code == 200

    logins = await recorded(audited.gateway, "auth.login", 2)
    failed, succeeded = logins[1], logins[0]  # newest first
    assert failed["outcome"] == "denied" and failed["actor"] == "ada@example.org"
    assert failed["correlation_id"] == "corr-login-1" and failed["ip"]
    assert "wrong password" not in str(failed)  # never a secret
    assert succeeded["outcome"] == "success" and succeeded["actor_id"]
    assert succeeded["actor_kind"] == "user" and succeeded["actor_role"] == "member"
    assert succeeded["target"]  # the jti of the token issued
    revoke = (await recorded(audited.gateway, "token.revoke"))[0]
    assert revoke["target"] == "tok_xyz123" and revoke["actor"] == "service"
    assert revoke["actor_role"] == "owner" and revoke["detail"]["status"] == "200"
    listed = await recorded(audited.gateway, "token.list_revoked")
    assert listed[0]["detail"]["path"] == "/api/admin/revoked-tokens"
    # Prefix filter, actor filter and cursor pagination (newest first, no repeats).
    tokens = await entries(audited.gateway, action="token.*")
    assert {e["action"] for e in tokens["entries"]} == {"token.revoke", "token.list_revoked"}
    mine = await entries(audited.gateway, actor="ada@example.org")
    assert {e["action"] for e in mine["entries"]} >= {"auth.login"}
    seen, cursor = [], ""
    while True:
        page = await entries(audited.gateway, limit=2, **({"cursor": cursor} if cursor else {}))
        seen += [e["seq"] for e in page["entries"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == sorted(set(seen), reverse=True) and seen[-1] == 1


async def test_a_redelivered_event_is_recorded_once_and_the_chain_verifies(
    audited: Audited,
) -> None:
    event = SecurityEvent(
        event_id=str(uuid.uuid4()),
        occurred_at=datetime.now(UTC),
        correlation_id="corr-dup",
        action="breaker.reset",
        outcome="success",
        actor="ops@example.org",
    )
    for _ in range(2):  # a new Nats-Msg-Id each time: the stream keeps both copies
        await bus.publish(
            audited.gateway.nats.js,
            security_event_subject(event.action),
            codec.encode(event),
            msg_id=str(uuid.uuid4()),
        )
    await recorded(audited.gateway, "breaker.reset")
    await eventually(lambda: _duplicates(), lambda n: n >= 1)
    found = await entries(audited.gateway, action="breaker.reset")
    assert [e["event_id"] for e in found["entries"]] == [event.event_id]
    verify = (await audited.gateway.client.get("/api/admin/audit-log/verify")).json()
    assert verify["ok"] is True and verify["first_break"] is None
    assert verify["checked"] == verify["last_seq"] >= 2


async def _duplicates() -> float:
    return metrics.duplicates._value.get()


def _tamper(settings: Settings, seq: int, sql: str) -> None:
    """Change a row behind the application's back, as a database superuser would."""
    if settings.uses_postgres:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'SET search_path TO "{settings.database_schema}"')
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
                conn.execute(sql, (seq,))
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
                conn.execute("DELETE FROM audit_log WHERE seq = %s", (seq,))
            conn.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_change")
            conn.execute(sql, (seq,))
            conn.execute("ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_change")
        return
    db = sqlite3.connect(AuditStore.sqlite_path(settings), isolation_level=None)
    lite = sql.replace("%s", "?")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute(lite, (seq,))
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute("DELETE FROM audit_log WHERE seq = ?", (seq,))
    db.execute("DROP TRIGGER audit_log_no_update")
    db.execute(lite, (seq,))
    db.close()


async def test_tampering_with_one_row_is_reported_at_that_row(audited: Audited) -> None:
    api = audited.gateway.client
    for n in range(4):
        await api.post("/api/admin/revoke-token", json={"token_id": f"tok_{n}"})
    await recorded(audited.gateway, "token.revoke", 4)
    intact = (await api.get("/api/admin/audit-log/verify")).json()
    assert intact["ok"] is True
    assert metrics.chain_ok._value.get() == 1
    target = (await entries(audited.gateway, action="token.revoke", order="asc"))["entries"][1]
    _tamper(
        audited.settings, target["seq"], "UPDATE audit_log SET actor = 'mallory' WHERE seq = %s"
    )
    broken = (await api.get("/api/admin/audit-log/verify")).json()
    assert broken["ok"] is False
    assert broken["first_break"]["seq"] == target["seq"]
    assert broken["first_break"]["event_id"] == target["event_id"]
    assert "modified" in broken["first_break"]["problem"]
    assert broken["last_seq"] == target["seq"] - 1  # rows before it are still trusted
    assert metrics.chain_ok._value.get() == 0
