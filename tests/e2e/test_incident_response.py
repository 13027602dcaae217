"""End to end: the runbook's "Security Incident Response" lines, run with curl against
`aragora serve`, and the audit trail they leave (queried, exported, verified).

Each curl line is the runbook's, plus the ``Authorization`` header docs/security.md adds
(every ``/api/admin/*`` route is admin-only). ``$ADMIN_TOKEN`` is the stack's owner token.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.stack import Stack

pytestmark = pytest.mark.e2e
PASSWORD = "correct horse battery"
AUTH = '-H "Authorization: Bearer $ADMIN_TOKEN"'


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = Stack(tmp_path_factory.mktemp("incident")).start()
    yield running
    assert running.stop() == 0, running.log()


def curl(stack: Stack, line: str) -> tuple[int, Any]:
    """Run one runbook line (``http://localhost:8080`` is the stack's URL); status, JSON."""
    command = line.replace("http://localhost:8080", stack.url)
    command = command.replace("curl ", "curl -sS -w '\\n%{http_code}' ", 1)
    done = subprocess.run(
        ["bash", "-c", command],
        env={**os.environ, "ADMIN_TOKEN": stack.token},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    body, _, code = done.stdout.rpartition("\n")
    return int(code), json.loads(body) if body.strip() else None


def login(stack: Stack, email: str) -> httpx.Response:
    return httpx.post(
        f"{stack.url}/api/auth/login", json={"email": email, "password": PASSWORD}, timeout=10
    )


def audited(stack: Stack, actions: set[str], timeout: float = 15.0) -> list[dict[str, Any]]:
    """The audit log's newest 100 entries once it holds every action in ``actions``."""
    deadline = time.monotonic() + timeout
    while True:
        code, body = curl(stack, f"curl {AUTH} http://localhost:8080/api/admin/audit-log?limit=100")
        assert code == 200, body
        if actions <= {e["action"] for e in body["entries"]} or time.monotonic() > deadline:
            return list(body["entries"])
        time.sleep(0.2)


def test_the_runbooks_incident_response_lines_work_and_leave_an_audit_trail(
    stack: Stack, tmp_path: Path
) -> None:
    made = stack.http.post(
        f"{stack.url}/api/auth/register", json={"email": "ada@example.org", "password": PASSWORD}
    )
    assert made.status_code == 201, made.text
    session = login(stack, "ada@example.org").json()["access_token"]
    me = f"{stack.url}/api/auth/me"
    assert httpx.get(me, headers={"Authorization": f"Bearer {session}"}).status_code == 200

    # 1. Containment: rotate keys.
    code, rotated = curl(stack, f"curl -X POST {AUTH} http://localhost:8080/api/admin/rotate-keys")
    assert code == 200, rotated
    assert rotated["signing_key"]["kid"] != rotated["signing_key"]["previous_kid"]

    # 3. Revoke access: every token, then a password reset for every account.
    code, body = curl(
        stack, f"curl -X POST {AUTH} http://localhost:8080/api/admin/revoke-all-tokens"
    )
    assert code == 200, body
    refused = httpx.get(me, headers={"Authorization": f"Bearer {session}"})
    assert refused.status_code == 401 and "revoked" in refused.json()["detail"]
    code, body = curl(
        stack, f"curl -X POST {AUTH} http://localhost:8080/api/admin/force-password-reset"
    )
    assert code == 200 and body["accounts"] == 1, body
    blocked = login(stack, "ada@example.org")
    assert blocked.status_code == 403 and blocked.json()["code"] == "password_reset_required"

    # Token revocation: revoke one token, check the list (admin-only, so with the header).
    code, body = curl(
        stack,
        f"curl -X POST {AUTH} http://localhost:8080/api/admin/revoke-token "
        """-d '{"token_id": "tok_xyz123"}'""",
    )
    assert code == 200, body
    code, listing = curl(stack, f"curl {AUTH} http://localhost:8080/api/admin/revoked-tokens")
    assert code == 200 and "tok_xyz123" in {t["token_id"] for t in listing["revoked_tokens"]}
    code, _ = curl(stack, "curl http://localhost:8080/api/admin/revoked-tokens")
    assert code == 401  # the runbook's bare line: secure by default

    # The audit trail: every step, by whom, recorded by the audit service.
    steps = {
        "keys.rotate",
        "token.revoke_all",
        "account.force_password_reset",
        "token.revoke",
        "token.list_revoked",
        "auth.login",
    }
    entries = audited(stack, steps)
    assert steps <= {e["action"] for e in entries}, entries
    rotate = next(e for e in entries if e["action"] == "keys.rotate")
    assert rotate["actor"] == "service" and rotate["actor_role"] == "owner"
    assert rotate["detail"]["kid"] == rotated["signing_key"]["kid"] and rotate["ip"]
    assert session not in json.dumps(entries) and stack.token not in json.dumps(entries)
    reset = next(
        e
        for e in entries
        if e["action"] == "auth.login" and e["detail"].get("reason") == "password_reset_required"
    )
    assert reset["actor"] == "ada@example.org" and reset["outcome"] == "denied"

    # Preserve evidence: the CLI exports the log as JSON lines and verifies the chain.
    out = tmp_path / "audit.jsonl"
    env = {**os.environ, "ARAGORA_DATA_DIR": str(stack.data_dir), "ARAGORA_URL": stack.url}
    env.pop("ARAGORA_API_TOKEN", None)  # the CLI finds the owner token in the data dir
    cli = [sys.executable, "-m", "aragora.cli", "audit"]
    exported = subprocess.run(
        [*cli, "export", "--since", "1h", "--out", str(out)], env=env, capture_output=True,
        text=True, timeout=60,
    )  # fmt: skip
    assert exported.returncode == 0, exported.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [e["seq"] for e in lines] == sorted(e["seq"] for e in lines)
    assert steps <= {e["action"] for e in lines}
    assert all(b["prev_hash"] == a["hash"] for a, b in itertools.pairwise(lines))
    verified = subprocess.run([*cli, "verify"], env=env, capture_output=True, text=True, timeout=60)
    assert verified.returncode == 0 and verified.stdout.startswith("OK"), verified.stdout
