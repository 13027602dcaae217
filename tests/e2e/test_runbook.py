"""The operators' runbook, executed: every ``curl`` line of ``docs/RUNBOOK.md`` aimed at
``localhost:8080`` runs, as written, against a running stack (with the owner token added
where the line has none, as docs/security.md says: every route but health needs one), and
``kill -USR1`` reloads the WebSocket handler while the API keeps serving."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import websockets.sync.client
from websockets.exceptions import ConnectionClosed

from tests.e2e.stack import Stack
from tests.plugins.fake_provider import start_fake_provider

RUNBOOK = Path(__file__).parents[2] / "docs" / "RUNBOOK.md"
LOCAL = "http://localhost:8080"
# Run last: they end sessions (revoke-all, force-password-reset) or change keys.
DISRUPTIVE = ("rotate-keys", "revoke-all-tokens", "force-password-reset")


def runbook_curls() -> list[str]:
    """Each curl command (continuation lines joined) that talks to the local gateway."""
    text = RUNBOOK.read_text()
    text = re.sub(r"\\\n\s*", " ", text)  # join `\`-continued lines
    commands: list[str] = []
    for found in re.finditer(r"curl [^\n`']*(?:'[^'\n]*'[^\n`']*)*", text):
        command = found.group(0).strip().rstrip(")")
        if LOCAL in command and command not in commands:
            commands.append(command)
    commands.sort(key=lambda c: any(word in c for word in DISRUPTIVE))
    return commands


def runbook_block(heading: str) -> str:
    """The first fenced code block after ``heading`` in the runbook."""
    text = RUNBOOK.read_text()
    after = text[text.index(heading) :]
    if "```json" in after.split("\n## ", 1)[0]:  # the section's JSON example, if it has one
        after = after[after.index("```json") :]
    return after.split("```", 2)[1].split("\n", 1)[1]


def as_run(command: str, stack: Stack, user_token: str) -> tuple[list[str], str]:
    """The command as argv against the stack, and what a `| grep X` after it looks for.

    ``<access_token>`` and ``$ADMIN_TOKEN`` become an admin user's access token; a line
    without a credential gets the stack's owner token."""
    pipeline = command.split(" | ")
    wanted = ""
    for stage in pipeline[1:]:
        if stage.startswith("grep "):
            wanted = stage.split()[-1].strip("'\"")
        elif stage.startswith("jq '"):
            wanted = "jq:" + stage.split("'")[1]
    argv = shlex.split(pipeline[0].replace("<access_token>", user_token))
    argv = [a.replace("$ADMIN_TOKEN", user_token) for a in argv]
    argv = [a.replace("localhost:8080", f"127.0.0.1:{stack.api_port}") for a in argv]
    if not any(a.startswith("Authorization:") for a in argv):
        argv[1:1] = ["-H", f"Authorization: Bearer {stack.token}"]
    argv = [a for a in argv if a not in ("-v", "-s", "-sf")]
    return [*argv, "-s", "-w", "\n%{http_code}", "--max-time", "20"], wanted


@pytest.fixture(scope="module")
def runbook_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("runbook")
    with start_fake_provider() as anthropic:  # the runbook's agent is `claude`
        stack = Stack(
            tmp,
            env={
                "ARAGORA_LOG_DIR": str(tmp / "logs"),
                "ARAGORA_MEMORY_PROFILING": "1",
                "ARAGORA_MEMORY_DUMP_PATH": str(tmp / "aragora_memory_dump.json"),
                "ANTHROPIC_API_KEY": "sk-ant-test-runbook",
                "ANTHROPIC_BASE_URL": anthropic.root_url,
            },
        ).start()
        try:
            yield stack
        finally:
            stack.stop()


def admin_token(stack: Stack) -> str:
    """An admin account's access token (the runbook's <access_token>, $ADMIN_TOKEN)."""
    account = {"email": "ops@example.org", "password": "correct horse battery"}
    created = stack.http.post(f"{stack.url}/api/auth/register", json={**account, "role": "admin"})
    assert created.status_code == 201, created.text
    login = httpx.post(f"{stack.url}/api/auth/login", json=account, timeout=10)
    assert login.status_code == 200, login.text
    return str(login.json()["access_token"])


def test_every_local_curl_line_of_the_runbook_works(runbook_stack: Stack) -> None:
    stack = runbook_stack
    debate = stack.post_debate(topic="Is the runbook executable?")
    stack.wait_finished(debate)
    commands = runbook_curls()
    assert len(commands) >= 30, commands
    user_token = admin_token(stack)
    failures = []
    for command in commands:
        argv, wanted = as_run(command, stack, user_token)
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
        body, _, status = done.stdout.rpartition("\n")
        ok = done.returncode == 0 and status.isdigit() and int(status) < 400
        if ok and wanted.startswith("jq:"):  # `| jq '.checks.websocket'`: must be there
            ok = json_path(json.loads(body), wanted[3:]) is not None
        elif ok and wanted and wanted not in body:
            ok = False
        if not ok:
            failures.append(f"{command}\n  -> {status} {body[:300]}")
    assert not failures, "\n".join(failures)
    dump = json.loads(Path(stack.env["ARAGORA_MEMORY_DUMP_PATH"]).read_text())
    assert dump["top_allocations"]


def json_path(document: object, path: str) -> object:
    """What jq's ``.a.b`` (or ``.``) selects; None when absent."""
    for key in filter(None, path.split(".")):
        document = document.get(key) if isinstance(document, dict) else None
    return document


def shape(example: object) -> object:
    """The keys of a JSON example, nested (values dropped)."""
    if isinstance(example, dict):
        return {key: shape(value) for key, value in example.items()}
    return None


def covers(actual: object, example: object) -> bool:
    """``actual`` has every key of ``example``, recursively."""
    if isinstance(example, dict):
        return isinstance(actual, dict) and all(
            key in actual and covers(actual[key], value) for key, value in example.items()
        )
    return True


def test_health_has_the_runbook_shape_and_its_check_script_passes(runbook_stack: Stack) -> None:
    stack = runbook_stack
    documented = json.loads(runbook_block("### Endpoint: `/api/health`"))
    health = httpx.get(f"{stack.url}/api/health", timeout=5).json()
    assert covers(health, shape(documented)), (health, documented)
    assert health["status"] == "healthy" and health["checks"]["database"]["status"] == "ok"
    script = runbook_block("### Health Check Script").replace(
        "localhost:8080", f"127.0.0.1:{stack.api_port}"
    )
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=False)
    assert (done.returncode, done.stdout.strip()) == (0, "OK: All checks passed"), done


def _all_aragora_pids(stack: Stack) -> list[int]:
    """What `pgrep -f aragora` finds of this stack: the supervisor and its services."""
    assert stack.process is not None
    return [stack.process.pid, *stack.service_pids().values()]


def test_sigusr1_reloads_websockets_and_keeps_the_api(runbook_stack: Stack) -> None:
    stack = runbook_stack
    pids_before = stack.service_pids()
    url = f"ws://127.0.0.1:{stack.ws_port}/ws"
    with websockets.sync.client.connect(url, additional_headers=stack.headers) as ws:
        ws.send(json.dumps({"type": "ping"}))
        assert json.loads(ws.recv(timeout=5)) == {"type": "pong"}
        for pid in _all_aragora_pids(stack):  # kill -USR1 $(pgrep -f aragora)
            os.kill(pid, signal.SIGUSR1)
        code = None
        try:
            while True:
                ws.recv(timeout=10)
        except ConnectionClosed as closed:
            code = closed.rcvd.code if closed.rcvd else None
    assert code == 1012  # service restart: reconnect
    assert httpx.get(f"{stack.url}/api/health", timeout=5).status_code == 200
    deadline = time.monotonic() + 10
    while True:  # the WebSocket port is back, on a new server
        try:
            with websockets.sync.client.connect(url, additional_headers=stack.headers) as ws:
                ws.send(json.dumps({"type": "ping"}))
                assert json.loads(ws.recv(timeout=5)) == {"type": "pong"}
            break
        except (OSError, ConnectionClosed):  # the old server was still closing: retry
            assert time.monotonic() < deadline, "the WebSocket port did not come back"
            time.sleep(0.1)
    assert stack.service_pids() == pids_before  # nothing died of the signal
    log_file = Path(stack.env["ARAGORA_LOG_DIR"]) / "websocket.log"
    deadline = time.monotonic() + 10  # the line is written once the new server listens
    while "WebSocket handler reloaded" not in log_file.read_text():
        assert time.monotonic() < deadline, log_file.read_text()[-2000:]
        time.sleep(0.1)
    log = log_file.read_text()
    assert "reloading the WebSocket handler" in log and "websocket opened" in log
    assert sum("WebSocket handler reloaded" in line for line in log.splitlines()) == 1
